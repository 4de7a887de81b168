"""Post-call review: a call's stored events in, a scored report (typed, with its JSON and HTML) out.

:mod:`assist.review.report` builds it (schema and scoring documented there) from the reading of the
call (:mod:`~assist.review.call`), the checklist (:mod:`~assist.review.checklist`) and the call's
figures (:mod:`~assist.review.figures`); :mod:`~assist.review.model` is the typed report and its JSON;
:mod:`~assist.review.html` draws the page.
"""

from assist.review.html import render_html
from assist.review.model import REPORT_SCHEMA, Report
from assist.review.report import CallFacts, CallInfo, build_report

__all__ = ["REPORT_SCHEMA", "CallFacts", "CallInfo", "Report", "build_report", "render_html"]
