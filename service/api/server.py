"""The aiohttp server: every route of the HTTP face, in the service's own process."""

from __future__ import annotations

import asyncio
import math
import time

import structlog
from aiohttp import web

from service.api import dashboard
from service.api.context import ApiContext
from service.api.guard import guarded
from service.api.openapi import openapi_document
from service.api.ops import OpsApi
from service.api.ratelimit import RateLimiter
from service.api.reads import ReadApi
from service.api.responses import ApiError, Handler, errors_as_json, json_response
from service.api.rules import RulesApi
from service.api.subscriptions import SubscriptionsApi
from service.connection_limit import ConnectionLimit
from service.errors import ListenError

log = structlog.get_logger("service.api")

SHUTDOWN_TIMEOUT_S = 1.0
# Unconfirmed sign-ups are looked for this often (at most).
EXPIRY_CHECK_S = 60.0


class HttpServer:
    """Listens on ``[http] host:port`` (0: a free port) until :meth:`stop`.

    ``ops_only``: only ``/healthz``, ``/readyz`` and ``/metrics`` (a cluster's
    engine, delivery and gateway processes).
    """

    def __init__(self, context: ApiContext, *, ops_only: bool = False) -> None:
        self.context = context
        self.ops_only = ops_only
        self.config = context.http
        self.limiter = RateLimiter(
            per_minute=self.config.rate_limit_per_minute, burst=self.config.rate_limit_burst
        )
        self.rate_limited = 0
        self.connections = ConnectionLimit(self.config.max_connections_per_client)
        self.app = self._application()
        self._runner: web.AppRunner | None = None
        self._listener: asyncio.Server | None = None
        self.port: int | None = None

    def _application(self) -> web.Application:
        app = web.Application(
            middlewares=[_security_headers, errors_as_json],
            client_max_size=self.config.max_body_bytes,
        )
        subscriptions = self.subscriptions = SubscriptionsApi(self.context)
        reads = ReadApi(self.context)
        ops = OpsApi(self.context)
        rules = RulesApi(self.context)
        limited = self._rate_limited
        document = openapi_document()
        ops_routes = [
            web.get("/metrics", ops.metrics),
            web.get("/healthz", ops.healthz),
            web.get("/readyz", ops.readyz),
        ]
        if self.ops_only:
            app.add_routes(ops_routes)
            return app

        async def openapi(_request: web.Request) -> web.Response:
            return json_response(document)

        app.add_routes(
            [
                web.get("/", dashboard.index),
                web.get("/static/vendor/lightweight-charts.js", dashboard.chart_library),
                web.get("/static/{name}", dashboard.static),
                web.get("/sw.js", dashboard.service_worker),
                web.get("/manifest.webmanifest", dashboard.manifest),
                web.post("/api/v1/subscribers", limited(subscriptions.create)),
                web.get("/api/v1/subscribers", subscriptions.list_all),
                web.delete("/api/v1/subscribers/{id}", subscriptions.delete_one),
                web.get("/api/v1/confirm", limited(subscriptions.confirm)),
                web.get("/api/v1/unsubscribe", limited(subscriptions.unsubscribe_page)),
                web.post("/api/v1/unsubscribe", limited(subscriptions.unsubscribe)),
                web.get("/api/v1/levels", reads.levels),
                web.get("/api/v1/manage", subscriptions.manage),
                web.post("/api/v1/manage/rotate", limited(subscriptions.rotate_manage)),
                web.get("/api/v1/rules", rules.list_rules),
                web.post("/api/v1/rules", limited(rules.create)),
                web.get("/api/v1/rules/{rule}", rules.get_rule),
                web.put("/api/v1/rules/{rule}", rules.replace),
                web.patch("/api/v1/rules/{rule}", rules.update),
                web.delete("/api/v1/rules/{rule}", rules.delete),
                web.post("/api/v1/rules/{rule}/pause", rules.pause),
                web.post("/api/v1/rules/{rule}/resume", rules.resume),
                web.get("/api/v1/alerts", reads.alerts),
                web.get("/api/v1/history", reads.history),
                web.get("/api/v1/articles/latest", reads.latest_article),
                web.get("/api/v1/dashboard", reads.dashboard),
                web.get("/api/v1/openapi.json", openapi),
                *ops_routes,
            ]
        )
        return app

    def _rate_limited(self, handler: Handler) -> Handler:
        async def limited(request: web.Request) -> web.StreamResponse:
            wait = self.limiter.take(self.client_ip(request), time.monotonic())
            if wait > 0:
                self.rate_limited += 1
                raise ApiError(
                    429,
                    f"too many requests from your address; try again in {math.ceil(wait)} s",
                    headers={"Retry-After": str(math.ceil(wait))},
                )
            return await handler(request)

        return limited

    def client_ip(self, request: web.Request) -> str:
        if self.config.trust_forwarded_for:
            forwarded = request.headers.get("X-Forwarded-For", "")
            last = forwarded.rsplit(",", 1)[-1].strip()
            if last:
                return last[:64]
        return request.remote or "?"

    async def start(self) -> None:
        """Listen; a port already taken raises :class:`ListenError`.

        The socket is aiohttp's server behind :class:`~service.api.guard.GuardedProtocol`,
        which bounds the connections of each client address; aiohttp's keep-alive
        timer, started when a connection opens and again after every answer,
        closes one that has not sent a whole request head in ``idle_timeout_seconds``.
        """
        config = self.config
        runner = web.AppRunner(
            self.app,
            access_log=None,
            shutdown_timeout=SHUTDOWN_TIMEOUT_S,
            keepalive_timeout=config.idle_timeout_seconds,
        )
        await runner.setup()
        handlers = runner.server
        assert handlers is not None, "set up above"
        loop = asyncio.get_running_loop()
        try:
            self._listener = await loop.create_server(
                guarded(self.connections, handlers),
                config.host,
                config.port,
                reuse_address=True,
            )
        except OSError as error:
            await runner.cleanup()
            raise ListenError(
                f"the HTTP server cannot listen on {config.host}:{config.port}: "
                f"{error.strerror or error}; set [http] port (or enabled = false)"
            ) from None
        self._runner = runner
        self.port = int(self._listener.sockets[0].getsockname()[1])
        log.info("http_listening", url=self.url)
        if not dashboard.chart_library_installed():
            log.warning(
                "dashboard_chart_missing",
                hint="run make install (npm ci in service/web); the dashboard shows no charts",
            )

    async def expire_signups(self) -> None:
        """Forget unconfirmed sign-ups once past ``pending_signup_hours``, until cancelled."""
        every_s = min(EXPIRY_CHECK_S, self.config.pending_signup_hours * 3600 / 4)
        while True:
            self.subscriptions.expire_pending()
            await asyncio.sleep(every_s)

    @property
    def url(self) -> str:
        host = self.config.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/"

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()  # no new connections; the runner closes the open ones
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        if listener is not None:
            await listener.wait_closed()


@web.middleware
async def _security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        headers.setdefault("Content-Security-Policy", dashboard.CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Frame-Options", "DENY")
    return response
