"""Real servers that receive what the service sends: SMTP (aiosmtpd) and HTTP (aiohttp).

Each listens on 127.0.0.1 on a free port, records what arrives, and answers
as the test tells it to (e.g. ``451`` once, then ``250``).
"""

from __future__ import annotations

import email
import email.policy
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.mosquitto import free_port


@dataclass
class ReceivedMail:
    sender: str
    recipients: list[str]
    message: EmailMessage
    raw: bytes


@dataclass
class SmtpReceiver:
    """An aiosmtpd server; ``data_replies`` and ``refuse`` script its answers."""

    mails: list[ReceivedMail] = field(default_factory=list)
    data_replies: deque[str] = field(default_factory=deque)  # consumed one per DATA, then 250
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> RCPT reply
    data_commands: int = 0

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        self.data_commands += 1
        if self.data_replies:
            return self.data_replies.popleft()
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.mails.append(
            ReceivedMail(str(envelope.mail_from), list(envelope.rcpt_tos), message, raw)
        )
        return "250 OK"


class SmtpServer:
    def __init__(self) -> None:
        self.receiver = SmtpReceiver()
        self.port = free_port()
        self._controller = Controller(self.receiver, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


@dataclass
class HttpRequest:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        import json

        return json.loads(self.body)


class HttpReceiver:
    """An aiohttp server that records every POST; ``statuses`` scripts its replies per path."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []
        self.statuses: dict[str, deque[int]] = {}
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def posts(self, path: str) -> list[HttpRequest]:
        return [request for request in self.requests if request.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        scripted = self.statuses.get(request.path)
        status = scripted.popleft() if scripted else 200
        if status < 300:
            self.requests.append(HttpRequest(request.path, dict(request.headers), body))
        return web.Response(status=status, text="ok" if status < 300 else "no")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
