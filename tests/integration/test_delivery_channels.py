"""Email, webhook and apprise push against real servers: aiosmtpd and an aiohttp receiver."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
from collections import deque
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
import pytest

from service.delivery.audience import Audience
from service.delivery.decide import backoff_of
from service.delivery.destinations import PrivateAddressError, public_socket
from service.delivery.email import EmailSender
from service.delivery.http import HttpSession
from service.delivery.push import AppriseSender, WebPushSender
from service.delivery.recorder import AlertRecorder
from service.delivery.settings import DeliveryConfig, EmailConfig, PushConfig, WebhookConfig
from service.delivery.webhook import WebhookSender
from service.delivery.workers import DeliveryWorkers, Sender
from service.journal.records import Subscriber
from service.journal.sqlite import SqliteJournal
from service.models import AlertEvent, AttachedArticle, Level, alert_id
from service.processing.batch import Batch
from tests.builders import at
from tests.clock import FakeClock
from tests.helpers import eventually
from tests.receivers import HttpReceiver, SmtpServer
from tests.webpush import Browser, vapid_key

FAST_RETRIES = DeliveryConfig(max_attempts=3, retry_initial_seconds=0.05, retry_max_seconds=0.1)
UNSUBSCRIBE_URL = "http://127.0.0.1:8080/api/v1/unsubscribe?token=TOKEN"
SECRET = "hook-secret"


def make_alert(price: float = 254.6, seconds: float = 14, title: str = "Small caps are stuck"):
    article = AttachedArticle(
        title=title,
        url="https://strykr.example/articles/small-caps",
        published_ns=at(-3600),
        pulse=40,
        threat_level=3,
        bias="bearish",
        take="Trade the range until it breaks.",
        levels=(Level(symbol="IWM", price=255.0, side="support"),),
    )
    key = {
        "rule": "iwm-below-255",
        "kind": "break_below",
        "level": 255.0,
        "symbol": "IWM",
        "ts_ns": at(seconds),
        "price": price,
    }
    return AlertEvent(id=alert_id(**key), article=article, **key)  # type: ignore[arg-type]


def email_sender(smtp: SmtpServer) -> EmailSender:
    config = EmailConfig(
        host="127.0.0.1", port=smtp.port, starttls=False, sender="alerts@strykr.test"
    )
    return EmailSender(config, unsubscribe=lambda _id: (UNSUBSCRIBE_URL, "TOKEN"))


class Delivering:
    """The journal stage and the delivery workers, as the service wires them, on a fake clock."""

    def __init__(
        self, tmp_path: Path, senders: Sequence[Sender], subscribers: Sequence[Subscriber]
    ) -> None:
        self.clock = FakeClock()
        self.journal = SqliteJournal(tmp_path / "alerts.db")
        self.audience = Audience(
            self.journal, static=subscribers, channels=[sender.name for sender in senders]
        )
        self.audience.reload()
        self.recorder = AlertRecorder(self.journal, self.audience.plan, clock=self.clock)
        self.workers = DeliveryWorkers(
            self.journal,
            senders,
            self.audience,
            max_attempts=FAST_RETRIES.max_attempts,
            backoff=backoff_of(FAST_RETRIES),
            clock=self.clock,
        )

    def deliver(self, *alerts: AlertEvent) -> None:
        """What the engine task does with a batch's alerts: journal, then wake the channels."""
        self.workers.wake(self.recorder(Batch((), alerts)))

    async def idle(self) -> None:
        """Until every worker waits: nothing more is sent until a row falls due."""
        await eventually(
            lambda: self.clock.settled and self.workers.idle(), what="the delivery workers idle"
        )

    async def wait_through(self, seconds: float) -> None:
        """Let ``seconds`` pass, every retry due by then made: the fake clock, stepped."""
        await self.idle()
        left = seconds
        while (due := self.clock.next_due_s()) is not None and due <= left:
            self.clock.advance(due)
            left -= due
            await self.idle()
        self.clock.advance(left)
        await self.idle()


@contextlib.asynccontextmanager
async def delivering(
    tmp_path: Path, senders: Sequence[Sender], subscribers: Sequence[Subscriber]
) -> AsyncIterator[Delivering]:
    pipeline = Delivering(tmp_path, senders, subscribers)
    task = asyncio.create_task(pipeline.workers.run())
    try:
        yield pipeline
    finally:
        pipeline.workers.stop()
        await asyncio.wait_for(task, 5)
        pipeline.journal.close()


def statuses(pipeline: Delivering) -> list[tuple[str, str, int]]:
    return [(row.channel, row.status, row.attempts) for row in pipeline.journal.deliveries()]


# Longer than every retry delay there can be: past it, whatever was to happen has.
BEYOND_RETRIES_S = FAST_RETRIES.retry_max_seconds * (FAST_RETRIES.max_attempts + 1)


async def test_email_carries_the_alert_the_article_and_one_click_unsubscribe(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    reader = Subscriber(id="reader", email="reader@example.com", symbols=("IWM",))
    async with delivering(tmp_path, [email_sender(smtp_server)], [reader]) as pipeline:
        alert = make_alert()
        pipeline.deliver(alert)
        await eventually(lambda: len(smtp_server.receiver.mails) == 1, what="one mail")
        await eventually(lambda: statuses(pipeline) == [("email", "sent", 1)])

    (mail,) = smtp_server.receiver.mails
    message = mail.message
    assert mail.recipients == ["reader@example.com"]
    assert message["Subject"] == "IWM broke below 255.00 at 254.60"
    assert message["From"] == "alerts@strykr.test"
    assert message["Message-ID"].startswith(f"<{alert.id}.")
    assert message["List-Unsubscribe"] == (
        f"<{UNSUBSCRIBE_URL}>, <mailto:alerts@strykr.test?subject=unsubscribe%20TOKEN>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None
    assert html is not None
    for part in (plain.get_content(), html.get_content()):
        for text in (
            "IWM broke below 255.00 at 254.60",
            "Small caps are stuck",
            "40",
            "bearish",
            "Trade the range until it breaks.",
            "https://strykr.example/articles/small-caps",
        ):
            assert text in part, f"{text!r} missing from a part"


async def test_email_answered_451_then_250_arrives_once_with_the_same_message_id(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.receiver.data_replies.append("451 4.3.0 try again later")
    reader = Subscriber(id="reader", email="reader@example.com")
    async with delivering(tmp_path, [email_sender(smtp_server)], [reader]) as pipeline:
        pipeline.deliver(make_alert())
        await pipeline.wait_through(BEYOND_RETRIES_S)
        assert statuses(pipeline) == [("email", "sent", 2)]

    assert smtp_server.receiver.data_commands == 2
    assert len(smtp_server.receiver.mails) == 1


async def test_email_refused_550_for_a_recipient_is_dead_and_the_others_still_get_it(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    smtp_server.receiver.refuse["gone@example.com"] = "550 5.1.1 no such user"
    subscribers = [
        Subscriber(id="gone", email="gone@example.com"),
        Subscriber(id="reader", email="reader@example.com"),
    ]
    async with delivering(tmp_path, [email_sender(smtp_server)], subscribers) as pipeline:
        pipeline.deliver(make_alert())
        await eventually(lambda: len(smtp_server.receiver.mails) == 1)
        await eventually(lambda: {s for _c, s, _a in statuses(pipeline)} == {"dead", "sent"})
        journal = pipeline.journal
        assert isinstance(journal, SqliteJournal)
        dead = [row for row in journal.deliveries() if row.status == "dead"]

    assert [row.subscriber for row in dead] == ["gone"]
    assert dead[0].attempts == 1
    assert "550" in (dead[0].last_error or "")
    assert smtp_server.receiver.mails[0].recipients == ["reader@example.com"]


# Texts that try to end a header and start another: raw line breaks, and RFC 2047
# encoded words that a mail parser decodes into line breaks.
HOSTILE_TITLES = [
    "Small caps\r\nBcc: victim@example.org\r\n\r\n<script>alert(1)</script>",
    "Small caps =?UTF-8?Q?=0ABcc:_victim@example.org?= <script>alert(1)</script>",
    "=?UTF-8?Q?=0D=0AReply-To:_a=40attacker.test=0ABcc:_victim@example.org?= <script>",
    "=?utf-8?b?DQpCY2M6IHZpY3RpbUBleGFtcGxlLm9yZw==?= <script>",
]
EMAIL_HEADERS = {
    "from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post",
    "auto-submitted", "x-strykr-alert-id", "content-type", "mime-version",
}  # fmt: skip


@pytest.mark.parametrize("title", HOSTILE_TITLES)
async def test_hostile_article_title_adds_no_header_or_recipient_to_the_mail(
    tmp_path: Path, smtp_server: SmtpServer, title: str
) -> None:
    reader = Subscriber(id="reader", email="reader@example.com")
    headline = title.replace("<script>", "")
    alert = make_alert(title=title)
    alert = dataclasses.replace(alert, rule=headline)  # the rule id reaches the mail's body only
    async with delivering(tmp_path, [email_sender(smtp_server)], [reader]) as pipeline:
        pipeline.deliver(alert)
        await eventually(lambda: len(smtp_server.receiver.mails) == 1)

    (mail,) = smtp_server.receiver.mails
    assert mail.recipients == ["reader@example.com"]
    assert {name.lower() for name in mail.message} == EMAIL_HEADERS
    assert [str(a) for a in mail.message["To"].addresses] == ["reader@example.com"]
    headers = mail.raw.split(b"\r\n\r\n", 1)[0]
    assert b"victim" not in headers
    html = mail.message.get_body(("html",))
    assert html is not None
    assert "<script>" not in html.get_content()


async def test_mail_to_an_address_stored_before_it_was_checked_is_refused_and_never_sent(
    tmp_path: Path, smtp_server: SmtpServer
) -> None:
    # As an older version's journal may hold it: the address that unfolds into a Bcc.
    injected = "=?UTF-8?Q?=0AReply-To:_a=40attacker.test=0A?=Bcc:victim@example.org"
    subscribers = [
        Subscriber(id="old", email=injected),
        Subscriber(id="reader", email="reader@example.com"),
    ]
    async with delivering(tmp_path, [email_sender(smtp_server)], subscribers) as pipeline:
        pipeline.deliver(make_alert())
        await eventually(lambda: {s for _c, s, _a in statuses(pipeline)} == {"dead", "sent"})
        journal = pipeline.journal
        assert isinstance(journal, SqliteJournal)
        (dead,) = [row for row in journal.deliveries() if row.status == "dead"]

    assert (dead.subscriber, dead.attempts) == ("old", 1)
    assert "refused to send" in (dead.last_error or "")
    assert [mail.recipients for mail in smtp_server.receiver.mails] == [["reader@example.com"]]


@pytest.mark.parametrize("title", HOSTILE_TITLES)
async def test_hostile_article_title_reaches_webhooks_and_push_as_text_in_json(
    tmp_path: Path, http_receiver: HttpReceiver, title: str
) -> None:
    hook = Subscriber(
        id="ops", webhook=http_receiver.url("/hook"), webhook_secret=SECRET, symbols=("*",)
    )
    phone = Subscriber(id="phone", push=(f"json://127.0.0.1:{http_receiver.port}/push",))
    senders: list[Sender] = [
        WebhookSender(WebhookConfig(timeout_seconds=5), concurrency=4),
        AppriseSender(PushConfig(timeout_seconds=5), concurrency=4),
    ]
    alert = make_alert(title=title)
    async with delivering(tmp_path, senders, [hook, phone]) as pipeline:
        pipeline.deliver(alert)
        await eventually(
            lambda: sorted(statuses(pipeline)) == [("push", "sent", 1), ("webhook", "sent", 1)]
        )

    (webhook,) = http_receiver.posts("/hook")
    names = {name.lower() for name in webhook.headers}
    assert not names & {"bcc", "reply-to"}
    assert webhook.json()["article"]["title"] == title  # the JSON carries it as it is
    (push,) = http_receiver.posts("/push")
    lines = push.json()["message"].splitlines()
    assert len(lines) == 3  # headline, title, link: the title stayed one line
    assert "\r" not in push.json()["message"]
    assert "=?" not in lines[1]


async def test_webhook_is_signed_over_its_body_and_a_500_is_retried(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    http_receiver.statuses["/hook"] = deque([500])
    hook = Subscriber(
        id="ops", webhook=http_receiver.url("/hook"), webhook_secret=SECRET, symbols=("*",)
    )
    sender = WebhookSender(WebhookConfig(timeout_seconds=5), concurrency=4)
    async with delivering(tmp_path, [sender], [hook]) as pipeline:
        alert = make_alert()
        pipeline.deliver(alert)
        await pipeline.wait_through(BEYOND_RETRIES_S)
        assert statuses(pipeline) == [("webhook", "sent", 2)]

    (request,) = http_receiver.posts("/hook")
    expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Strykr-Signature"] == f"sha256={expected}"
    assert request.headers["X-Strykr-Alert-Id"] == alert.id
    assert request.json() == alert.to_dict()


async def test_webhook_answered_404_is_dead_at_once(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    http_receiver.statuses["/hook"] = deque([404])
    hook = Subscriber(id="ops", webhook=http_receiver.url("/hook"), webhook_secret=SECRET)
    sender = WebhookSender(WebhookConfig(timeout_seconds=5), concurrency=4)
    async with delivering(tmp_path, [sender], [hook]) as pipeline:
        pipeline.deliver(make_alert())
        await eventually(lambda: statuses(pipeline) == [("webhook", "dead", 1)])


async def test_apprise_json_push_is_short_and_names_the_article(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    url = f"json://127.0.0.1:{http_receiver.port}/push"
    phone = Subscriber(id="phone", push=(url,), symbols=("IWM",))
    sender = AppriseSender(PushConfig(timeout_seconds=5), concurrency=4)
    async with delivering(tmp_path, [sender], [phone]) as pipeline:
        pipeline.deliver(make_alert())
        await eventually(lambda: statuses(pipeline) == [("push", "sent", 1)])

    (request,) = http_receiver.posts("/push")
    payload = request.json()
    assert payload["title"] == "IWM broke below 255.00 at 254.60"
    assert payload["message"].splitlines() == [
        "IWM broke below 255.00 at 254.60 (14:30:14 UTC)",
        "Small caps are stuck",
        "https://strykr.example/articles/small-caps",
    ]


async def test_subscriber_gets_only_its_symbols_and_kinds(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    def hook(name: str, **wants: tuple[str, ...]) -> Subscriber:
        url = http_receiver.url(f"/{name}")
        return Subscriber(id=name, webhook=url, webhook_secret=SECRET, **wants)  # type: ignore[arg-type]

    subscribers = [
        hook("iwm", symbols=("IWM",)),
        hook("spx", symbols=("SPX",)),
        hook("above", symbols=("*",), kinds=("break_above",)),
        hook("below", symbols=("*",), kinds=("break_below",)),
    ]
    sender = WebhookSender(WebhookConfig(timeout_seconds=5), concurrency=4)
    async with delivering(tmp_path, [sender], subscribers) as pipeline:
        pipeline.deliver(make_alert())
        await pipeline.wait_through(BEYOND_RETRIES_S)

    assert sorted(request.path for request in http_receiver.requests) == ["/below", "/iwm"]


async def test_pending_deliveries_are_sent_by_the_next_run_and_removed_subscribers_cancelled(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    stay = Subscriber(id="stay", webhook=http_receiver.url("/stay"), webhook_secret=SECRET)
    leave = Subscriber(id="leave", webhook=http_receiver.url("/leave"), webhook_secret=SECRET)
    sender = WebhookSender(WebhookConfig(timeout_seconds=5), concurrency=4)
    first = Delivering(tmp_path, [sender], [stay, leave])
    first.deliver(make_alert())  # journaled; the service stops before any send
    first.journal.close()

    async with delivering(tmp_path, [sender], [stay]) as pipeline:
        await eventually(
            lambda: sorted(s for _c, s, _a in statuses(pipeline)) == ["cancelled", "sent"]
        )
        pipeline.deliver(make_alert())  # re-detected after the restart: stored once
        await pipeline.wait_through(BEYOND_RETRIES_S)

    assert [request.path for request in http_receiver.requests] == ["/stay"]


@pytest.mark.parametrize("status", [429, 503])
async def test_webhook_gives_up_after_max_attempts(
    tmp_path: Path, http_receiver: HttpReceiver, status: int
) -> None:
    http_receiver.statuses["/hook"] = deque([status] * 10)
    hook = Subscriber(id="ops", webhook=http_receiver.url("/hook"), webhook_secret=SECRET)
    sender = WebhookSender(WebhookConfig(timeout_seconds=5), concurrency=4)
    async with delivering(tmp_path, [sender], [hook]) as pipeline:
        pipeline.deliver(make_alert())
        await pipeline.wait_through(BEYOND_RETRIES_S)
        assert statuses(pipeline) == [("webhook", "dead", 3)]
        journal = pipeline.journal
        assert isinstance(journal, SqliteJournal)
        (row,) = journal.deliveries()
    assert f"HTTP {status}" in (row.last_error or "")


async def test_web_push_is_encrypted_for_the_browser_with_the_alert_id_as_topic(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    browser = Browser(http_receiver.url("/push-service/1"))
    gone = Browser(http_receiver.url("/push-service/2"))
    http_receiver.statuses["/push-service/2"] = deque([410])
    subscriber = Subscriber(id="web-1", webpush=(browser.subscription, gone.subscription))
    # The push service of this test listens on loopback: a private one, allowed explicitly.
    config = PushConfig(
        vapid_private_key=vapid_key(),
        vapid_subject="mailto:ops@strykr.test",
        allow_private_endpoints=True,
    )
    sender = WebPushSender(config, concurrency=4)
    alert = make_alert()
    async with delivering(tmp_path, [sender], [subscriber]) as pipeline:
        pipeline.deliver(alert)
        await eventually(
            lambda: sorted(statuses(pipeline)) == [("webpush", "dead", 1), ("webpush", "sent", 1)]
        )

    (request,) = http_receiver.posts("/push-service/1")
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["topic"] == alert.id
    assert headers["content-encoding"] == "aes128gcm"
    assert headers["authorization"].startswith("vapid t=")
    payload = browser.decrypt(request.body)
    assert payload["title"] == "IWM broke below 255.00 at 254.60"
    assert payload["url"] == "https://strykr.example/articles/small-caps"
    assert payload["alert"] == alert.to_dict()


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://127.0.0.1:{port}/push-service/1",
        "https://localhost:{port}/push-service/1",
        "https://[::ffff:127.0.0.1]:{port}/push-service/1",
        "http://127.0.0.1:{port}/push-service/1",
    ],
)
async def test_web_push_to_a_loopback_endpoint_stored_unchecked_is_refused_at_send_time(
    tmp_path: Path, http_receiver: HttpReceiver, endpoint: str
) -> None:
    # As an older version's journal may hold it: the server never connects there.
    browser = Browser(endpoint.format(port=http_receiver.port))
    subscriber = Subscriber(id="web-1", webpush=(browser.subscription,))
    config = PushConfig(vapid_private_key=vapid_key(), vapid_subject="mailto:ops@strykr.test")
    async with delivering(tmp_path, [WebPushSender(config, concurrency=4)], [subscriber]) as pipe:
        pipe.deliver(make_alert())
        await eventually(lambda: statuses(pipe) == [("webpush", "dead", 1)])
        journal = pipe.journal
        assert isinstance(journal, SqliteJournal)
        (row,) = journal.deliveries()
    assert "refused" in (row.last_error or "")
    assert http_receiver.requests == []


async def test_the_push_client_never_connects_to_a_private_address_whatever_the_name(
    http_receiver: HttpReceiver,
) -> None:
    # What DNS rebinding comes to: a name that now resolves to loopback. The socket
    # factory judges the address actually connected to, after resolution and redirects.
    session = HttpSession(5.0, socket_factory=public_socket)
    try:
        with pytest.raises(aiohttp.ClientConnectorError) as caught:
            await session.get().post(http_receiver.url("/push-service/1"), data=b"{}")
    finally:
        await session.close()
    assert isinstance(caught.value.os_error, PrivateAddressError)
    assert "127.0.0.1 is a loopback address" in str(caught.value)
    assert http_receiver.requests == []


async def test_alerts_the_journal_refuses_are_held_and_delivered_once_it_recovers(
    tmp_path: Path, http_receiver: HttpReceiver
) -> None:
    hook = Subscriber(id="ops", webhook=http_receiver.url("/hook"), webhook_secret=SECRET)
    sender = WebhookSender(WebhookConfig(timeout_seconds=5), concurrency=4)
    async with delivering(tmp_path, [sender], [hook]) as pipeline:
        journal = pipeline.journal
        assert isinstance(journal, SqliteJournal)
        journal.refuse_writes()  # as a full disk would
        first, second = make_alert(seconds=1), make_alert(seconds=2)
        pipeline.deliver(first)
        await pipeline.wait_through(BEYOND_RETRIES_S)
        assert http_receiver.requests == []
        assert pipeline.recorder.holding == 1
        journal.refuse_writes(False)
        pipeline.deliver(second)
        await eventually(lambda: len(http_receiver.requests) == 2)

    delivered = sorted(request.json()["id"] for request in http_receiver.requests)
    assert delivered == sorted([first.id, second.id])
    assert pipeline.recorder.failures == 1
    assert pipeline.recorder.holding == 0
