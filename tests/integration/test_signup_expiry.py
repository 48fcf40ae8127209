"""Email sign-ups that are never confirmed: forgotten after a while, and bounded per address.

The service runs with its HTTP face and a real SMTP server (aiosmtpd); the
API's clock is the test's, so a day passes in a line.
"""

from __future__ import annotations

from pathlib import Path

from service.timestamps import NS_PER_SECOND
from tests.integration.http_service import http_config, http_service
from tests.receivers import SmtpServer
from tests.waiting import eventually

HOUR_NS = 3600 * NS_PER_SECOND
SIGN_UP = {"email": "trader@example.com", "symbols": ["IWM"]}


class Clock:
    """The API's clock: it moves when the test says so."""

    def __init__(self) -> None:
        self.now_ns = 1_770_000_000 * NS_PER_SECOND

    def __call__(self) -> int:
        return self.now_ns

    def advance(self, hours: float) -> None:
        self.now_ns += round(hours * HOUR_NS)


def link_in(text: str, path: str) -> str:
    start = text.index(path)
    return text[start:].split()[0]


async def test_a_sign_up_not_confirmed_within_a_day_is_forgotten_and_its_link_dead(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    clock = Clock()
    config = http_config(tmp_path, smtp_port=smtp_server.port)
    async with http_service(config, clock_ns=clock) as service:
        status, body, _ = await service.post("/api/v1/subscribers", json=SIGN_UP)
        assert status == 202
        journal = service.app.journal
        assert [s.id for s in journal.subscribers()] == [body["id"]]
        (mail,) = smtp_server.receiver.mails
        text = mail.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert service.app.http is not None
        clock.advance(23.9)
        assert service.app.http.subscriptions.expire_pending() == 0  # not yet
        clock.advance(0.2)
        assert service.app.http.subscriptions.expire_pending() == 1
        assert journal.subscribers() == []
        assert body["id"] not in service.app.audience.subscribers
        status, reply, _ = await service.get(link_in(text, "/api/v1/confirm"))
        assert status == 404
        assert "not confirmed within 24 h is forgotten" in reply["error"]


async def test_the_service_forgets_expired_sign_ups_on_its_own_when_it_starts(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    clock = Clock()
    config = http_config(tmp_path, smtp_port=smtp_server.port)
    async with http_service(config, clock_ns=clock) as service:
        confirmed_later = {"email": "kept@example.com", "symbols": ["IWM"]}
        assert (await service.post("/api/v1/subscribers", json=SIGN_UP))[0] == 202
        clock.advance(12)
        assert (await service.post("/api/v1/subscribers", json=confirmed_later))[0] == 202
    clock.advance(13)  # the first is 25 h old, the second 13 h
    async with http_service(config, clock_ns=clock) as service:
        # The expiry task runs once at start, then every minute.
        journal = service.app.journal
        await eventually(
            lambda: [s.email for s in journal.subscribers()] == ["kept@example.com"],
            what="the sign-up of 25 h ago forgotten at start, the one of 13 h kept",
        )


async def test_pending_sign_ups_per_address_are_bounded(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    clock = Clock()
    config = http_config(tmp_path, smtp_port=smtp_server.port)
    async with http_service(config, clock_ns=clock) as service:
        for _ in range(3):
            assert (await service.post("/api/v1/subscribers", json=SIGN_UP))[0] == 202
            clock.advance(1)
        status, reply, headers = await service.post("/api/v1/subscribers", json=SIGN_UP)
        assert status == 429
        assert "3 confirmation mails to this address are waiting" in reply["error"]
        # The oldest was sent 3 h ago: it expires in 21 h.
        assert int(headers["Retry-After"]) == 21 * 3600
        other = {"email": "colleague@example.com", "symbols": ["IWM"]}
        assert (await service.post("/api/v1/subscribers", json=other))[0] == 202
        assert [mail.recipients for mail in smtp_server.receiver.mails].count(
            ["trader@example.com"]
        ) == 3  # no fourth mail to the address
        clock.advance(21)
        assert (await service.post("/api/v1/subscribers", json=SIGN_UP))[0] == 202
