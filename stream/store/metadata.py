"""Masking of call metadata before the store writes it.

Event text is masked upstream (the utterance step), but call metadata comes straight from the
telephony side and never passes through it: the caller's number sits in ``from``/``caller``.  So the
store masks the values whose key names a kind of personal data, and stores other metadata (telephony
ids, time zone names) as given, since masking would break the link back to the telephony system.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from assist.masking import MaskingPolicy, mask

# Metadata keys are split into words (snake, kebab, camelCase); a key with one of these words holds
# personal data and its value is masked.  Masking only touches long digit runs and e-mail addresses,
# so a broad list ("from", "to": caller and callee numbers) costs nothing on other values.
PERSONAL_KEY_WORDS = frozenset(
    {"phone", "mobile", "tel", "cell", "msisdn", "ani", "caller", "callee", "from", "to", "email", "mail"}
    | {"card", "idcard", "ssn", "account", "acct", "passport", "iban"}
)
_KEY_WORD = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")


def personal_key(key: str) -> bool:
    return any(w.lower() in PERSONAL_KEY_WORDS for w in _KEY_WORD.findall(key))


def mask_metadata(metadata: Mapping[str, Any], language: str, policy: MaskingPolicy | None) -> dict[str, Any]:
    """``metadata`` with personal values masked (nested mappings and lists too); None: unchanged."""

    def one(value: str) -> str:
        return mask(value, language=language, policy=policy) if policy and value else value

    def walk(key: str, value: Any) -> Any:
        if isinstance(value, Mapping):
            return {str(k): walk(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [walk(key, v) for v in value]
        if isinstance(value, str) and personal_key(key):
            return one(value)
        if isinstance(value, int) and not isinstance(value, bool) and personal_key(key):
            return one(str(value))
        return value

    return {str(k): walk(str(k), v) for k, v in metadata.items()}
