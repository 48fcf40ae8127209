"""The read API: the levels being watched, the journal's alerts, the latest articles.

Public, but a subscriber's own rules and alerts are shown only to them (their
manage token) and to the operator (an admin token).
"""

from __future__ import annotations

import re

from aiohttp import web

from service.api.callers import identify
from service.api.context import ApiContext
from service.api.responses import ApiError, json_response
from service.delivery.vapid import vapid_public_key
from service.errors import UnknownAlertError
from service.symbols import normalize_symbol
from service.timestamps import parse_timestamp

MAX_ALERTS = 1000
DEFAULT_ALERTS = 100
_ALERT_ID = re.compile(r"^[0-9a-f]{20}$")


class ReadApi:
    def __init__(self, context: ApiContext) -> None:
        self.context = context
        key = context.push.vapid_private_key
        # Derived once: the browser's applicationServerKey for Web Push.
        self._webpush_key = None if key is None else vapid_public_key(key)

    async def levels(self, request: web.Request) -> web.Response:
        viewer = identify(self.context, request).viewer
        symbol = _symbol(request)
        levels = self.context.view.levels(None if symbol is None else frozenset({symbol}), viewer)
        return json_response({"levels": levels})

    async def alerts(self, request: web.Request) -> web.Response:
        """Oldest first: after the alert ``since`` (an id), or from the time ``since``.

        Without ``since``: the latest ``limit``.
        """
        journal = self.context.alerts
        viewer = identify(self.context, request).viewer
        symbol = _symbol(request)
        limit = _limit(request)
        since = request.query.get("since")
        if since is None:
            alerts = journal.recent_alerts(symbol=symbol, limit=limit, viewer=viewer)
        elif _ALERT_ID.match(since):
            try:
                alerts = journal.alerts_after(
                    since, None if symbol is None else [symbol], limit=limit, viewer=viewer
                )
            except UnknownAlertError:
                raise ApiError(404, f"since: no alert {since} in the journal") from None
        else:
            try:
                ts_ns = parse_timestamp(since)
            except (ValueError, OverflowError):
                raise ApiError(
                    400, "since: expected an alert id or a time such as 2026-02-02T14:30:00Z"
                ) from None
            alerts = journal.alerts_from(ts_ns, symbol=symbol, limit=limit, viewer=viewer)
        return json_response({"alerts": alerts})

    async def history(self, request: web.Request) -> web.Response:
        """A symbol's recent bars of one interval, with the alerts fired since the first."""
        context = self.context
        history = context.history
        if history is None or not history.intervals:
            raise ApiError(404, "no chart history is kept here ([history] bars)")
        symbol = _symbol(request)
        if symbol is None:
            raise ApiError(400, "symbol: required, such as ?symbol=IWM")
        interval = request.query.get("interval", next(iter(history.intervals)))
        if interval not in history.intervals:
            kept = ", ".join(history.intervals)
            raise ApiError(400, f"interval: {interval[:16]!r} is not kept; one of {kept}")
        since = request.query.get("since")
        since_ns = None
        if since is not None:
            try:
                since_ns = parse_timestamp(since)
            except (ValueError, OverflowError):
                raise ApiError(400, "since: expected a time such as 2026-02-02T14:30:00Z") from None
        bars = history.bars(symbol, interval, since_ns)
        viewer = identify(context, request).viewer
        first_ns = round(bars[0]["time"] * 1e9) if bars else since_ns
        alerts = (
            []
            if first_ns is None
            else context.alerts.alerts_from(
                first_ns, symbol=symbol, limit=MAX_ALERTS, viewer=viewer
            )
        )
        return json_response(
            {"symbol": symbol, "interval": interval, "bars": bars, "alerts": alerts}
        )

    async def latest_article(self, request: web.Request) -> web.Response:
        symbol = _symbol(request)
        articles = self.context.view.articles(None if symbol is None else frozenset({symbol}))
        if symbol is None:
            return json_response({"articles": articles})
        if symbol not in articles:
            raise ApiError(404, f"symbol: no article names levels for {symbol}")
        return json_response({"symbol": symbol, "article": articles[symbol]})

    async def dashboard(self, _request: web.Request) -> web.Response:
        """What the dashboard page needs to start: symbols, the hub, the ways to subscribe."""
        context = self.context
        return json_response(
            {
                "symbols": sorted(context.view.known_symbols()),
                "hub_port": context.hub_port(),
                "email": context.confirmations is not None,
                "webpush_key": self._webpush_key,
                "history": [] if context.history is None else list(context.history.intervals),
            }
        )


def _symbol(request: web.Request) -> str | None:
    value = request.query.get("symbol")
    if value is None:
        return None
    try:
        return normalize_symbol(value)
    except ValueError as error:
        raise ApiError(400, f"symbol: {error}") from None


def _limit(request: web.Request) -> int:
    value = request.query.get("limit")
    if value is None:
        return DEFAULT_ALERTS
    if not value.isdigit() or not 1 <= int(value) <= MAX_ALERTS:
        raise ApiError(400, f"limit: expected a whole number from 1 to {MAX_ALERTS}")
    return int(value)
