"""Everything that does I/O: ingest, codecs, endpointing, Whisper, delivery, storage, the CLI."""
