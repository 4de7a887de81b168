"""The ``callassist`` command."""
