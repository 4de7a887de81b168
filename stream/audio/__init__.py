"""Audio in: telephone codecs, resampling to 16 kHz, voice activity, utterance endpointing, WAV files."""
