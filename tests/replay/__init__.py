"""Replay clients for the telephony adapters, written from each platform's published message formats.

They stand in for Genesys AudioHook, Twilio Media Streams, FreeSWITCH
``mod_audio_fork`` and Asterisk AudioSocket in CI (no network to fetch the
platforms' own tools): each streams a fixture call the way the platform does,
and each can also send deliberately malformed or out-of-order messages.
"""
