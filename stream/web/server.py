"""The HTTP/websocket service: live event streams, and the home of the ingest routes.

Routes (documented in the README):

- ``GET  /healthz``                       liveness, call count, ASR queue figures
- ``WS   /v1/ingest``                     a call's audio (protocol in :mod:`stream.ingest.native`,
                                          route in :mod:`stream.ingest.routes`)
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
import logging
import os
import time
from typing import Any

from aiohttp import WSCloseCode, web

from stream.asr.scheduler import AsrScheduler
from stream.auth import AuthError, load_or_create_secret
from stream.delivery.mqtt import MqttPublisher
from stream.delivery.persist import StoreSink
from stream.ingest import register_routes, start_audiosocket
from stream.ingest.refusal import CLOSE_TRY_AGAIN_LATER, http_refusal, truncated_reason
from stream.live.bus import CallLog, FastSink, SubscriberTooSlow
from stream.live.calls import CallManager
from stream.live.pipeline import SharedModels
from stream.live.session import CallSession
from stream.settings import Settings
from stream.store import Store
from stream.web.access import Gate, drain_client, refuse_websocket
from stream.web.pages import LiveFeed, WebRoutes

log = logging.getLogger(__name__)

SUBSCRIBER_HEARTBEAT_S = 20.0

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
        self.store_sink = StoreSink.for_settings(store, settings) if store is not None else None
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
        app.router.add_get("/v1/calls", self.list_calls)
        app.router.add_get("/v1/calls/{call_id}/events", self.call_events)
        WebRoutes(self.gate, self.live, self.store).register(app)
        register_routes(app, self)  # /v1/ingest and the telephony adapters (docs/telephony.md)
        app.on_startup.append(self._on_startup)
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_startup(self, _app: web.Application) -> None:
        if self.store_sink is not None:  # a previous run's spooled events go before any new call's
            await self.store_sink.start()
        await self.scheduler.start()
        self._audiosocket = await start_audiosocket(self)  # None unless adapters.audiosocket_port is set
        if self.mqtt is not None:
            await self.mqtt.start()

    async def _on_shutdown(self, _app: web.Application) -> None:
        audiosocket = getattr(self, "_audiosocket", None)
        if audiosocket is not None:  # first, so each AudioSocket call finishes through its connection
            await audiosocket.stop()
        await self.calls.shutdown()  # final events and summaries reach the MQTT buffer here
        if self.store_sink is not None:  # what the store still refuses stays spooled for the next run
            await self.store_sink.aclose()
        self.live.close()
        if self.mqtt is not None:
            await self.mqtt.aclose()
        await self.scheduler.aclose()

    # -- plain HTTP ------------------------------------------------------
    async def healthz(self, _request: web.Request) -> web.Response:
        store = self.store_sink.stats() if self.store_sink is not None else None
        problems = store_problems(store)
        return web.json_response(
            {
                # Liveness stays 200: a store outage must not get the node restarted (that would
                # drop live calls); "degraded" and its reasons tell monitoring what is wrong.
                "status": "degraded" if problems else "ok",
                "problems": problems,
                "live_calls": len(self.registry),
                "uptime_s": round(time.time() - self.started, 1),
                "asr": self.scheduler.stats(),
                "store": store,
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
            await ws.close(code=CLOSE_TRY_AGAIN_LATER, message=truncated_reason(str(exc)))
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


def store_problems(stats: dict[str, Any] | None) -> list[str]:
    """Why the store side is not healthy, one line each, from the sink's ``stats()``."""
    if stats is None:
        return []
    problems: list[str] = []
    if stats.get("spool_events"):
        problems.append(f"call store unavailable: {stats['spool_events']} event(s) wait in the spool")
    if stats.get("error"):  # set while events are being lost; "lost" alone is the run's history
        problems.append(f"events are being lost ({stats.get('lost', 0)} so far): {stats['error']}")
    return problems
