"""The adapters' settings are checked when the settings are built, with one-line reasons."""

from __future__ import annotations

from typing import Any

import pytest

from stream.settings import AdapterSettings, SettingsError, load_settings


def test_defaults_are_safe() -> None:
    a = load_settings().adapters
    assert a == AdapterSettings()
    assert a.audiohook_api_keys == () and a.audiosocket_port == 0  # nothing open until configured
    assert (a.twilio_inbound_leg, a.freeswitch_channel0_leg) == ("customer", "customer")


def test_toml_lists_and_values(tmp_path: Any) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[adapters]\naudiohook_api_keys = ["key-one-0123456789", "key-two-0123456789"]\n'
        'audiohook_client_secret = "TXlTdXBlclNlY3JldEtleVRlbGxOby0xITJAMyM0JDU="\n'
        'audiosocket_port = 9092\ntwilio_inbound_leg = "agent"\n',
        encoding="utf-8",
    )
    a = load_settings(path).adapters
    assert a.audiohook_api_keys == ("key-one-0123456789", "key-two-0123456789")
    assert (a.audiosocket_port, a.twilio_inbound_leg) == (9092, "agent")


@pytest.mark.parametrize(
    ("key", "value", "why"),
    [
        ("adapters.audiohook_api_keys", "short-string", "audiohook_api_keys"),
        ("adapters.audiohook_api_keys", ["short"], "at least 16"),
        ("adapters.audiohook_client_secret", "not base64!", "audiohook_client_secret"),
        ("adapters.audiohook_client_secret", "c2hvcnQ=", "at least 16 bytes"),
        ("adapters.twilio_inbound_leg", "caller", "agent' or 'customer"),
        ("adapters.audiosocket_port", 70000, "0..65535"),
        ("adapters.audiosocket_pairing", "uuid", "'suffix' or 'none'"),
    ],
)
def test_bad_values_are_refused(key: str, value: Any, why: str) -> None:
    with pytest.raises(SettingsError, match=why):
        load_settings(None, {key: value})
