"""HTTP message signatures (HMAC-SHA256) as Genesys AudioHook uses them, sans-IO.

AudioHook clients with a *client secret* sign the websocket upgrade request
following the IETF HTTP Message Signatures draft (now RFC 9421)::

    Signature-Input: sig1=("@request-target" "@authority" "audiohook-organization-id"
        "audiohook-session-id" "audiohook-correlation-id" "x-api-key");keyid="<api key>";
        nonce="<random>";alg="hmac-sha256";created=1641013200;expires=1641013230
    Signature: sig1=:<base64 HMAC-SHA256>:

The signed bytes (the *signature base*) are one line per covered component,
``"<name>": <value>``, then ``"@signature-params": <the inner list above,
re-serialised>``, joined with ``\\n``; the HMAC key is the base64-decoded client
secret.  Both header fields are RFC 8941 structured-field dictionaries; the
small parser here covers the whole of RFC 8941 section 4.2 that these fields
can carry (inner lists, parameters, strings, tokens, integers, decimals,
booleans, byte sequences) and refuses anything else.

Checks, in order, every failure a one-line reason: the fields parse; the
signature's ``keyid`` is the request's ``X-API-KEY``; the covered components
include all of :data:`REQUIRED_COMPONENTS` and each one resolves; ``alg`` (if
given) is ``hmac-sha256``; ``created`` is present, not in the future and at most
:data:`MAX_SIGNATURE_AGE_S` old, ``expires`` (if given) not past (both with
:data:`CLOCK_SKEW_S` slack); the nonce is at least :data:`MIN_NONCE_CHARS` long
and not seen before within the age window (replay protection; at most
:data:`MAX_TRACKED_NONCES` remembered); the HMAC matches (constant-time compare).

``@authority`` is taken from the ``Host`` header, so a reverse proxy in front of
the service must pass the original ``Host`` through.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, TypeAlias

REQUIRED_COMPONENTS: Final = (
    "@request-target",
    "@authority",
    "audiohook-organization-id",
    "audiohook-session-id",
    "audiohook-correlation-id",
    "x-api-key",
)
MAX_SIGNATURE_AGE_S: Final = 10.0  # the client signs just before it connects; as the reference server
CLOCK_SKEW_S: Final = 5.0  # tolerated difference between the client's clock and ours
MIN_NONCE_CHARS: Final = 22  # 128 bits of randomness in base64; shorter nonces make replays guessable
MAX_TRACKED_NONCES: Final = 10_000  # nonces remembered for replay detection (oldest forgotten first)
MAX_FIELD_CHARS: Final = 4_096  # a Signature / Signature-Input header longer than this is refused unparsed

BareItem: TypeAlias = int | float | str | bool | bytes
Params: TypeAlias = list[tuple[str, BareItem]]


class Token(str):
    """An RFC 8941 token (serialised without quotes), as opposed to a string."""

    __slots__ = ()


@dataclass(frozen=True)
class Item:
    value: BareItem
    params: Params


@dataclass(frozen=True)
class InnerList:
    items: list[Item]
    params: Params


Member: TypeAlias = Item | InnerList


class FieldError(ValueError):
    """A structured field that does not parse."""


# -- RFC 8941 parsing ----------------------------------------------------------------------------

_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")
_TOKEN = re.compile(r"[A-Za-z*][A-Za-z0-9!#$%&'*+\-.^_`|~:/]*")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_BYTES = re.compile(r":([A-Za-z0-9+/=]*):")


class _Parser:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def skip(self, chars: str) -> None:
        while self.i < len(self.s) and self.s[self.i] in chars:
            self.i += 1

    def key(self) -> str:
        m = _KEY.match(self.s, self.i)
        if not m:
            raise FieldError(f"expected a key at {self.i}")
        self.i = m.end()
        return m.group()

    def bare_item(self) -> BareItem:
        c = self.peek()
        if c == '"':
            return self.string()
        if c == ":":
            m = _BYTES.match(self.s, self.i)
            if not m:
                raise FieldError("bad byte sequence")
            self.i = m.end()
            try:
                return base64.b64decode(m.group(1), validate=True)
            except binascii.Error:
                raise FieldError("bad base64 in byte sequence") from None
        if c == "?":
            flag = self.s[self.i + 1 : self.i + 2]
            if flag not in ("0", "1"):
                raise FieldError("bad boolean")
            self.i += 2
            return flag == "1"
        if c == "-" or c.isdigit():
            m = _NUMBER.match(self.s, self.i)
            if not m or len(m.group().lstrip("-").split(".")[0]) > 15:
                raise FieldError("bad number")
            self.i = m.end()
            return float(m.group()) if m.group(1) else int(m.group())
        m = _TOKEN.match(self.s, self.i)
        if not m:
            raise FieldError(f"unexpected character at {self.i}")
        self.i = m.end()
        return Token(m.group())

    def string(self) -> str:
        self.i += 1  # opening quote
        out: list[str] = []
        while self.i < len(self.s):
            c = self.s[self.i]
            self.i += 1
            if c == "\\":
                nxt = self.s[self.i : self.i + 1]
                if nxt not in ('"', "\\"):
                    raise FieldError("bad escape in string")
                out.append(nxt)
                self.i += 1
            elif c == '"':
                return "".join(out)
            elif not " " <= c <= "~":
                raise FieldError("non-printable character in string")
            else:
                out.append(c)
        raise FieldError("unterminated string")

    def params(self) -> Params:
        out: Params = []
        while self.peek() == ";":
            self.i += 1
            self.skip(" ")
            name = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.i += 1
                value = self.bare_item()
            out = [(k, v) for k, v in out if k != name]
            out.append((name, value))
        return out

    def member(self) -> Member:
        if self.peek() == "(":
            self.i += 1
            items: list[Item] = []
            while True:
                self.skip(" ")
                if self.peek() == ")":
                    self.i += 1
                    return InnerList(items, self.params())
                if not self.peek():
                    raise FieldError("unterminated inner list")
                value = self.bare_item()
                items.append(Item(value, self.params()))
                if self.peek() not in (" ", ")"):
                    raise FieldError("inner list items must be separated by spaces")
        return Item(self.bare_item(), self.params())


def parse_dictionary(text: str) -> OrderedDict[str, Member]:
    """RFC 8941 section 4.2.2; a repeated key keeps its last value, as the RFC says."""
    if len(text) > MAX_FIELD_CHARS:
        raise FieldError(f"longer than {MAX_FIELD_CHARS} characters")
    p = _Parser(text.strip(" \t"))
    out: OrderedDict[str, Member] = OrderedDict()
    while p.peek():
        name = p.key()
        if p.peek() == "=":
            p.i += 1
            out[name] = p.member()
        else:
            out[name] = Item(True, p.params())
        p.skip(" \t")
        if not p.peek():
            break
        if p.peek() != ",":
            raise FieldError(f"expected ',' at {p.i}")
        p.i += 1
        p.skip(" \t")
        if not p.peek():
            raise FieldError("trailing comma")
    return out


# -- RFC 8941 serialisation (for the @signature-params line) -------------------------------------


def serialize_bare(value: BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    if isinstance(value, Token):
        return str(value)
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def serialize_params(params: Params) -> str:
    return "".join(f";{k}" if v is True else f";{k}={serialize_bare(v)}" for k, v in params)


def serialize_inner_list(inner: InnerList) -> str:
    items = " ".join(serialize_bare(it.value) + serialize_params(it.params) for it in inner.items)
    return f"({items}){serialize_params(inner.params)}"


# -- verification --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedRequest:
    """What of the upgrade request a signature can cover.

    ``headers`` maps lower-case field names to their canonical value (trimmed,
    several occurrences joined with ``", "``).
    """

    method: str
    target: str  # path and query exactly as sent
    headers: Mapping[str, str]

    def is_signed(self) -> bool:
        return "signature" in self.headers or "signature-input" in self.headers

    def component(self, name: str) -> str | None:
        if name == "@request-target":
            return self.target
        if name == "@method":
            return self.method.upper()
        if name == "@path":
            return self.target.split("?", 1)[0]
        if name == "@query":
            return "?" + (self.target.split("?", 1)[1] if "?" in self.target else "")
        if name == "@authority":
            host = self.headers.get("host")
            return host.lower() if host else None
        if name.startswith("@"):
            return None  # @scheme, @target-uri, @status...: not knowable behind a proxy, refused
        return self.headers.get(name)


def canonical_header(values: list[str]) -> str:
    """RFC 9421 section 2.1: trim, unfold obsolete line folding, join repeats with ", "."""
    return ", ".join(re.sub(r"[ \t]*\r\n[ \t]+", " ", v.strip()) for v in values)


class SignatureVerifier:
    """Checks AudioHook request signatures with one client secret; remembers nonces (replays)."""

    def __init__(self, secret: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock
        self._nonces: OrderedDict[str, float] = OrderedDict()

    def verify(self, request: SignedRequest, api_key: str) -> str | None:
        """``None`` if the request carries a valid signature by ``api_key``, else why not."""
        try:
            inputs = parse_dictionary(request.headers.get("signature-input", ""))
            signatures = parse_dictionary(request.headers.get("signature", ""))
        except FieldError as exc:
            return f"signature header fields do not parse: {exc}"
        if not inputs or not signatures:
            return "request is not signed (Signature and Signature-Input header fields)"
        label = self._pick(inputs, api_key)
        if label is None:
            return "no signature with keyid equal to the X-API-KEY header"
        covered = inputs[label]
        sig = signatures.get(label)
        if not isinstance(covered, InnerList):
            return "Signature-Input member is not an inner list"
        if not isinstance(sig, Item) or not isinstance(sig.value, bytes):
            return f"no signature value for label {label!r}"
        params = dict(covered.params)
        problem = self._check_params(params)
        if problem:
            return problem
        lines: list[str] = []
        names: list[str] = []
        for item in covered.items:
            if not isinstance(item.value, str) or isinstance(item.value, Token) or item.params:
                return "covered components must be plain strings without parameters"
            value = request.component(item.value)
            if value is None:
                return f"component {item.value!r} cannot be resolved"
            if item.value in names:
                return f"component {item.value!r} covered twice"
            names.append(item.value)
            lines.append(f"{serialize_bare(item.value)}: {value}")
        missing = [c for c in REQUIRED_COMPONENTS if c not in names]
        if missing:
            return f"signature does not cover {', '.join(missing)}"
        lines.append(f'"@signature-params": {serialize_inner_list(covered)}')
        expected = hmac.new(self._secret, "\n".join(lines).encode("utf-8"), hashlib.sha256).digest()
        if not hmac.compare_digest(expected, sig.value):
            return "signature does not match"
        nonce = str(params["nonce"])
        if not self._remember(nonce):
            return "nonce was already used (replayed request)"
        return None

    @staticmethod
    def _pick(inputs: Mapping[str, Member], api_key: str) -> str | None:
        for label, member in inputs.items():
            if isinstance(member, InnerList) and dict(member.params).get("keyid") == api_key:
                return label
        return None

    def _check_params(self, params: Mapping[str, BareItem]) -> str | None:
        allowed = {"alg", "created", "expires", "keyid", "nonce"}
        unknown = sorted(set(params) - allowed)
        if unknown:
            return f"unknown signature parameter(s) {', '.join(unknown)}"
        if params.get("alg", "hmac-sha256") != "hmac-sha256":
            return f"signature algorithm {params['alg']!r} is not supported (hmac-sha256)"
        now = self._clock()
        created = params.get("created")
        if not isinstance(created, int) or isinstance(created, bool):
            return "signature has no integer 'created' parameter"
        if created > now + CLOCK_SKEW_S:
            return "signature 'created' is in the future"
        if now - created > MAX_SIGNATURE_AGE_S + CLOCK_SKEW_S:
            return f"signature is older than {MAX_SIGNATURE_AGE_S:g} s"
        expires = params.get("expires")
        if expires is not None and (not isinstance(expires, int) or expires + CLOCK_SKEW_S < now):
            return "signature has expired"
        nonce = params.get("nonce")
        if not isinstance(nonce, str) or len(nonce) < MIN_NONCE_CHARS:
            return f"signature needs a 'nonce' of at least {MIN_NONCE_CHARS} characters"
        return None

    def _remember(self, nonce: str) -> bool:
        now = self._clock()
        horizon = now - (MAX_SIGNATURE_AGE_S + 2 * CLOCK_SKEW_S)
        while self._nonces and next(iter(self._nonces.values())) < horizon:
            self._nonces.popitem(last=False)
        if nonce in self._nonces:
            return False
        self._nonces[nonce] = now
        while len(self._nonces) > MAX_TRACKED_NONCES:
            self._nonces.popitem(last=False)
        return True
