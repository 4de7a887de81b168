"""Post-call review commands: ``review``, ``calls list`` and ``analyze``.

``review`` and ``calls list`` read the call store the service writes (``--store URL``, else the
settings' ``store_url()``; see :mod:`stream.store`).  They never create one: a missing SQLite file is
reported, since an empty store created by a typo in a path would look like "no calls".

``calls list`` prints one row per call, newest first::

    ID  START (UTC)  DURATION  STATUS  AGENT  CRIT  MAJ  MIN

or, with ``--json``, an array of ``{"call_id", "tenant", "node", "language", "status", "start_time"
(ISO 8601 UTC), "ended_at" (ISO | null), "duration" (s | null), "agent", "findings": {"critical",
"major", "minor"}}``.  ``--from``/``--to`` take a date (``2025-11-28``, a whole UTC day, ``--to``
inclusive) or an ISO date-time (naive = UTC, ``--to`` exclusive), as ``Store.list_calls`` does.

``analyze`` is :mod:`stream.offline.batch`.

Every user-caused failure is one line and exit status 1 (``ReviewCliError`` is caught by
``stream.cli.main.main`` like every ``stream`` error).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from stream.settings import SUPPORTED_LANGUAGES, Settings, load_settings

SEVERITIES = ("critical", "major", "minor")
STATUSES = ("live", "ended", "interrupted", "error")
AGENT_COLUMN_MAX = 24  # longer agent names are cut in the table (never in --json)


class ReviewCliError(RuntimeError):
    """A review command cannot do what was asked; printed as one line, exit status 1."""


def add_commands(sub: Any) -> None:  # argparse._SubParsersAction
    """Register this module's sub-commands on the `callassist` parser."""
    s = sub.add_parser("review", help="a stored call's review report (HTML or JSON)")
    s.add_argument("call_id")
    s.add_argument("--format", choices=["html", "json"], help="default: from -o's extension, else json")
    s.add_argument("-o", "--output", help="file to write (default: standard output)")
    s.add_argument("--store", help="call store URL (default: the settings' store)")
    s.set_defaults(func=cmd_review)

    calls = sub.add_parser("calls", help="stored calls")
    calls_sub = calls.add_subparsers(dest="calls_command", required=True)
    s = calls_sub.add_parser("list", help="list stored calls, newest first, with filters")
    s.add_argument("--rule", help="calls with at least one finding of this rule")
    s.add_argument("--severity", choices=SEVERITIES, help="calls with at least one finding of this severity")
    s.add_argument("--agent", help="metadata agent_name, exactly")
    s.add_argument("--from", dest="date_from", metavar="DATE", help="started on/after (YYYY-MM-DD or ISO)")
    s.add_argument(
        "--to",
        dest="date_to",
        metavar="DATE",
        help="started on/before this day (YYYY-MM-DD; an ISO date-time: before it)",
    )
    s.add_argument("--status", choices=STATUSES)
    s.add_argument("--limit", type=int, default=100, help="at most this many calls (default 100)")
    s.add_argument("--json", action="store_true", help="a JSON array instead of the table")
    s.add_argument("--store", help="call store URL (default: the settings' store)")
    s.set_defaults(func=cmd_calls_list)

    s = sub.add_parser(
        "analyze",
        help="review reports for recordings, offline (stereo WAV: left agent, right customer)",
        description="Writes <name>.json and <name>.html per recording and summary.csv into --out; "
        "resumable: recordings already analyzed with the same inputs and settings are skipped.",
    )
    s.add_argument("files", nargs="+", metavar="FILE", help="stereo WAVs, or with --pairs mono WAVs")
    s.add_argument("--out", required=True, metavar="DIR", help="folder for the reports")
    s.add_argument(
        "--language",
        choices=SUPPORTED_LANGUAGES,
        help="for every recording (default: each recording's <name>.json 'language', else zh)",
    )
    s.add_argument(
        "--pairs", action="store_true", help="mono files per call: <call>.agent.wav and <call>.customer.wav"
    )
    s.add_argument("--force", action="store_true", help="redo recordings already analyzed")
    s.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    s.add_argument("--playbook", help="playbook folder (default: the packaged prompts/)")
    s.add_argument("--backend", choices=["faster-whisper", "openai-whisper"])
    s.add_argument("--model", help="model name from `callassist models list`, or a path")
    s.set_defaults(func=cmd_analyze)


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {
        "asr.backend": getattr(args, "backend", None),
        "asr.model": getattr(args, "model", None),
        "playbook": getattr(args, "playbook", None),
    }
    return load_settings(getattr(args, "config", None), overrides)


def _open_existing_store(url: str) -> Any:
    from stream.store import open_store

    if not url.startswith(("postgresql://", "postgres://")):
        path = url[len("sqlite:") :] if url.startswith("sqlite:") else url
        if path.startswith("//"):
            path = path[2:]
        if path and not Path(path).exists():
            raise ReviewCliError(f"no call store at {path} (the service creates it; or pass --store URL)")
    return open_store(url)


# -- review ------------------------------------------------------------------------------------


def cmd_review(args: argparse.Namespace) -> int:
    from assist.review import build_report, render_html

    settings = _settings(args)
    fmt = args.format or ("html" if (args.output or "").lower().endswith((".html", ".htm")) else "json")
    with _open_existing_store(args.store or settings.store_url()) as store:
        call = store.get_call(args.call_id)
        if call is None:
            raise ReviewCliError(f"no call {args.call_id} in the store")
        events = store.events(args.call_id)
    report = build_report(call, events)
    text = render_html(report) if fmt == "html" else report.to_json(indent=1) + "\n"
    if args.output and args.output != "-":
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ReviewCliError(f"cannot write {args.output}: {exc.strerror}") from exc
    else:
        sys.stdout.write(text)
    return 0


# -- calls list --------------------------------------------------------------------------------


def parse_date_bound(value: str, *, option: str) -> dt.date | dt.datetime:
    """``YYYY-MM-DD`` is a whole UTC day; anything longer must be an ISO 8601 date-time."""
    try:
        if len(value) == 10:
            return dt.date.fromisoformat(value)
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise ReviewCliError(f"{option} {value!r}: use YYYY-MM-DD or an ISO 8601 date-time") from None


def cmd_calls_list(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise ReviewCliError("--limit must be at least 1")
    date_from = parse_date_bound(args.date_from, option="--from") if args.date_from else None
    date_to = parse_date_bound(args.date_to, option="--to") if args.date_to else None
    settings = _settings(args)
    with _open_existing_store(args.store or settings.store_url()) as store:
        records = store.list_calls(
            status=args.status,
            rule=args.rule,
            severity=args.severity,
            agent=args.agent,
            date_from=date_from,
            date_to=date_to,
            limit=args.limit,
        )
    rows = [call_row(r) for r in records]
    if args.json:
        json.dump(rows, sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(format_table(rows))
    return 0


def _iso(ts: float | None) -> str | None:
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds") if ts is not None else None


def call_row(record: Any) -> dict[str, Any]:
    """One ``stream.store.CallRecord`` as the ``--json`` object (shape in the module docstring)."""
    return {
        "call_id": record.call_id,
        "tenant": record.tenant,
        "node": record.node,
        "language": record.language,
        "status": record.status,
        "start_time": _iso(record.started_at),
        "ended_at": _iso(record.ended_at),
        "duration": round(record.duration, 3) if record.duration is not None else None,
        "agent": record.agent,
        "findings": {s: int(record.findings.get(s, 0)) for s in SEVERITIES},
    }


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    total = round(seconds)
    h, rest = divmod(total, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def format_table(rows: list[dict[str, Any]]) -> str:
    """Plain columns a terminal and ``grep`` both read; "(no calls)" when nothing matched."""
    if not rows:
        return "(no calls)\n"
    header = ("ID", "START (UTC)", "DURATION", "STATUS", "AGENT", "CRIT", "MAJ", "MIN")
    lines = [header]
    for r in rows:
        agent = r["agent"] or "-"
        if len(agent) > AGENT_COLUMN_MAX:
            agent = agent[: AGENT_COLUMN_MAX - 1] + "…"
        start = (r["start_time"] or "-").replace("T", " ").replace("+00:00", "")
        f = r["findings"]
        lines.append(
            (
                r["call_id"],
                start,
                _duration(r["duration"]),
                r["status"],
                agent,
                str(f["critical"]),
                str(f["major"]),
                str(f["minor"]),
            )
        )
    widths = [max(_width(line[i]) for line in lines) for i in range(len(header))]
    right = {2, 5, 6, 7}
    out = []
    for line in lines:
        cells = []
        for i, cell in enumerate(line):
            pad = " " * (widths[i] - _width(cell))
            cells.append(pad + cell if i in right else cell + pad)
        out.append("  ".join(cells).rstrip())
    return "\n".join(out) + "\n"


def _width(text: str) -> int:
    """Terminal columns: CJK characters (agent names in Mandarin) take two."""
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


# -- analyze -----------------------------------------------------------------------------------


def cmd_analyze(args: argparse.Namespace) -> int:
    from stream.offline.batch import BatchError, run_batch

    settings = _settings(args)

    def say(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        result = run_batch(
            args.files,
            args.out,
            settings=settings,
            language=args.language,
            pairs=args.pairs,
            force=args.force,
            progress=not args.no_progress,
            say=say,
        )
    except BatchError as exc:
        raise ReviewCliError(str(exc)) from exc
    rtf = result.audio_seconds / result.processing_seconds if result.processing_seconds > 0 else 0.0
    speed = f", {rtf:.1f}x real time" if result.done else ""
    say(
        f"analyzed {len(result.done)}, skipped {len(result.skipped)}, failed {len(result.failed)}"
        f"{speed}; summary: {result.summary_path}"
    )
    if result.failed:
        raise ReviewCliError(
            f"{len(result.failed)} recording(s) failed: {', '.join(n for n, _ in result.failed)}"
        )
    return 0
