"""Token cases, one per way a request can be refused, plus the ones that must pass."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import time
from pathlib import Path

import pytest

from stream.auth import (
    AuthError,
    Claims,
    authorize,
    issue_token,
    load_or_create_secret,
    token_from,
    verify_token,
)

SECRET = b"s" * 32
OTHER_SECRET = b"o" * 32
NOW = 1_764_331_200.0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(
    payload: dict[str, object], *, header: dict[str, object] | None = None, key: bytes = SECRET
) -> str:
    signing_input = (
        _b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
        + "."
        + _b64(json.dumps(payload).encode())
    )
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)


def _agent(calls: tuple[str, ...] = ("call-1",), tenant: str = "acme", ttl_s: int = 3600) -> str:
    return issue_token(SECRET, role="agent", tenant=tenant, sub="agent-7", calls=calls, ttl_s=ttl_s, now=NOW)


def _refused(status: int, fn: object, *args: object, **kwargs: object) -> AuthError:
    assert callable(fn)
    with pytest.raises(AuthError) as info:
        fn(*args, **kwargs)
    assert info.value.status == status
    return info.value


# -- verify_token: 401 -------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, ""])
def test_missing_token(token: str | None) -> None:
    err = _refused(401, verify_token, SECRET, token, now=NOW)
    assert err.reason == "missing token"


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b",
        "a.b.c.d",
        "!!!.???.***",
        "e30.e30.",  # empty signature
        "é.é.é",
        "x" * 10_000,
    ],
)
def test_malformed_token(token: str) -> None:
    _refused(401, verify_token, SECRET, token, now=NOW)


def test_forged_signature() -> None:
    good = _agent()
    header, payload, signature = good.split(".")
    # Widen the agent's scope without the key: payload changed, signature kept.
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["role"] = "supervisor"
    tampered = f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"
    assert _refused(401, verify_token, SECRET, tampered, now=NOW).reason == "invalid token signature"
    # Signed with another key.
    other = issue_token(OTHER_SECRET, role="supervisor", tenant="acme", sub="x", ttl_s=60, now=NOW)
    _refused(401, verify_token, SECRET, other, now=NOW)
    # Flipped signature bit.
    sig = bytearray(base64.urlsafe_b64decode(signature + "="))
    sig[0] ^= 1
    _refused(401, verify_token, SECRET, f"{header}.{payload}.{_b64(bytes(sig))}", now=NOW)


def test_alg_none_and_other_headers_are_refused() -> None:
    payload = {"sub": "x", "role": "supervisor", "tenant": "acme", "calls": [], "iat": 1, "exp": 2**40}
    unsigned = _b64(b'{"alg":"none","typ":"JWT"}') + "." + _b64(json.dumps(payload).encode()) + "."
    _refused(401, verify_token, SECRET, unsigned, now=NOW)
    # Even correctly signed, only the HS256 header is accepted.
    err = _refused(401, verify_token, SECRET, _forge(payload, header={"alg": "HS512"}), now=NOW)
    assert err.reason == "unsupported token header"


@pytest.mark.parametrize(
    "payload",
    [
        {"sub": "x", "role": "root", "tenant": "acme", "calls": [], "iat": 1, "exp": 2**40},
        {"sub": "x", "role": "agent", "tenant": "acme", "calls": "call-1", "iat": 1, "exp": 2**40},
        {"sub": "x", "role": "agent", "tenant": "", "calls": ["c"], "iat": 1, "exp": 2**40},
        {"sub": "x", "role": "agent", "tenant": "acme", "calls": ["c"], "iat": 1, "exp": "never"},
        {"sub": "x", "role": "agent", "tenant": "acme", "calls": ["c"], "iat": 1},
        ["not", "an", "object"],
    ],
)
def test_signed_but_invalid_claims(payload: dict[str, object]) -> None:
    _refused(401, verify_token, SECRET, _forge(payload), now=NOW)


def test_expired() -> None:
    token = _agent(ttl_s=60)
    assert verify_token(SECRET, token, now=NOW + 59).sub == "agent-7"
    assert _refused(401, verify_token, SECRET, token, now=NOW + 60).reason == "token expired"
    assert _refused(401, verify_token, SECRET, token, now=NOW + 86_400).reason == "token expired"


def test_issued_in_the_future_beyond_skew() -> None:
    token = _agent()
    assert verify_token(SECRET, token, now=NOW - 10).sub == "agent-7"  # within CLOCK_SKEW_S
    _refused(401, verify_token, SECRET, token, now=NOW - 3600)


# -- authorize: 403 ----------------------------------------------------------------------------


def _claims(token: str) -> Claims:
    return verify_token(SECRET, token, now=NOW)


def test_valid_tokens_each_role() -> None:
    agent = _claims(_agent(("call-1", "call-2")))
    assert agent == Claims("agent-7", "agent", "acme", ("call-1", "call-2"), int(NOW), int(NOW) + 3600)
    authorize(agent, action="read_call", tenant="acme", call_id="call-2")

    supervisor = _claims(issue_token(SECRET, role="supervisor", tenant="acme", sub="sup", ttl_s=60, now=NOW))
    authorize(supervisor, action="list_calls", tenant="acme")
    authorize(supervisor, action="read_call", tenant="acme", call_id="any-call")

    ingest_any = _claims(issue_token(SECRET, role="ingest", tenant="acme", sub="twilio", ttl_s=60, now=NOW))
    assert ingest_any.calls == ("*",)
    authorize(ingest_any, action="ingest", tenant="acme", call_id="new-call")

    ingest_one = _claims(
        issue_token(SECRET, role="ingest", tenant="acme", sub="fs", calls=["call-9"], ttl_s=60, now=NOW)
    )
    authorize(ingest_one, action="ingest", tenant="acme", call_id="call-9")
    _refused(403, authorize, ingest_one, action="ingest", tenant="acme", call_id="call-10")


def test_agent_token_for_another_call() -> None:
    agent = _claims(_agent(("call-1",)))
    err = _refused(403, authorize, agent, action="read_call", tenant="acme", call_id="call-2")
    # Same answer whether or not the call exists: the reason does not name it.
    assert "call-2" not in err.reason
    _refused(403, authorize, agent, action="read_call", tenant="acme", call_id=None)


def test_wrong_role() -> None:
    agent = _claims(_agent(("call-1",)))
    _refused(403, authorize, agent, action="list_calls", tenant="acme")
    _refused(403, authorize, agent, action="ingest", tenant="acme", call_id="call-1")

    ingest = _claims(issue_token(SECRET, role="ingest", tenant="acme", sub="twilio", ttl_s=60, now=NOW))
    _refused(403, authorize, ingest, action="read_call", tenant="acme", call_id="call-1")
    _refused(403, authorize, ingest, action="list_calls", tenant="acme")

    supervisor = _claims(issue_token(SECRET, role="supervisor", tenant="acme", sub="sup", ttl_s=60, now=NOW))
    _refused(403, authorize, supervisor, action="ingest", tenant="acme", call_id="call-1")


def test_supervisor_of_another_tenant() -> None:
    other = _claims(issue_token(SECRET, role="supervisor", tenant="globex", sub="sup", ttl_s=60, now=NOW))
    _refused(403, authorize, other, action="list_calls", tenant="acme")
    _refused(403, authorize, other, action="read_call", tenant="acme", call_id="call-1")
    agent_elsewhere = _claims(_agent(("call-1",), tenant="globex"))
    _refused(403, authorize, agent_elsewhere, action="read_call", tenant="acme", call_id="call-1")


def test_agent_wildcard_is_not_honoured() -> None:
    with pytest.raises(ValueError):
        _agent(("*",))
    # Even if someone with the key signs one, '*' means nothing for an agent.
    payload = {"sub": "x", "role": "agent", "tenant": "acme", "calls": ["*"], "iat": int(NOW), "exp": 2**40}
    claims = verify_token(SECRET, _forge(payload), now=NOW)
    _refused(403, authorize, claims, action="read_call", tenant="acme", call_id="call-1")


def test_issue_refuses_tokens_that_make_no_sense() -> None:
    with pytest.raises(ValueError):
        issue_token(SECRET, role="agent", tenant="acme", sub="a", ttl_s=60)  # no calls
    with pytest.raises(ValueError):
        issue_token(SECRET, role="supervisor", tenant="acme", sub="s", calls=["c"], ttl_s=60)
    with pytest.raises(ValueError):
        issue_token(SECRET, role="agent", tenant="acme", sub="a", calls=["c"], ttl_s=0)
    with pytest.raises(ValueError):
        issue_token(b"short", role="agent", tenant="acme", sub="a", calls=["c"], ttl_s=60)
    with pytest.raises(ValueError):
        issue_token(SECRET, role="admin", tenant="acme", sub="a", ttl_s=60)  # type: ignore[arg-type]


def test_token_is_a_standard_hs256_jwt() -> None:
    token = _agent(("通话-1",))
    header, payload, signature = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256", "typ": "JWT"}
    expected = hmac.new(SECRET, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    assert base64.urlsafe_b64decode(signature + "=") == expected
    assert all(ch.isalnum() or ch in "-_." for ch in token)  # URL-safe as a query parameter
    assert verify_token(SECRET, token, now=NOW).calls == ("通话-1",)


def test_token_from_header_or_query() -> None:
    assert token_from("Bearer abc", "q") == "abc"
    assert token_from("bearer  abc ", None) == "abc"
    assert token_from("Basic xyz", "q") == "q"
    assert token_from(None, "") is None
    assert token_from(None, None) is None


# -- secret file -------------------------------------------------------------------------------


def test_load_or_create_secret(tmp_path: Path) -> None:
    path = tmp_path / "state" / "token.key"
    first = load_or_create_secret(path)
    assert len(first) == 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret(path) == first  # stable across restarts
    token = issue_token(first, role="supervisor", tenant="acme", sub="s", ttl_s=60)
    assert verify_token(load_or_create_secret(path), token).role == "supervisor"
    assert load_or_create_secret(tmp_path / "other.key") != first


def test_short_secret_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token.key"
    path.write_bytes(b"tiny")
    with pytest.raises(ValueError):
        load_or_create_secret(path)


def test_verify_uses_current_time_by_default() -> None:
    token = issue_token(SECRET, role="supervisor", tenant="acme", sub="s", ttl_s=60)
    assert verify_token(SECRET, token).exp <= int(time.time()) + 60
