"""Whisper transcription backends behind one interface, and the scheduler that shares one model."""
