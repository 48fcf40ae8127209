"""The dashboard's files: plain HTML, CSS and a JavaScript module, served as they are.

The chart library is not in the repository: ``make install`` fetches it from
the npm registry into ``service/web/node_modules`` (``package-lock.json`` pins it).
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from service.api.icons import MANIFEST, SIZES, png_icon
from service.api.responses import ApiError

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
CHART_LIBRARY = (
    WEB_DIR / "node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js"
)
FILES = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "icon.svg": "image/svg+xml",
}
# Pages may only load this server's scripts and talk to it and to the hub.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; connect-src 'self' ws: wss:; "
    "img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)


def chart_library_installed() -> bool:
    return CHART_LIBRARY.is_file()


async def index(_request: web.Request) -> web.FileResponse:
    return _file(WEB_DIR / "index.html", "text/html")


async def static(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    for size in SIZES:
        if name == f"icon-{size}.png":
            return web.Response(
                body=png_icon(size),
                content_type="image/png",
                headers={"Cache-Control": "max-age=86400"},
            )
    if name not in FILES:
        raise ApiError(404, f"no file {name[:60]!r} in the dashboard")
    return _file(WEB_DIR / name, FILES[name])


async def manifest(_request: web.Request) -> web.Response:
    """The web-app manifest: the page can be installed, and get Web Push where only apps may."""
    return web.Response(text=json.dumps(MANIFEST), content_type="application/manifest+json")


async def service_worker(_request: web.Request) -> web.FileResponse:
    """At the root, so that its scope covers the dashboard (browser push)."""
    return _file(WEB_DIR / "sw.js", "text/javascript")


async def chart_library(_request: web.Request) -> web.FileResponse:
    if not chart_library_installed():
        raise ApiError(
            404, "the chart library is not installed: run make install (npm ci in service/web)"
        )
    return _file(CHART_LIBRARY, "text/javascript")


def _file(path: Path, content_type: str) -> web.FileResponse:
    response = web.FileResponse(path, headers={"Content-Type": content_type})
    response.headers["Cache-Control"] = "no-cache"
    return response
