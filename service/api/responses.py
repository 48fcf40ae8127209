"""JSON errors for every failure: a clear message and a 4xx, never a traceback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aiohttp import web

from service.errors import RequestError

log = structlog.get_logger("service.api")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(RequestError):
    """Refuse a request with ``status`` and ``{"error": message}``."""

    def __init__(
        self, status: int, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = dict(headers or {})


def json_response(body: object, *, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":"), allow_nan=False).encode(),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )


def error_response(
    status: int, message: str, *, headers: Mapping[str, str] | None = None
) -> web.Response:
    response = json_response({"error": message}, status=status)
    response.headers.update(headers or {})
    return response


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn every refusal and every unexpected error into a JSON error response."""
    try:
        return await handler(request)
    except ApiError as error:
        return error_response(error.status, error.message, headers=error.headers)
    except web.HTTPException as error:
        if error.status < 400:
            raise  # redirects are answers, not errors
        headers = {k: v for k, v in error.headers.items() if k in ("Allow", "Retry-After")}
        return error_response(error.status, _reason(error), headers=headers)
    except Exception:
        log.exception("http_handler_failed", method=request.method, path=request.path)
        return error_response(500, "internal error; the service's log has the details")


def _reason(error: web.HTTPException) -> str:
    if isinstance(error, web.HTTPRequestEntityTooLarge):
        return f"request body too large: {error.text}"
    if isinstance(error, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(error.allowed_methods))
        return f"method {error.method} not allowed here; use {allowed}"
    if isinstance(error, web.HTTPNotFound):
        return "no such endpoint; the API is described at /api/v1/openapi.json"
    return error.reason


async def read_json(request: web.Request, *, timeout_s: float) -> Any:
    """The request's JSON body, or a 400/408/415 that says what is wrong with it.

    The body must arrive within ``timeout_s``: a client that sends it a byte at
    a time would otherwise hold the connection as long as it likes.
    """
    if request.content_type != "application/json":
        raise ApiError(415, f"expected Content-Type: application/json, got {request.content_type}")
    try:
        async with asyncio.timeout(timeout_s):
            raw = await request.read()
    except TimeoutError:
        raise ApiError(
            408,
            f"the request body did not arrive within {timeout_s:g} s",
            headers={"Connection": "close"},
        ) from None
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ApiError(400, "body is not UTF-8") from None
    except json.JSONDecodeError as error:
        raise ApiError(400, f"body is not valid JSON: {error.msg} at line {error.lineno}") from None
    except RecursionError:
        raise ApiError(400, "body is nested too deeply") from None
