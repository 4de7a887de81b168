"""The one settings object: built from embedded defaults, an optional TOML file and
command-line overrides, validated once at start-up and passed down.

Every limit the service enforces (frame sizes, queue sizes, timeouts) is a named
field here so an operator can see and tune it, and so tests can shrink it.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import socket
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SUPPORTED_SAMPLE_RATES = (8000, 16000)
SUPPORTED_ENCODINGS = ("pcm_s16le", "mulaw", "alaw")
SUPPORTED_LANGUAGES = ("zh", "en")
ASR_BACKENDS = ("faster-whisper", "openai-whisper")


class SettingsError(ValueError):
    """A setting is invalid; the message names it and says why, in one line."""


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str = ""  # how clients reach us, for printed links; derived from host/port when empty


@dataclass(frozen=True)
class LimitSettings:
    max_frame_bytes: int = 64_000  # one binary websocket frame (2 s of 16 kHz stereo s16)
    max_control_bytes: int = 16_384  # one JSON text frame
    start_timeout_s: float = 10.0  # a connection must send `start` within this
    idle_timeout_s: float = 30.0  # no audio for this long ends the call as disconnected
    subscriber_queue: int = 1_000  # events buffered per websocket subscriber before it is cut off
    call_event_log: int = 20_000  # events kept in memory per call for catch-up replay
    max_concurrent_calls: int = 64
    pending_utterances: int = 32  # finished utterances of one call awaiting transcription before ingest waits
    ended_calls_kept: int = 256  # ended calls whose event logs stay in memory for catch-up


@dataclass(frozen=True)
class EndpointSettings:
    vad: str = "silero"  # "silero" (ONNX shipped by faster-whisper) or "energy"
    threshold: float = 0.5  # speech probability that opens an utterance
    min_speech_ms: int = 250  # shorter bursts are discarded as noise
    min_silence_ms: int = 400  # trailing silence that closes an utterance
    pad_ms: int = 200  # audio kept before the first and after the last speech frame
    max_utterance_s: float = 20.0  # long monologues are split here
    partial_interval_s: float = 1.5  # at most one partial transcript per leg per interval
    min_partial_s: float = 1.5  # no partial before the utterance is this long
    speculative: bool = True  # start the final transcription after pad_ms of silence when ASR is idle


@dataclass(frozen=True)
class AsrSettings:
    backend: str = "faster-whisper"
    model: str = "whisper-base"  # a name from `callassist models list`, or a model folder / .pt file
    compute_type: str = "int8"
    cpu_threads: int = 0  # 0: all cores
    beam_size: int = 1
    max_new_tokens: int = 160
    window_padding_s: float = 1.0  # silence appended after an utterance; "full" 30 s windows cost ~3x
    full_window: bool = False
    simplify_chinese: bool = True  # Whisper sometimes writes traditional characters; fold to simplified
    final_queue: int = 64  # utterances waiting for a final transcription, all calls together
    partial_queue: int = 4  # partial requests waiting; the oldest is dropped first under load
    max_partial_load: float = 0.5  # no partials while the model was busier than this over the last 5 s
    model_cache: str = ""  # where assembled model folders live; default ~/.cache/callassist/models


@dataclass(frozen=True)
class StoreSettings:
    url: str = ""  # sqlite path / sqlite:///file.db / postgresql://...; default: <data_dir>/calls.db
    masking: bool = True  # mask personal data (ID/bank cards, phones, e-mail) before it is stored or shown
    node: str = ""  # this service node's name (several nodes may share one PostgreSQL); default: hostname
    # While the store is away, events wait in <data_dir>/store-spool.jsonl (stream.delivery.spool)
    # and are written in order once it is back.  Beyond these limits new events are not stored (an
    # error in the log and in healthz), so a long outage cannot fill the disk; an event takes a few
    # hundred bytes.
    spool_max_bytes: int = 64 * 1024 * 1024
    spool_max_events: int = 200_000
    spool_retry_min_s: float = 0.5  # first pause before retrying the store; doubles per failure
    spool_retry_max_s: float = 10.0  # longest pause between retries while the store stays away


@dataclass(frozen=True)
class MqttSettings:
    """The broker the service publishes to.  Events are re-sent until the broker acknowledges
    them; keeping them across a broker restart is the broker's part (persistence on, written by
    its run-time user, a clean stop) and the consumers' (persistent sessions, QoS 1), see README."""

    host: str = ""  # empty: no broker, the service runs without MQTT
    port: int = 1883
    username: str = ""
    password: str = ""
    buffer_limit: int = 10_000  # events held while the broker is away; partials are dropped first
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 10.0


@dataclass(frozen=True)
class AuthSettings:
    enabled: bool = True
    secret_file: str = ""  # default: <data_dir>/secret.key, created on first run (mode 0600)
    tenant: str = "default"  # the tenant of this deployment's calls
    link_ttl_s: int = 12 * 3600  # lifetime of the token in the overlay link printed at start-up


ADAPTER_LEGS = ("agent", "customer")
AUDIOSOCKET_PAIRINGS = ("suffix", "none")
# An API key alone admits a client when no client secret is set: it must not be guessable.
MIN_AUDIOHOOK_API_KEY_CHARS = 16
MIN_AUDIOHOOK_SECRET_BYTES = 16  # the HMAC key of the AudioHook request signatures, base64-decoded


@dataclass(frozen=True)
class AdapterSettings:
    """Telephony adapters (:mod:`stream.ingest`, docs/telephony.md); checked when built."""

    # X-API-KEY values accepted; empty: refuse all unless auth is off
    audiohook_api_keys: tuple[str, ...] = ()
    audiohook_client_secret: str = ""  # base64; when set, every AudioHook request must be signed with it
    # Twilio's "inbound" track (the caller); "outbound" is the other leg
    twilio_inbound_leg: str = "customer"
    freeswitch_channel0_leg: str = "customer"  # mod_audio_fork channel 0 (the caller), also mono and mixed
    audiosocket_host: str = "127.0.0.1"  # AudioSocket has no authentication: keep it on a private network
    audiosocket_port: int = 0  # 0: no AudioSocket listener
    # "suffix": UUIDs ending in a / c are one call's agent / customer legs
    audiosocket_pairing: str = "suffix"
    audiosocket_leg: str = "customer"  # the leg of an AudioSocket connection that is not paired

    def __post_init__(self) -> None:
        keys = self.audiohook_api_keys
        _check(
            isinstance(keys, tuple) and all(isinstance(k, str) for k in keys),
            "adapters.audiohook_api_keys",
            "must be a list of strings",
        )
        for key in keys:
            _check(
                len(key) >= MIN_AUDIOHOOK_API_KEY_CHARS and key.isprintable() and " " not in key,
                "adapters.audiohook_api_keys",
                f"entries must be at least {MIN_AUDIOHOOK_API_KEY_CHARS} printable characters without spaces",
            )
        if self.audiohook_client_secret:
            try:
                secret = base64.b64decode(self.audiohook_client_secret, validate=True)
            except (binascii.Error, ValueError):
                secret = b""
            _check(
                len(secret) >= MIN_AUDIOHOOK_SECRET_BYTES,
                "adapters.audiohook_client_secret",
                f"must be base64 of at least {MIN_AUDIOHOOK_SECRET_BYTES} bytes",
            )
        for name in ("twilio_inbound_leg", "freeswitch_channel0_leg", "audiosocket_leg"):
            _check(getattr(self, name) in ADAPTER_LEGS, f"adapters.{name}", "must be 'agent' or 'customer'")
        _check(0 <= self.audiosocket_port <= 65535, "adapters.audiosocket_port", "must be 0..65535")
        _check(
            self.audiosocket_pairing in AUDIOSOCKET_PAIRINGS,
            "adapters.audiosocket_pairing",
            "must be 'suffix' or 'none'",
        )


@dataclass(frozen=True)
class Settings:
    server: ServerSettings = field(default_factory=ServerSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    endpoint: EndpointSettings = field(default_factory=EndpointSettings)
    asr: AsrSettings = field(default_factory=AsrSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    mqtt: MqttSettings = field(default_factory=MqttSettings)
    auth: AuthSettings = field(default_factory=AuthSettings)
    adapters: AdapterSettings = field(default_factory=AdapterSettings)
    data_dir: str = ""  # service state (call store, secret); default ~/.local/share/callassist
    playbook: str = ""  # playbook folder; default: the packaged prompts/
    guidance_encoder: str = "use"  # "use" (multilingual USE), "minilm" (English only) or a model folder
    guidance: bool = True  # run the guidance engine on every final transcript
    default_language: str = "zh"

    def validate(self) -> Settings:
        s = self
        _check(0 <= s.server.port <= 65535, "server.port", "must be 0..65535")
        for f in dataclasses.fields(s.limits):
            _check(getattr(s.limits, f.name) > 0, f"limits.{f.name}", "must be positive")
        _check(s.endpoint.vad in ("silero", "energy"), "endpoint.vad", "must be 'silero' or 'energy'")
        _check(0.0 < s.endpoint.threshold < 1.0, "endpoint.threshold", "must be between 0 and 1")
        _check(s.endpoint.min_silence_ms >= 100, "endpoint.min_silence_ms", "must be >= 100")
        _check(s.endpoint.max_utterance_s >= 2.0, "endpoint.max_utterance_s", "must be >= 2")
        _check(
            s.endpoint.max_utterance_s <= 29.0, "endpoint.max_utterance_s", "must be <= 29 (Whisper window)"
        )
        _check(s.asr.backend in ASR_BACKENDS, "asr.backend", f"must be one of {', '.join(ASR_BACKENDS)}")
        _check(s.asr.beam_size >= 1, "asr.beam_size", "must be >= 1")
        _check(s.asr.max_new_tokens >= 8, "asr.max_new_tokens", "must be >= 8")
        _check(s.asr.final_queue >= 1 and s.asr.partial_queue >= 1, "asr.*_queue", "must be >= 1")
        _check(s.default_language in SUPPORTED_LANGUAGES, "default_language", "must be zh or en")
        _check(0 < s.mqtt.port <= 65535, "mqtt.port", "must be 1..65535")
        _check(s.mqtt.buffer_limit > 0, "mqtt.buffer_limit", "must be positive")
        _check(s.store.spool_max_bytes >= 4096, "store.spool_max_bytes", "must be >= 4096")
        _check(s.store.spool_max_events > 0, "store.spool_max_events", "must be positive")
        _check(s.store.spool_retry_min_s > 0, "store.spool_retry_min_s", "must be positive")
        _check(
            s.store.spool_retry_max_s >= s.store.spool_retry_min_s,
            "store.spool_retry_max_s",
            "must be >= store.spool_retry_min_s",
        )
        _check(
            bool(s.auth.tenant) and "/" not in s.auth.tenant, "auth.tenant", "must be non-empty, without '/'"
        )
        if s.playbook:
            _check(Path(s.playbook).is_dir(), "playbook", f"{s.playbook} is not a folder")
        return s

    def data_path(self) -> Path:
        if self.data_dir:
            return Path(self.data_dir)
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "callassist"

    def store_url(self) -> str:
        return self.store.url or str(self.data_path() / "calls.db")

    def store_spool_path(self) -> Path:
        """Where events wait while the call store is away: per data dir, so per node."""
        return self.data_path() / "store-spool.jsonl"

    def secret_path(self) -> Path:
        return Path(self.auth.secret_file) if self.auth.secret_file else self.data_path() / "secret.key"

    def node_name(self) -> str:
        return self.store.node or socket.gethostname()

    def model_cache_dir(self) -> Path:
        if self.asr.model_cache:
            return Path(self.asr.model_cache)
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "callassist" / "models"


def _check(ok: bool, name: str, why: str) -> None:
    if not ok:
        raise SettingsError(f"setting {name} {why}")


def _build(cls: type[Any], data: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise SettingsError(f"unknown setting {where}{key}")
        default = getattr(cls(), key)
        if dataclasses.is_dataclass(default):
            if not isinstance(value, dict):
                raise SettingsError(f"setting {where}{key} must be a table")
            kwargs[key] = _build(type(default), value, f"{where}{key}.")
        else:
            kwargs[key] = _coerce(value, default, f"{where}{key}")
    return cls(**kwargs)


def _coerce(value: Any, default: Any, name: str) -> Any:
    if isinstance(default, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes", "on"):
                return True
            if value.lower() in ("0", "false", "no", "off"):
                return False
        if isinstance(value, bool):
            return value
        raise SettingsError(f"setting {name} must be true or false, got {value!r}")
    try:
        return type(default)(value)
    except (TypeError, ValueError) as exc:
        raise SettingsError(f"setting {name} must be {type(default).__name__}, got {value!r}") from exc


def load_settings(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> Settings:
    """Defaults <- TOML file <- overrides (dotted keys such as ``"asr.backend"``), then validate."""
    data: dict[str, Any] = {}
    if path:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"cannot read settings file {path}: {exc.strerror}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"settings file {path} is not valid TOML: {exc}") from exc
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    settings: Settings = _build(Settings, data, "")
    return settings.validate()
