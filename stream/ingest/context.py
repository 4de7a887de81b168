"""What a transport needs of the service it runs in: settings, the access gate and the call manager.

A :class:`typing.Protocol`, so :mod:`stream.ingest` depends on none of :mod:`stream.web`: the web
service passes itself (it has these three attributes) when it registers the ingest routes, and a
test may pass anything that has them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, TypeAlias

from aiohttp import web

from stream.auth import Claims
from stream.live.calls import CallManager
from stream.settings import Settings


class AccessGate(Protocol):
    """The token checks an ingest transport makes (:class:`stream.web.access.Gate` implements them)."""

    @property
    def enabled(self) -> bool: ...

    @property
    def secret(self) -> bytes: ...

    def claims(self, request: web.Request) -> Claims | None:
        """The request's verified claims (``None`` with auth off); ``AuthError(401)`` if bad."""
        ...

    def may_send_audio(self, claims: Claims | None) -> None:
        """Raise ``AuthError`` unless the token may send audio at all (role, tenant)."""
        ...

    def may_ingest_call(self, claims: Claims | None, call_id: str) -> None:
        """Raise ``AuthError`` unless the token may send audio for ``call_id``."""
        ...

    def note_ingest(self, claims: Claims | None, call_id: str, *, new_call: bool) -> None:
        """Remember who sends ``call_id`` (that token may then follow the call's events)."""
        ...


Credentials: TypeAlias = Callable[[str | None], Claims | None]
"""Who sends a call, given the core's in-band token (if any); raises ``AuthError`` if refused."""


class IngestContext(Protocol):
    """The narrow view of the service that every ingest transport gets."""

    @property
    def settings(self) -> Settings: ...

    @property
    def gate(self) -> AccessGate: ...

    @property
    def calls(self) -> CallManager: ...
