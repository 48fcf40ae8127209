"""For ops: ``/metrics`` (Prometheus), ``/healthz`` (alive) and ``/readyz`` (able to do its job)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from service.api.context import ApiContext
from service.api.responses import json_response


class OpsApi:
    def __init__(self, context: ApiContext) -> None:
        self.context = context

    async def metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self.context.metrics())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def healthz(self, _request: web.Request) -> web.Response:
        """The process answers: its event loop is not stuck. Restart it when this fails."""
        return json_response({"status": "ok"})

    async def readyz(self, _request: web.Request) -> web.Response:
        """Ready when the journal takes writes and every tick source is connected or replaying."""
        reasons = self.context.readiness()
        if reasons:
            return json_response(
                {"status": "not ready", "error": "; ".join(reasons), "reasons": reasons},
                status=503,
            )
        return json_response({"status": "ready"})
