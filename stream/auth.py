"""Access tokens: who may send audio, and who may see which calls.

Token format: a JWT (RFC 7519) signed with HS256 (HMAC-SHA256, RFC 7515), built
here with the standard library only.  A JWT rather than a home-made
``<payload>.<signature>`` so that other systems in a contact centre (a CRM, a
softphone plug-in, an API gateway) can mint or inspect tokens with any JWT
library; the service itself accepts nothing but ``{"alg": "HS256", "typ": "JWT"}``
headers, so the classic ``alg: none`` / algorithm-confusion tricks are refused.

Claims (all required):

* ``sub``    who the token was issued to (agent id, connector name, supervisor id)
* ``role``   ``ingest`` (may send a call's audio), ``agent`` (may read only the calls
  listed in ``calls``) or ``supervisor`` (may list and read every call of its tenant)
* ``tenant`` the only tenant the token is valid for
* ``calls``  list of call ids; for ``ingest`` it may be ``["*"]`` (any call id of the
  tenant); ``supervisor`` tokens carry ``[]``
* ``iat`` / ``exp`` issue and expiry time, integer unix seconds

The split between :func:`verify_token` (401: we do not know who you are) and
:func:`authorize` (403: we know, and the answer is no) mirrors HTTP.  A 403 for a
call outside an agent token says the same thing whether or not that call exists,
so tokens cannot be used to probe for other calls.

Tokens travel in ``?token=`` (browsers cannot set headers on a websocket) or in an
``Authorization: Bearer`` header; base64url keeps them URL-safe.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias, get_args

log = logging.getLogger(__name__)

Role: TypeAlias = Literal["ingest", "agent", "supervisor"]
Action: TypeAlias = Literal["ingest", "read_call", "list_calls"]
ROLES: tuple[Role, ...] = get_args(Role)
ANY_CALL = "*"

SECRET_BYTES = 32  # what load_or_create_secret generates: the HMAC-SHA256 block-size-safe key length
MIN_SECRET_BYTES = 16  # shorter keys are refused outright; they can be brute-forced offline
MAX_TOKEN_CHARS = 8_192  # anything longer is malformed; bounds the work an unauthenticated client causes
MAX_CALLS_PER_TOKEN = 256  # an agent handles a few calls at once; keeps tokens short enough for a URL
CLOCK_SKEW_S = 30  # tolerated clock difference between the issuer and this service (iat in the future)
MAX_TTL_S = 400 * 24 * 3600  # refuse to issue tokens that live longer than ~13 months

_HEADER = {"alg": "HS256", "typ": "JWT"}


class AuthError(Exception):
    """Refusal with the HTTP status to answer (401 unauthenticated, 403 forbidden).

    ``reason`` is safe to show to the client: it never names or confirms other calls.
    Websocket endpoints close with 1008 (policy violation) and the same reason.
    """

    def __init__(self, status: Literal[401, 403], reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status: Literal[401, 403] = status
        self.reason = reason


@dataclass(frozen=True)
class Claims:
    sub: str
    role: Role
    tenant: str
    calls: tuple[str, ...]
    iat: int
    exp: int

    def covers_call(self, call_id: str) -> bool:
        """Whether the token names this call (the ``*`` wildcard counts only for ingest)."""
        if self.role == "ingest" and ANY_CALL in self.calls:
            return True
        return call_id in self.calls


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or any(ch not in _B64URL for ch in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _sign(secret: bytes, signing_input: bytes) -> bytes:
    return hmac.new(secret, signing_input, hashlib.sha256).digest()


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"token secret must be at least {MIN_SECRET_BYTES} bytes")


def issue_token(
    secret: bytes,
    *,
    role: Role,
    tenant: str,
    sub: str,
    calls: Iterable[str] = (),
    ttl_s: int,
    now: float | None = None,
) -> str:
    """Mint a token; raises ``ValueError`` for a request that could never be authorized.

    An ``ingest`` token with no ``calls`` is issued for any call (``["*"]``): a
    telephony connector usually does not know call ids in advance.  An ``agent``
    token must name its calls; a ``supervisor`` token must not.
    """
    _check_secret(secret)
    call_list = list(dict.fromkeys(calls))
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if not tenant or not sub:
        raise ValueError("tenant and sub must not be empty")
    if not 0 < ttl_s <= MAX_TTL_S:
        raise ValueError(f"ttl_s must be between 1 and {MAX_TTL_S}")
    if len(call_list) > MAX_CALLS_PER_TOKEN or any(not c for c in call_list):
        raise ValueError(f"calls must be 1..{MAX_CALLS_PER_TOKEN} non-empty ids")
    if role == "ingest" and not call_list:
        call_list = [ANY_CALL]
    if role == "agent" and (not call_list or ANY_CALL in call_list):
        raise ValueError("an agent token must name its calls (no '*'); use a supervisor token for all calls")
    if role == "supervisor" and call_list:
        raise ValueError("a supervisor token covers all calls of its tenant; do not list calls")
    iat = int(time.time() if now is None else now)
    payload = {"sub": sub, "role": role, "tenant": tenant, "calls": call_list, "iat": iat, "exp": iat + ttl_s}
    signing_input = (
        _b64encode(json.dumps(_HEADER, separators=(",", ":")).encode())
        + "."
        + _b64encode(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())
    )
    return signing_input + "." + _b64encode(_sign(secret, signing_input.encode("ascii")))


def verify_token(secret: bytes, token: str | None, *, now: float | None = None) -> Claims:
    """Check signature, shape and lifetime; raises ``AuthError(401)`` on any failure.

    The signature is checked (in constant time) before the payload is parsed, so
    nothing an unauthenticated client wrote reaches the JSON parser.
    """
    _check_secret(secret)
    if not token:
        raise AuthError(401, "missing token")
    if len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        raise AuthError(401, "malformed token")
    header_b64, payload_b64, signature_b64 = token.split(".")
    try:
        signature = _b64decode(signature_b64)
        _b64decode(header_b64)
        _b64decode(payload_b64)  # the charset check guarantees an ASCII signing input
    except (ValueError, binascii.Error):
        raise AuthError(401, "malformed token") from None
    expected = _sign(secret, f"{header_b64}.{payload_b64}".encode("ascii"))
    if not hmac.compare_digest(signature, expected):
        raise AuthError(401, "invalid token signature")
    try:
        header = json.loads(_b64decode(header_b64))
        payload = json.loads(_b64decode(payload_b64))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AuthError(401, "malformed token") from None
    if header != _HEADER:
        raise AuthError(401, "unsupported token header")
    claims = _claims_from(payload)
    t = time.time() if now is None else now
    if t >= claims.exp:
        raise AuthError(401, "token expired")
    if claims.iat > t + CLOCK_SKEW_S:
        raise AuthError(401, "token not yet valid")
    return claims


def _claims_from(payload: Any) -> Claims:
    """Validate claim types strictly: a signed-but-odd token is still refused."""
    bad = AuthError(401, "malformed token claims")
    if not isinstance(payload, dict):
        raise bad
    sub, role, tenant = payload.get("sub"), payload.get("role"), payload.get("tenant")
    calls, iat, exp = payload.get("calls"), payload.get("iat"), payload.get("exp")
    if not (isinstance(sub, str) and sub and isinstance(tenant, str) and tenant):
        raise bad
    if role not in ROLES:
        raise bad
    if not isinstance(calls, list) or not all(isinstance(c, str) and c for c in calls):
        raise bad
    if not (isinstance(iat, int) and isinstance(exp, int)) or isinstance(iat, bool) or isinstance(exp, bool):
        raise bad
    return Claims(sub=sub, role=role, tenant=tenant, calls=tuple(calls), iat=iat, exp=exp)


def authorize(claims: Claims, *, action: Action, tenant: str, call_id: str | None = None) -> None:
    """Raise ``AuthError(403)`` unless ``claims`` allow ``action`` on ``tenant``/``call_id``.

    * ``ingest``     role ingest, and the call is covered (listed, or ``*``)
    * ``read_call``  role supervisor of the tenant, or an agent whose token lists the call
    * ``list_calls`` role supervisor of the tenant
    """
    if claims.tenant != tenant:
        raise AuthError(403, "token is not valid for this tenant")
    if action == "ingest":
        if claims.role != "ingest":
            raise AuthError(403, "token may not send audio")
        if call_id is None or not claims.covers_call(call_id):
            raise AuthError(403, "token does not cover this call")
    elif action == "read_call":
        if claims.role == "supervisor":
            return
        if claims.role != "agent":
            raise AuthError(403, "token may not read calls")
        if call_id is None or not claims.covers_call(call_id):
            raise AuthError(403, "token does not cover this call")
    elif action == "list_calls":
        if claims.role != "supervisor":
            raise AuthError(403, "token may not list calls")
    else:
        raise AuthError(403, "unknown action")


def token_from(authorization: str | None, query_token: str | None) -> str | None:
    """The token of a request: ``Authorization: Bearer`` wins over ``?token=``.

    Browsers cannot set headers on websockets, hence the query parameter; the
    server should keep it out of access logs.
    """
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return query_token or None


def load_or_create_secret(path: str | Path) -> bytes:
    """The signing key at ``path``; created (32 random bytes, mode 0600) on first use.

    Created so that a first local run works with no set-up; kept on disk so tokens
    survive a restart.  A file readable by others is still used but logged, since
    anyone who can read it can mint supervisor tokens.
    """
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        p.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = secrets.token_bytes(SECRET_BYTES)
        try:
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it first: use theirs
            data = p.read_bytes()
        else:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            log.info("created token secret %s", p)
    if len(data) < MIN_SECRET_BYTES:
        raise ValueError(f"token secret {p} is shorter than {MIN_SECRET_BYTES} bytes")
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077:
        log.warning("token secret %s is accessible to other users (mode %o); chmod 600 it", p, mode)
    return data
