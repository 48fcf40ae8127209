"""The service run in the test's process with its HTTP face on a free port, and a client."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from service.app import build
from service.config import parse_config
from service.delivery.destinations import system_resolve
from service.running import Service as RunningService
from tests.clock import WallClock
from tests.helpers import eventually, running
from tests.webpush import vapid_key

ADMIN_TOKEN = "admin-token-0123456789abcdef"
DATA = Path(__file__).resolve().parent.parent / "data"
REPO = DATA.parent.parent


def http_config(
    tmp_path: Path, *, smtp_port: int | None = None, extra: str = "", sources: str | None = None
) -> str:
    email = (
        ""
        if smtp_port is None
        else f'[email]\nhost = "127.0.0.1"\nport = {smtp_port}\nstarttls = false\n'
        'from = "alerts@strykr.test"\n'
    )
    if sources is None:
        ticks = DATA / "iwm_day.csv"
        sources = f'[[sources]]\nkind = "replay"\nname = "file"\npath = "{ticks}"\nspeed = 0\n'
    return f"""
[service]
journal = "{tmp_path / "alerts.db"}"
stats_seconds = 0
public_url = "http://127.0.0.1:1"

[websocket]
port = 0

[http]
port = 0
admin_tokens = ["{ADMIN_TOKEN}"]
rate_limit_per_minute = 600
rate_limit_burst = 100

[articles]
dir = "{REPO / "articles"}"
auto_levels = false

[push]
vapid_private_key = "{vapid_key()}"

{email}
{sources}

[[rules]]
id = "iwm-below-255"
symbol = "IWM"
level = 255.0
direction = "below"

[[rules]]
id = "iwm-above-265"
symbol = "IWM"
level = 265.0
direction = "above"

[[subscribers]]
id = "desk"
webhook = "http://127.0.0.1:9/hook"
webhook_secret = "a-webhook-secret-of-the-desk"
symbols = ["SPX"]

{extra}
"""


@dataclass
class Service:
    app: RunningService
    client: aiohttp.ClientSession

    @property
    def base(self) -> str:
        assert self.app.http is not None
        return f"http://127.0.0.1:{self.app.http.port}"

    async def request(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        """(status, body: JSON when the answer is JSON, else text, headers)."""
        async with self.client.request(method, self.base + path, **kwargs) as response:
            if response.content_type == "application/json":
                body = await response.json()
            else:
                body = await response.text()
            return response.status, body, response.headers

    async def get(self, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, **kwargs: Any) -> tuple[int, Any, Any]:
        return await self.request("POST", path, **kwargs)


# Host names the tests' push endpoints use, as public DNS would answer for them (this
# machine has none); a name resolving to loopback, as a rebinding attacker's would.
TEST_NAMES = {
    "push.example.net": ["93.184.215.14"],
    "fcm.googleapis.com": ["142.250.74.42", "2a00:1450:4001:82a::200a"],
    "rebind.example.net": ["93.184.215.14", "127.0.0.1"],
    "inside.example.net": ["10.1.2.3"],
}


async def resolve_test_names(host: str, port: int) -> list[str]:
    """TEST_NAMES, then the system's resolver (``localhost``…); ``*.invalid`` never resolves."""
    if host in TEST_NAMES:
        return TEST_NAMES[host]
    if host.endswith(".invalid"):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    if host == "dns-down.example.net":
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
    return await system_resolve(host, port)


@contextlib.asynccontextmanager
async def http_service(
    config_text: str, *, clock_ns: Callable[[], int] = time.time_ns
) -> AsyncIterator[Service]:
    """The service with its HTTP face; ``clock_ns`` is its wall clock (sign-up expiry)."""
    app = build(
        parse_config(config_text, base_dir=DATA),
        resolve_host=resolve_test_names,
        clock=WallClock(clock_ns),
    )
    await app.open()  # listening before the test talks to it
    async with running(app), aiohttp.ClientSession() as client:
        await eventually(lambda: app.intake.loaded >= 2, what="the articles loaded")
        yield Service(app, client)
