"""The rules API for the admin: pause and resume a rule while the service runs.

A paused rule looks at no tick; resumed, it starts afresh (docs/rules.md,
[LC2]). The change is part of the engine's durable state: a restart keeps it.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from service.api.context import ApiContext
from service.api.responses import ApiError, json_response


class RulesApi:
    def __init__(self, context: ApiContext, require_admin: Callable[[web.Request], None]) -> None:
        self.context = context
        self.require_admin = require_admin

    async def pause(self, request: web.Request) -> web.Response:
        return self._set(request, paused=True)

    async def resume(self, request: web.Request) -> web.Response:
        return self._set(request, paused=False)

    def _set(self, request: web.Request, *, paused: bool) -> web.Response:
        self.require_admin(request)
        rule_id = request.match_info["rule"]
        pause = self.context.pause_rule
        if pause is None:
            raise ApiError(503, "rules cannot be paused here: this process runs no engine")
        if not pause(rule_id, paused):
            raise ApiError(404, f"rule: no rule has the id {rule_id[:64]!r}; see /api/v1/levels")
        levels = [level for level in self.context.view.levels(None) if level["rule"] == rule_id]
        status = levels[0]["status"] if levels else ("paused" if paused else "active")
        return json_response({"rule": rule_id, "status": status})
