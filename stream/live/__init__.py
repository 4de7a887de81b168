"""The live call path: one session per call, the call registry and manager, the event log."""
