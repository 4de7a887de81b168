"""The HTTP/websocket service: native audio ingest and live event streams.

Routes (documented in the README):

- ``GET  /healthz``                       liveness, call count, ASR queue figures
- ``WS   /v1/ingest``                     a call's audio (protocol in :mod:`stream.ingest.native`)
- ``WS   /v1/calls/{call_id}/events``     a call's events: replay ``since=N`` then live
- ``GET  /v1/calls``                      live and recently ended calls (supervisor)

plus the pages, the supervisor feed and the review route of :mod:`stream.web.pages`.
Every endpoint but ``/healthz`` and ``/static`` needs a token when ``auth.enabled``
(the rules and what a refusal looks like are in :mod:`stream.web.pages`).  With
``mqtt.host`` set, every event and each call's summary also go to the broker.

All per-process state lives on the :class:`Service` object, not in module
globals, so several services can run side by side (tests do).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import time
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from stream.asr.scheduler import AsrScheduler
from stream.auth import AuthError, load_or_create_secret
from stream.delivery.mqtt import MqttPublisher
from stream.delivery.persist import StoreSink
from stream.ingest.native import (
    Audio,
    IngestProtocol,
    MetadataUpdate,
    ProtocolViolation,
    Started,
    StartInfo,
    Stopped,
)
from stream.live.bus import CallLog, FastSink, SubscriberTooSlow
from stream.live.calls import CallHandle, CallManager, CallRejected
from stream.live.pipeline import SharedModels
from stream.live.session import CallParams, CallSession
from stream.settings import Settings
from stream.store.db import Store
from stream.web.pages import (
    Gate,
    LiveFeed,
    WebRoutes,
    close_reason,
    drain_client,
    http_refusal,
    refusal_code,
    refuse_websocket,
)

log = logging.getLogger(__name__)

WS_MAX_MESSAGE_FACTOR = 4
"""aiohttp's own hard cap is this multiple of ``limits.max_frame_bytes``, so frames a
little over the named limit still reach the protocol and get a proper error event."""

SUBSCRIBER_HEARTBEAT_S = 20.0
CLOSE_TRY_AGAIN_LATER = 1013

_instances = itertools.count()


class Service:
    def __init__(
        self,
        settings: Settings,
        services: SharedModels,
        *,
        store: Store | None = None,
        secret: bytes | None = None,
    ) -> None:
        """``secret`` signs tokens; by default it is read (or created) at ``settings.secret_path()``."""
        self.settings = settings
        self.services = services
        self.store = store
        self.store_sink = (
            StoreSink(store, tenant=settings.auth.tenant, node=settings.node_name())
            if store is not None
            else None
        )
        self.scheduler = AsrScheduler(
            services.transcriber,
            final_queue=settings.asr.final_queue,
            partial_queue=settings.asr.partial_queue,
            max_partial_load=settings.asr.max_partial_load,
        )
        if settings.auth.enabled and secret is None:
            secret = load_or_create_secret(settings.secret_path())
        self.gate = Gate(settings, secret)
        self.mqtt = _mqtt_publisher(settings) if settings.mqtt.host else None
        fast: list[FastSink] = [self.mqtt.publish_event] if self.mqtt is not None else []
        self.calls = CallManager(
            settings,
            services,
            self.scheduler,
            durable_sinks=[self.store_sink] if self.store_sink is not None else [],
            fast_sinks=fast,
        )
        self.live = LiveFeed(
            settings, publish_state=self.mqtt.publish_state if self.mqtt is not None else None
        )
        self.calls.on_change.append(self.live.on_change)
        self.registry = self.calls.registry
        self.started = time.time()

    # -- lifecycle -------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
        app.router.add_get("/v1/ingest", self.ingest)
        app.router.add_get("/v1/calls", self.list_calls)
        app.router.add_get("/v1/calls/{call_id}/events", self.call_events)
        WebRoutes(self).register(app)
        from stream.ingest import register_adapters  # telephony adapters: docs/telephony.md

        register_adapters(app, self)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, _app: web.Application) -> None:
        await self.scheduler.start()
        from stream.ingest import start_audiosocket

        self._audiosocket = await start_audiosocket(self)  # None unless adapters.audiosocket_port is set
        if self.mqtt is not None:
            await self.mqtt.start()

    async def _on_shutdown(self, _app: web.Application) -> None:
        audiosocket = getattr(self, "_audiosocket", None)
        if audiosocket is not None:  # first, so each AudioSocket call finishes through its connection
            await audiosocket.stop()
        await self.calls.shutdown()  # final events and summaries reach the MQTT buffer here
        self.live.close()
        if self.mqtt is not None:
            await self.mqtt.aclose()
        await self.scheduler.aclose()

    # -- plain HTTP ------------------------------------------------------
    async def healthz(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {
                "status": "ok",
                "live_calls": len(self.registry),
                "uptime_s": round(time.time() - self.started, 1),
                "asr": self.scheduler.stats(),
                "store": self.store_sink.stats() if self.store_sink is not None else None,
                "mqtt": self.mqtt.stats() if self.mqtt is not None else None,
            }
        )

    async def list_calls(self, request: web.Request) -> web.Response:
        try:
            self.gate.require(request, "list_calls")
        except AuthError as err:
            raise http_refusal(err) from None
        return web.json_response({"calls": self.live.snapshot()})

    def summary(self, session: CallSession) -> dict[str, Any]:
        """The call's summary as the supervisor view and the MQTT state topic carry it."""
        return self.live.summary(session)

    # -- ingest ----------------------------------------------------------
    async def ingest(self, request: web.Request) -> web.StreamResponse:
        try:
            claims = self.gate.claims(request)
            self.gate.may_send_audio(claims)
        except AuthError as err:
            return await self._refuse_ingest(request, err)
        limits = self.settings.limits
        ws = web.WebSocketResponse(max_msg_size=limits.max_frame_bytes * WS_MAX_MESSAGE_FACTOR)
        await ws.prepare(request)
        proto = IngestProtocol(limits)
        handle: CallHandle | None = None
        reason = "disconnected"
        timeout = limits.start_timeout_s
        try:
            while not ws.closed:
                try:
                    msg = await ws.receive(timeout=timeout)
                except TimeoutError:
                    what = "no start frame" if handle is None else "no audio"
                    await self._reject(
                        ws, handle, "timeout", f"{what} within {timeout:g} s", WSCloseCode.POLICY_VIOLATION
                    )
                    reason = "timeout"
                    break
                if msg.type == WSMsgType.TEXT:
                    events = proto.receive_text(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    events = proto.receive_bytes(msg.data)
                elif msg.type == WSMsgType.ERROR:
                    reason = "error"
                    await self._reject(
                        ws,
                        handle,
                        "message_too_big",
                        str(ws.exception() or "bad frame"),
                        WSCloseCode.MESSAGE_TOO_BIG,
                    )
                    break
                else:  # CLOSE / CLOSING / CLOSED: the client went away; keep the resamplers' tails
                    events = [ev for ev in proto.receive_eof() if isinstance(ev, Audio)]
                for ev in events:
                    if isinstance(ev, Started):
                        try:
                            # Scope first: a refused token learns nothing about the call id.
                            self.gate.may_ingest_call(claims, ev.info.call_id)
                            new_call = self.registry.live(ev.info.call_id) is None
                            handle = await self.calls.open(_params(ev.info))
                        except AuthError as err:
                            reason = "error"
                            code = refusal_code(err)
                            await self._reject(ws, None, code, err.reason, WSCloseCode.POLICY_VIOLATION)
                            break
                        except CallRejected as exc:
                            reason = "error"
                            await self._reject(ws, None, exc.code, str(exc), WSCloseCode.POLICY_VIOLATION)
                            break
                        self.gate.note_ingest(claims, handle.call_id, new_call=new_call)
                        await self._ack(ws, handle.call_id)
                        timeout = limits.idle_timeout_s
                    elif isinstance(ev, Audio) and handle is not None:
                        await handle.feed(ev.legs)
                    elif isinstance(ev, MetadataUpdate) and handle is not None:
                        handle.update_metadata(ev.metadata)
                    elif isinstance(ev, Stopped):
                        reason = "stop"
                    elif isinstance(ev, ProtocolViolation):
                        if ev.fatal:
                            reason = "error"
                            await self._reject(ws, handle, ev.code, ev.message, ev.close_code)
                            break
                        await self._send_error(ws, handle, ev.code, ev.message, fatal=False)
                if reason in ("stop", "error") or msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
        except Exception:
            log.exception("ingest failed")
            reason = "error"
        finally:
            if handle is not None:
                await handle.close(reason)
            if not ws.closed:
                await ws.close(code=WSCloseCode.OK, message=b"call ended")
        return ws

    async def _refuse_ingest(self, request: web.Request, err: AuthError) -> web.StreamResponse:
        """Refused before the call exists: an ``error`` frame as for any ingest refusal, then 1008."""
        ws = web.WebSocketResponse()
        if not ws.can_prepare(request).ok:
            raise http_refusal(err)
        await ws.prepare(request)
        await self._reject(ws, None, refusal_code(err), err.reason, WSCloseCode.POLICY_VIOLATION)
        return ws

    async def _ack(self, ws: web.WebSocketResponse, call_id: str) -> None:
        await ws.send_str(
            json.dumps({"type": "started", "call_id": call_id, "events": f"/v1/calls/{call_id}/events"})
        )

    async def _send_error(
        self, ws: web.WebSocketResponse, handle: CallHandle | None, code: str, message: str, *, fatal: bool
    ) -> None:
        """Tell the client (and, once the call exists, the call's event stream) what went wrong."""
        if handle is not None:
            await handle.error(code, message, fatal=fatal)
        if not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(
                    json.dumps(
                        {"type": "error", "code": code, "message": message, "fatal": fatal},
                        ensure_ascii=False,
                    )
                )

    async def _reject(
        self, ws: web.WebSocketResponse, handle: CallHandle | None, code: str, message: str, close_code: int
    ) -> None:
        await self._send_error(ws, handle, code, message, fatal=True)
        if not ws.closed:
            await ws.close(code=close_code, message=close_reason(code, message))

    # -- event streams ---------------------------------------------------
    async def call_events(self, request: web.Request) -> web.StreamResponse:
        call_id = request.match_info["call_id"]
        try:
            # Scope before existence, so an out-of-scope token cannot probe for calls.
            self.gate.require(request, "read_call", call_id, follow_ingest=True)
        except AuthError as err:
            return await refuse_websocket(request, err)
        try:
            since = int(request.query.get("since", "0"))
        except ValueError:
            raise web.HTTPBadRequest(text="since must be an integer sequence number") from None
        call_log = self.registry.log(call_id)
        if call_log is None:
            raise web.HTTPNotFound(text=f"no call {call_id}")
        ws = web.WebSocketResponse(heartbeat=SUBSCRIBER_HEARTBEAT_S)
        await ws.prepare(request)
        await self.stream_log(ws, call_log, since)
        return ws

    async def stream_log(self, ws: web.WebSocketResponse, call_log: CallLog, since: int) -> None:
        sub = call_log.subscribe(since, self.settings.limits.subscriber_queue)
        reader = asyncio.create_task(drain_client(ws))
        reader.add_done_callback(lambda _t: sub.close())
        try:
            async for event in sub:
                if reader.done():
                    break
                await ws.send_str(event.to_json())
        except SubscriberTooSlow as exc:
            await ws.close(code=CLOSE_TRY_AGAIN_LATER, message=str(exc).encode()[:120])
        except (ConnectionError, RuntimeError):
            pass
        finally:
            call_log.unsubscribe(sub)
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            if not ws.closed:
                await ws.close(code=WSCloseCode.OK, message=b"call ended")


def _mqtt_publisher(settings: Settings) -> MqttPublisher:
    """One publisher per service.  The client id starts with the node name (readable in the
    broker's log) and adds pid and instance number: the broker disconnects the older of two
    clients sharing an id, and several services may run on one host."""
    m = settings.mqtt
    return MqttPublisher(
        m.host,
        m.port,
        tenant=settings.auth.tenant,
        client_id=f"callassist-{settings.node_name()}-{os.getpid()}-{next(_instances)}",
        buffer_limit=m.buffer_limit,
        username=m.username or None,
        password=m.password or None,
        reconnect_min_s=m.reconnect_min_s,
        reconnect_max_s=m.reconnect_max_s,
    )


def _params(info: StartInfo) -> CallParams:
    return CallParams(
        call_id=info.call_id,
        language=info.language,
        sample_rate=info.sample_rate,
        encoding=info.encoding,
        legs=tuple(info.channels),
        metadata=dict(info.metadata),
    )
