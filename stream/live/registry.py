"""Which calls exist in this process: live sessions and recently ended logs.

Ended calls keep their event log in memory (bounded by
``limits.ended_calls_kept``) so an overlay that reconnects just after hang-up
still catches up.  This is per-process state owned by one server instance --
not module-global -- so several servers (and tests) never share it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from stream.live.bus import CallLog
from stream.live.session import CallSession


@dataclass
class LiveCall:
    session: CallSession
    connections: int = 0
    legs_attached: set[str] = field(default_factory=set)


class CallRegistry:
    def __init__(self, *, ended_kept: int) -> None:
        self._live: dict[str, LiveCall] = {}
        self._logs: OrderedDict[str, CallLog] = OrderedDict()
        self._ended_kept = ended_kept

    def live(self, call_id: str) -> LiveCall | None:
        return self._live.get(call_id)

    def live_calls(self) -> list[LiveCall]:
        return list(self._live.values())

    def log(self, call_id: str) -> CallLog | None:
        live = self._live.get(call_id)
        if live is not None:
            return live.session.log
        return self._logs.get(call_id)

    def add(self, session: CallSession) -> LiveCall:
        entry = LiveCall(session=session)
        self._live[session.call_id] = entry
        return entry

    def ended(self, call_id: str) -> None:
        entry = self._live.pop(call_id, None)
        if entry is None:
            return
        self._logs[call_id] = entry.session.log
        self._logs.move_to_end(call_id)
        while len(self._logs) > self._ended_kept:
            self._logs.popitem(last=False)

    def __len__(self) -> int:
        return len(self._live)
