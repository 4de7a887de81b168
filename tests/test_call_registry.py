"""The call registry (stream/live/registry.py): live calls by id, and the logs of recently
ended calls kept (oldest dropped first) so a client reconnecting after hang-up still replays."""

from __future__ import annotations

from typing import cast

from stream.live.registry import CallRegistry
from stream.live.session import CallSession
from tests.fakes import StubSession


def session(call_id: str) -> CallSession:
    return cast(CallSession, StubSession(call_id))


def test_live_calls_are_found_by_id() -> None:
    reg = CallRegistry(ended_kept=2)
    a, b = session("a"), session("b")
    entry = reg.add(a)
    reg.add(b)
    assert len(reg) == 2
    assert reg.live("a") is entry and entry.session is a
    assert entry.connections == 0 and entry.legs_attached == set()
    assert {e.session.call_id for e in reg.live_calls()} == {"a", "b"}
    assert reg.log("b") is b.log
    assert reg.live("nope") is None and reg.log("nope") is None


def test_an_ended_call_leaves_the_live_set_but_keeps_its_log() -> None:
    reg = CallRegistry(ended_kept=2)
    a = session("a")
    reg.add(a)
    reg.ended("a")
    assert len(reg) == 0 and reg.live("a") is None and reg.live_calls() == []
    assert reg.log("a") is a.log


def test_only_the_newest_ended_logs_are_kept() -> None:
    reg = CallRegistry(ended_kept=2)
    calls = [session(c) for c in "abc"]
    for s in calls:
        reg.add(s)
    for s in calls:
        reg.ended(s.call_id)
    assert reg.log("a") is None
    assert reg.log("b") is calls[1].log and reg.log("c") is calls[2].log


def test_ending_twice_or_ending_an_unknown_call_changes_nothing() -> None:
    reg = CallRegistry(ended_kept=1)
    a, b = session("a"), session("b")
    reg.add(a)
    reg.add(b)
    reg.ended("a")
    reg.ended("b")
    reg.ended("a")  # already ended: must not bring a back nor push b out
    reg.ended("nope")
    assert reg.log("a") is None and reg.log("b") is b.log


def test_a_call_id_reused_while_live_prefers_the_live_log() -> None:
    reg = CallRegistry(ended_kept=2)
    old, new = session("a"), session("a")
    reg.add(old)
    reg.ended("a")
    reg.add(new)
    assert reg.log("a") is new.log
    reg.ended("a")
    assert reg.log("a") is new.log


def test_registries_share_nothing() -> None:
    one, two = CallRegistry(ended_kept=1), CallRegistry(ended_kept=1)
    one.add(session("a"))
    assert two.live("a") is None and len(two) == 0
