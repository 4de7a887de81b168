"""The durable call store: every call's metadata and its final transcripts and guidance events,
written as they happen so that a QA reviewer can replay and score the call afterwards.

One small synchronous interface (:class:`Store`, in :mod:`stream.store.base` with the durability and
privacy contract), two implementations behind :func:`open_store`:

* SQLite (``sqlite:///abs/path/calls.db`` or a plain path), the embedded default
  (:mod:`stream.store.sqlite`).
* PostgreSQL (``postgresql://user@host:port/db``), so several service nodes share one store
  (:mod:`stream.store.postgres`).

Schema, migrations and queries are shared (:mod:`stream.store.sql`).
"""

from __future__ import annotations

from assist.masking import DEFAULT_POLICY, MaskingPolicy
from stream.store.base import (
    CALL_STATUSES,
    END_STATUSES,
    LIST_LIMIT_MAX,
    CallRecord,
    DateBound,
    EndStatus,
    Store,
    StoreError,
    UnknownCallError,
)
from stream.store.postgres import PostgresStore
from stream.store.sql import SCHEMA_VERSION
from stream.store.sqlite import SqliteStore

__all__ = [
    "CALL_STATUSES",
    "END_STATUSES",
    "LIST_LIMIT_MAX",
    "SCHEMA_VERSION",
    "CallRecord",
    "DateBound",
    "EndStatus",
    "PostgresStore",
    "SqliteStore",
    "Store",
    "StoreError",
    "UnknownCallError",
    "open_store",
]


def open_store(url: str, *, masking: MaskingPolicy | None = DEFAULT_POLICY) -> Store:
    """Open (creating and migrating as needed) the store at ``url``.

    ``url``: ``postgresql://...`` / ``postgres://...``, ``sqlite:///abs/path.db``, ``sqlite:rel.db`` or a
    plain file path.  ``masking``: what is masked in call metadata before writing (default: every
    kind); None: nothing.  Event text arrives masked already.
    """
    if url.startswith(("postgresql://", "postgres://")):
        return PostgresStore(url, masking=masking)
    if url.startswith("sqlite:"):
        path = url[len("sqlite:") :]
        if path.startswith("//"):
            path = path[2:]  # sqlite:///abs/path -> /abs/path
    elif "://" in url:
        raise StoreError(f"unsupported store URL scheme in {url!r}: use sqlite:///path or postgresql://")
    else:
        path = url
    if not path or path == ":memory:":
        raise StoreError("the call store needs a file path (an in-memory store would lose every call)")
    return SqliteStore(path, masking=masking)
