"""The outcome record: typed, frozen, with one JSON form (see the package docstring for the schema)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, replace
from datetime import date
from typing import Any, Generic, Literal, TypeVar

from assist.events import Speaker

OUTCOME_SCHEMA = 1

PlanKind = Literal["instalments", "deferral", "settlement", "grace"]
DisputeWhat = Literal["amount", "identity", "not_my_debt"]
Channel = Literal["sms", "email", "mail", "written"]
HardshipReason = Literal["job_loss", "business_failure", "illness", "income_cut", "family", "other"]
Relation = Literal["spouse", "parent", "child", "sibling", "relative", "friend", "colleague", "other"]


@dataclass(frozen=True)
class Utterance:
    """One finished utterance of the call, as the outcome tracker reads it."""

    utterance_id: str
    speaker: Speaker
    text: str
    language: str  # "zh" | "en"


@dataclass(frozen=True)
class Promise:
    """A single payment committed to."""

    amount: float
    currency: str  # ISO 4217: "CNY", "USD"
    due: date | None


@dataclass(frozen=True)
class Plan:
    """A repayment arrangement; fields the call did not state are None."""

    kind: PlanKind
    count: int | None = None  # number of instalments (settlement: 1)
    amount_each: float | None = None  # instalment amount (settlement: the agreed sum)
    currency: str | None = None
    first_due: date | None = None
    months_deferred: int | None = None
    days_grace: int | None = None


@dataclass(frozen=True)
class Dispute:
    """What the customer disputes."""

    what: DisputeWhat


@dataclass(frozen=True)
class CeaseContact:
    """A request to stop calling."""

    channel: Channel | None  # the channel the customer asked for instead of calls


@dataclass(frozen=True)
class Lawyer:
    """The customer is (or is getting) represented."""

    contact: str | None  # a phone number or name the customer gave for the lawyer


@dataclass(frozen=True)
class Callback:
    """When the customer asked to be called back."""

    date: date | None
    time: str | None  # "HH:MM", borrower's local time


@dataclass(frozen=True)
class ThirdParty:
    """Someone other than the debtor answered."""

    relation: Relation


@dataclass(frozen=True)
class Hardship:
    """Why the customer cannot pay as agreed."""

    reason: HardshipReason


V = TypeVar("V")


@dataclass(frozen=True)
class Field(Generic[V]):
    """A value, the utterance it came from, and whether it was confirmed (and by which utterance)."""

    value: V
    source: str  # utterance_id
    speaker: Speaker  # who said it first
    confirmed: bool = False
    confirmed_by: str | None = None

    def confirm(self, utterance_id: str) -> Field[V]:
        return self if self.confirmed else replace(self, confirmed=True, confirmed_by=utterance_id)


@dataclass(frozen=True)
class Outcome:
    """What the call agreed or recorded so far."""

    promise_to_pay: tuple[Field[Promise], ...] = ()
    plan: Field[Plan] | None = None
    disputed: Field[Dispute] | None = None
    cease_contact: Field[CeaseContact] | None = None
    lawyer: Field[Lawyer] | None = None
    callback: Field[Callback] | None = None
    third_party_answered: Field[ThirdParty] | None = None
    hardship: Field[Hardship] | None = None
    schema: int = field(default=OUTCOME_SCHEMA)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": self.schema}
        for f in fields(self):
            if f.name == "schema":
                continue
            v = getattr(self, f.name)
            out[f.name] = [_field_json(x) for x in v] if isinstance(v, tuple) else _field_json(v)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=False)


def _plain(v: Any) -> Any:
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _field_json(f: Field[Any] | None) -> dict[str, Any] | None:
    if f is None:
        return None
    value = {k.name: _plain(getattr(f.value, k.name)) for k in fields(f.value)}
    return {
        **value,
        "source": f.source,
        "speaker": f.speaker,
        "confirmed": f.confirmed,
        "confirmed_by": f.confirmed_by,
    }
