"""Genesys Cloud AudioHook (protocol version 2): ``WS /v1/adapters/audiohook``.

Genesys (the *client*) opens a websocket per conversation, sends JSON control
messages and binary audio; we (the *server*) answer.  Message formats follow the
published protocol (its types in purecloudlabs/audiohook-reference-implementation,
``app/audiohook/src/protocol``), re-implemented here.

Handshake
---------
Required headers ``Audiohook-Organization-Id``, ``Audiohook-Session-Id`` and
``Audiohook-Correlation-Id`` (UUIDs; otherwise HTTP 400, the request is not
from an AudioHook client) and ``X-API-KEY``, which must be one of
``adapters.audiohook_api_keys`` (none configured: every connection is refused
unless ``auth.enabled`` is false).  With ``adapters.audiohook_client_secret``
set, the request must also carry a valid HTTP message signature
(:mod:`stream.ingest.httpsig`).  A refused client gets the protocol's answer:
the websocket is accepted after :data:`AUTH_FAILURE_DELAY_S` (so timing tells
nothing about which check failed), its ``open`` is answered with
``disconnect`` ``{"reason": "unauthorized"}``, and its ``close`` with ``closed``.

Messages
--------
Every message carries ``version: "2"``, ``id`` (the session id of the
handshake), ``type``, ``seq`` and ``parameters``; client messages add
``serverseq`` (the last server ``seq`` the client saw) and ``position`` (an
ISO 8601 ``PT<seconds>S`` stream position); server messages add ``clientseq``.
Checked on every client message: ``seq`` is exactly one more than the last,
``serverseq`` neither exceeds what we sent nor goes backwards, ``position``
never goes backwards and is never behind the audio received.

* ``open`` -> ``opened`` with one media format chosen from the offered list:
  stereo before mono, PCMU before L16, then the client's order; 8000 Hz (16000
  also accepted); channel ``external`` is the customer leg, ``internal`` the
  agent.  ``supportedLanguages: true`` is answered with ``en-US``/``zh-CN``.
  The call id is the ``conversationId`` (``<conversationId>:<sessionId>`` if
  that id is already taken, e.g. a second session of the same conversation);
  a ``conversationId`` of all zeros is Genesys's *connection probe*: answered,
  but no call is opened.
* ``ping`` -> ``pong``; ``paused`` / ``resumed`` (no audio while paused);
  ``paused`` and ``update`` end the utterance in progress on every leg, so
  what was said before them is transcribed and sent now (a pause may last
  long; after a language change the rest is a new utterance), as Genesys's
  conformance suite expects;
  ``discarded`` and ``resumed`` announce audio the client did not send: it
  enters the pipeline as a *gap* (silence that keeps call time equal to the
  client's stream position but neither ends nor starts an utterance; at most
  :data:`MAX_GAP_FILL_S` per gap, never past the client's ``position``; a gap
  said to start after the position is noted on the call, not filled).  The
  position counts discarded audio but not paused time, so a ``resumed`` after
  a pause fills nothing unless the client's position moved on;
  ``update`` (a language change is also noted on the
  call: its language is fixed at open); ``error`` becomes an ``error`` event on
  the call; ``close`` -> the call finishes (everything received is
  transcribed, and the transcripts sent) -> ``closed``.
* Audio: binary frames of the chosen format, interleaved in the chosen channel
  order; PCMU is G.711 mu-law, L16 is signed 16-bit little-endian (as the
  reference implementation sends it).  At most ``limits.max_frame_bytes`` per
  frame; text messages at most :data:`MAX_TEXT_CHARS`.

Every final transcript of the call goes back to the client as an ``event``
message with one ``transcript`` entity (``id``, ``channelId`` = index in the
chosen channels, ``isFinal``, ``offset``/``duration`` on the stream-position
clock, one alternative with ``languages`` and a ``display`` interpretation and
its word ``tokens``), which is what a Genesys transcription connector reads.
Whisper gives neither calibrated confidences nor word timings, so confidence
is :data:`TRANSCRIPT_CONFIDENCE` and token times are spread over the utterance
in proportion to token length (estimates, documented as such).  Partial
transcripts are not sent: the connector expects revisions only as finals.

Errors
------
Every protocol violation (bad JSON or message shape, wrong ``id``/``seq``/
``serverseq``/``position``, unknown type, a message out of order, oversized or
misaligned audio, audio while paused) gets the protocol's error response: a
``disconnect`` ``{"reason": "error", "info": ...}``, after which the client
sends ``close`` and gets ``closed``.  The call ends with reason ``error`` and an
``error`` event, and audio already received is kept and transcribed.  No
``open`` within ``start_timeout_s`` / an ``idle_timeout_s`` silence (no message
at all) is answered the same way, and ends the call as ``timeout`` (as on every
transport).

Modules: :mod:`.messages` (the protocol's constants, field checks, media choice and transcript
entities), :mod:`.protocol` (the sans-IO core, run by :mod:`stream.ingest.driver`) and
:mod:`.endpoint` (the handshake checks and the route).
"""

from stream.ingest.audiohook.endpoint import PATH, AudioHookEndpoint, add_route, check_client, handshake_of
from stream.ingest.audiohook.messages import Handshake
from stream.ingest.audiohook.protocol import AudioHookProtocol, State

__all__ = [
    "PATH",
    "AudioHookEndpoint",
    "AudioHookProtocol",
    "Handshake",
    "State",
    "add_route",
    "check_client",
    "handshake_of",
]
