"""Every channel, held to the same rules against a real server on 127.0.0.1.

For each sender: which replies it retries and which it gives up on (the
retry codes it honours), and that nothing secret of its address (a token
in a URL's path or query, a password) ever appears in an error it records
or a line it logs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import structlog

from service.delivery.email import EmailSender
from service.delivery.mqtt_out import MqttOutSender
from service.delivery.push import AppriseSender, WebPushSender
from service.delivery.settings import EmailConfig, MqttOutConfig, PushConfig, WebhookConfig
from service.delivery.webhook import WebhookSender
from service.delivery.workers import Sender
from service.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from service.journal.records import CHANNELS, Channel, Delivery, Subscriber
from tests.builders import alert_at
from tests.mosquitto import free_port
from tests.receivers import HttpReceiver, SmtpServer
from tests.webpush import Browser, vapid_key

# What must never show: path and query tokens of URLs, passwords.
PATH_SECRET = "pathsecret0123456789"
QUERY_SECRET = "querysecret0123456789"
PASSWORD = "passwordsecret0123456789"
SECRETS = (PATH_SECRET, QUERY_SECRET, PASSWORD)

# The HTTP replies every HTTP channel must take alike: retried, or given up.
RETRIED = (408, 425, 429, 500, 502, 503, 504)
GIVEN_UP = (400, 401, 403, 404, 410, 413)


@dataclass
class Attempt:
    """One send on one channel: its sender, the row, its subscriber."""

    sender: Sender
    delivery: Delivery
    subscriber: Subscriber | None


def delivery(channel: Channel, target: str, subscriber: str = "reader") -> Delivery:
    return Delivery(
        id=1,
        alert_id=alert_at(1).id,
        subscriber=subscriber,
        channel=channel,
        target=target,
        attempts=0,
        alert=alert_at(1).to_dict(),
    )


def webhook(receiver: HttpReceiver) -> Attempt:
    target = receiver.url(f"/hook/{PATH_SECRET}?token={QUERY_SECRET}")
    reader = Subscriber(id="reader", webhook=target, webhook_secret=PASSWORD)
    sender = WebhookSender(WebhookConfig(timeout_seconds=5), concurrency=1)
    return Attempt(sender, delivery("webhook", target), reader)


def webpush(receiver: HttpReceiver) -> Attempt:
    browser = Browser(receiver.url(f"/push/{PATH_SECRET}?auth={QUERY_SECRET}"))
    reader = Subscriber(id="reader", webpush=(browser.subscription,))
    config = PushConfig(
        vapid_private_key=vapid_key(),
        vapid_subject="mailto:ops@strykr.test",
        allow_private_endpoints=True,  # the test's push service listens on loopback
    )
    sender = WebPushSender(config, concurrency=1)
    return Attempt(sender, delivery("webpush", browser.subscription.endpoint), reader)


def apprise(receiver: HttpReceiver) -> Attempt:
    target = f"json://user:{PASSWORD}@127.0.0.1:{receiver.port}/push/{PATH_SECRET}"
    reader = Subscriber(id="reader", push=(target,))
    return Attempt(AppriseSender(PushConfig(), concurrency=1), delivery("push", target), reader)


HTTP_CHANNELS: dict[str, Callable[[HttpReceiver], Attempt]] = {
    "webhook": webhook,
    "webpush": webpush,
    "push": apprise,
}
# The path each channel posts to on the receiver (its address's path, without the query).
HTTP_PATHS = {"webhook": f"/hook/{PATH_SECRET}", "webpush": f"/push/{PATH_SECRET}"}
HTTP_PATHS["push"] = HTTP_PATHS["webpush"]


async def outcome(attempt: Attempt) -> tuple[DeliveryError | None, list[dict[str, object]]]:
    """The error the send raised (``None``: sent), and every line it logged."""
    with structlog.testing.capture_logs() as logs:
        try:
            await attempt.sender.send(attempt.delivery, attempt.subscriber)
        except DeliveryError as error:
            return error, logs
        finally:
            await attempt.sender.close()
    return None, logs


def assert_no_secret(error: DeliveryError | None, logs: list[dict[str, object]]) -> None:
    recorded = [error.detail if error is not None else "", *(repr(line) for line in logs)]
    for text in recorded:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {text!r}"


@pytest.mark.parametrize("channel", sorted(HTTP_CHANNELS))
async def test_an_http_channel_sends_on_2xx(http_receiver: HttpReceiver, channel: str) -> None:
    error, logs = await outcome(HTTP_CHANNELS[channel](http_receiver))
    assert error is None
    assert len(http_receiver.posts(HTTP_PATHS[channel])) == 1
    assert_no_secret(error, logs)


@pytest.mark.parametrize("status", RETRIED + GIVEN_UP)
@pytest.mark.parametrize("channel", sorted(HTTP_CHANNELS))
async def test_an_http_channel_retries_or_gives_up_by_status_and_keeps_its_secrets(
    http_receiver: HttpReceiver, channel: str, status: int
) -> None:
    http_receiver.statuses[HTTP_PATHS[channel]] = deque([status])
    error, logs = await outcome(HTTP_CHANNELS[channel](http_receiver))
    assert error is not None
    if channel == "push":
        # apprise reports failure without the status: every failure is worth another try.
        assert isinstance(error, RetryableDeliveryError)
    elif status in RETRIED:
        assert isinstance(error, RetryableDeliveryError), error
        assert f"HTTP {status}" in error.detail
    else:
        assert isinstance(error, PermanentDeliveryError), error
        assert f"HTTP {status}" in error.detail
    assert "127.0.0.1" in error.detail  # it says where, without the secret parts
    assert_no_secret(error, logs)


@pytest.mark.parametrize("channel", sorted(HTTP_CHANNELS))
async def test_an_http_channel_retries_when_nothing_listens_and_keeps_its_secrets(
    channel: str,
) -> None:
    nobody = HttpReceiver()  # a free port nothing listens on: the connection is refused
    error, logs = await outcome(HTTP_CHANNELS[channel](nobody))
    assert isinstance(error, RetryableDeliveryError), error
    assert_no_secret(error, logs)


def email(smtp: SmtpServer) -> Attempt:
    config = EmailConfig(
        host="127.0.0.1",
        port=smtp.port,
        starttls=False,
        username=None,
        password=None,
        sender="alerts@strykr.test",
    )
    sender = EmailSender(config, unsubscribe=lambda _id: (f"https://x/u?t={QUERY_SECRET}", "t"))
    reader = Subscriber(id="reader", email="reader@example.com")
    return Attempt(sender, delivery("email", "reader@example.com"), reader)


@pytest.mark.parametrize(
    ("script", "reply", "retried"),
    [
        ("data", "421 4.3.0 service not available", True),
        ("data", "451 4.3.0 try again later", True),
        ("data", "452 4.3.1 insufficient storage", True),
        ("data", "550 5.7.1 rejected", False),
        ("data", "554 5.6.0 message refused", False),
        ("rcpt", "450 4.2.1 mailbox busy", True),
        ("rcpt", "550 5.1.1 no such user", False),
        ("rcpt", "553 5.1.3 bad address", False),
    ],
)
async def test_email_retries_4xx_gives_up_on_5xx_and_keeps_its_secrets(
    smtp_server: SmtpServer, script: str, reply: str, retried: bool
) -> None:
    if script == "data":
        smtp_server.receiver.data_replies.append(reply)
    else:
        smtp_server.receiver.refuse["reader@example.com"] = reply
    error, logs = await outcome(email(smtp_server))
    assert error is not None
    assert isinstance(error, RetryableDeliveryError if retried else PermanentDeliveryError), error
    assert reply.split()[0] in error.detail
    assert_no_secret(error, logs)


async def test_email_to_a_server_that_is_down_is_retried_and_keeps_its_password() -> None:
    config = EmailConfig(
        host="127.0.0.1",
        port=free_port(),
        starttls=False,
        username="alerts",
        password=PASSWORD,
        sender="alerts@strykr.test",
    )
    sender = EmailSender(config, unsubscribe=lambda _id: ("https://x/u", "t"))
    reader = Subscriber(id="reader", email="reader@example.com")
    error, logs = await outcome(Attempt(sender, delivery("email", "reader@example.com"), reader))
    assert isinstance(error, RetryableDeliveryError), error
    assert_no_secret(error, logs)


async def test_mqtt_out_not_connected_is_retried_and_keeps_its_password() -> None:
    config = MqttOutConfig(host="127.0.0.1", port=free_port(), username="out", password=PASSWORD)
    attempt = Attempt(MqttOutSender(config), delivery("mqtt", "alerts/IWM", "-"), None)
    error, logs = await outcome(attempt)
    assert isinstance(error, RetryableDeliveryError), error
    assert_no_secret(error, logs)


def test_every_channel_of_the_service_is_held_to_these_rules() -> None:
    assert {*HTTP_CHANNELS, "email", "mqtt"} == set(CHANNELS)
