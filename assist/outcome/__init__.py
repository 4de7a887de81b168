"""What a collection call agreed: promises to pay, plans, disputes and requests.

Pure (no I/O, no clock): the caller passes the call's start time and the borrower's
time zone, and finished utterances in order.  ``OutcomeTracker.add`` returns the new
``Outcome`` whenever an utterance changed it, so a live call can emit an update per
change; ``extract_outcome`` runs a whole call.  Extraction is rule-based on purpose:
the terms are numbers and dates, where a wrong guess is worse than a blank, and the
rules can be read and fixed line by line (``cues.py``).

JSON schema, version ``OUTCOME_SCHEMA = 1`` (``Outcome.to_json()``)::

    {"schema": 1,
     "promise_to_pay": [F{amount: number, currency: "CNY"|"USD", due: "YYYY-MM-DD"|null}],
     "plan": F{kind: "instalments"|"deferral"|"settlement"|"grace", count: int|null,
               amount_each: number|null, currency: str|null, first_due: date|null,
               months_deferred: int|null, days_grace: int|null} | null,
     "disputed": F{what: "amount"|"identity"|"not_my_debt"} | null,
     "cease_contact": F{channel: "sms"|"email"|"mail"|"written"|null} | null,
     "lawyer": F{contact: str|null} | null,
     "callback": F{date: date|null, time: "HH:MM"|null} | null,
     "third_party_answered": F{relation: "spouse"|"parent"|"child"|"sibling"|"relative"|
                                         "friend"|"colleague"|"other"} | null,
     "hardship": F{reason: "job_loss"|"business_failure"|"illness"|"income_cut"|"family"|"other"} | null}

where ``F{...}`` is the value's keys plus ``source`` (utterance_id it came from),
``speaker`` ("agent"|"customer": who put it forward), ``confirmed`` (bool) and
``confirmed_by`` (utterance_id or null).  Dates are the borrower's local dates.

Meaning of the fields:
- ``promise_to_pay``: single payments the customer committed to (a down payment, a
  partial payment, an instalment the customer names with its date), or an agent's
  "X by D" the customer accepted.  A plan's schedule is in ``plan``, not repeated here.
- ``plan``: instalments (count, amount_each, first_due), deferral (months_deferred, or
  first_due when given in days), settlement (count 1, amount_each = the agreed sum),
  grace (days_grace).  An offer of alternatives ("a plan or a deferral") is no plan.
  A later line that changes a term replaces the plan (new source, unconfirmed).
- ``disputed`` "amount" also covers "already paid" and "returned the goods".
- ``confirmed``: a customer's term restated by a later agent line (an acknowledgement
  for dispute / stop-calling / lawyer / callback / hardship / third party); an agent's
  term agreed to or repeated by the customer's next line.

Currency: the one the text names next to the amount, else the call language's (zh CNY,
en USD).  Left blank rather than guessed: vague dates ("next week", "发工资了", a month
name alone) give ``due: null``; "一千出头" / "about 500" are no amounts; hardship
"other" is in the vocabulary but no rule yields it yet.  Whisper's 期 -> 七/7 mishearing
("每七两千九百块") is undone before reading Mandarin terms.

Bump ``OUTCOME_SCHEMA`` on any change a consumer of the JSON would notice.
"""

from assist.outcome.model import OUTCOME_SCHEMA, Field, Outcome, Utterance
from assist.outcome.tracker import OutcomeTracker, extract_outcome

# the value types (Promise, Plan, Dispute, ...) are in assist.outcome.model
__all__ = ["OUTCOME_SCHEMA", "Field", "Outcome", "OutcomeTracker", "Utterance", "extract_outcome"]
