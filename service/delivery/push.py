"""Push: apprise URLs (ntfy, Telegram, Slack, Discord, Pushover, …) and browser Web Push.

The text is short: the headline, the article's title, a link. Titles become
HTTP headers in some apprise services (ntfy's ``X-Title``), so they are made
one line first.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import apprise
from pywebpush import WebPushException, webpush_async

from service.delivery.destinations import (
    PrivateAddressError,
    public_socket,
    redact_url,
    url_problem,
)
from service.delivery.http import HttpSession
from service.delivery.outcomes import delivery_error, http_outcome
from service.delivery.settings import PushConfig
from service.errors import PermanentDeliveryError, RetryableDeliveryError
from service.journal.records import Channel, Delivery, Subscriber
from service.models import AlertPayload
from service.text import first_line, one_line

MAX_TITLE_CHARS = 120
MAX_BODY_CHARS = 400
# Web Push services keep an undelivered message this long (the browser may be off).
WEBPUSH_TTL_SECONDS = 3600


def push_text(alert: AlertPayload) -> tuple[str, str]:
    """(title, body) of a push: the headline and its time, then the article's title and link."""
    title = one_line(alert["headline"], MAX_TITLE_CHARS)
    at = alert.get("at") or ""
    # "2026-02-02T14:30:14.000Z" -> "14:30:14 UTC": the moment is what a trader needs.
    lines = [f"{title} ({at[11:19]} UTC)" if len(at) >= 19 else title]
    article = alert.get("article")
    if article is not None:
        if article.get("title"):
            lines.append(one_line(str(article.get("title")), MAX_TITLE_CHARS))
        if article.get("url"):
            lines.append(one_line(str(article.get("url"))))
    return title, "\n".join(lines)[:MAX_BODY_CHARS]


class AppriseSender:
    """One apprise URL per delivery, so each service is retried on its own."""

    name: Channel = "push"

    def __init__(self, config: PushConfig, *, concurrency: int) -> None:
        self.config = config
        self.concurrency = concurrency

    async def send(self, delivery: Delivery, subscriber: Subscriber | None) -> None:
        title, body = push_text(delivery.alert)
        notifier = apprise.Apprise()
        if not notifier.add(delivery.target):
            raise PermanentDeliveryError(f"{redact_url(delivery.target)}: not a valid push URL")
        problems: list[str] = []

        def remember(entry: Any, _plugin: Any) -> None:
            problems.append(str(getattr(entry, "message", entry)))

        result = await notifier.async_notify(
            body=body,
            title=title,
            timeout=self.config.timeout_seconds,
            log_callback=remember,
        )
        if not result:
            reason = problems[-1] if problems else getattr(result.status, "name", "failed")
            raise RetryableDeliveryError(
                f"{redact_url(delivery.target)}: {one_line(reason, 200).lower()}"
            )

    async def close(self) -> None:
        return None


class WebPushSender:
    """Browser Web Push (pywebpush, VAPID), for subscriptions registered through the API.

    The ``Topic`` header is the alert id, so a retried push replaces the one
    the push service may already hold instead of showing twice.
    """

    name: Channel = "webpush"

    def __init__(self, config: PushConfig, *, concurrency: int) -> None:
        self.config = config
        self.concurrency = concurrency
        guard = None if config.allow_private_endpoints else public_socket
        self._http = HttpSession(config.timeout_seconds, socket_factory=guard)

    async def send(self, delivery: Delivery, subscriber: Subscriber | None) -> None:
        assert subscriber is not None
        if self.config.vapid_private_key is None:
            raise RetryableDeliveryError("no [push] vapid_private_key is configured")
        if not self.config.allow_private_endpoints:
            # Also for endpoints stored before they were checked as they are now.
            problem = url_problem(delivery.target, allowed_hosts=self.config.endpoint_hosts)
            if problem is not None:
                raise PermanentDeliveryError(f"{redact_url(delivery.target)}: refused: {problem}")
        subscription = next(
            (sub for sub in subscriber.webpush if sub.endpoint == delivery.target), None
        )
        if subscription is None:
            raise PermanentDeliveryError("the browser subscription is gone")
        title, body = push_text(delivery.alert)
        article = delivery.alert.get("article")
        url = None if article is None else article.get("url")
        data = json.dumps({"title": title, "body": body, "url": url, "alert": delivery.alert})
        try:
            await webpush_async(
                subscription.to_dict(),
                data=data,
                vapid_private_key=self.config.vapid_private_key,
                vapid_claims={"sub": self.config.vapid_subject},
                ttl=WEBPUSH_TTL_SECONDS,
                headers={"Topic": delivery.alert_id[:32], "Urgency": "high"},
                aiohttp_session=self._http.get(),
            )
        except WebPushException as error:
            status = getattr(error.response, "status", None)
            where = redact_url(delivery.target)
            if status is None:
                raise RetryableDeliveryError(f"{where}: {first_line(error, 200)}") from None
            raise delivery_error(http_outcome(status), f"{where}: HTTP {status}") from None
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            where = redact_url(delivery.target)
            if _refused_address(error):
                # The name now resolves somewhere private (DNS rebinding): never retried.
                raise PermanentDeliveryError(f"{where}: {first_line(error, 200)}") from None
            raise RetryableDeliveryError(
                f"{where}: {first_line(error, 200) or 'timed out'}"
            ) from None

    async def close(self) -> None:
        await self._http.close()


def _refused_address(error: BaseException) -> bool:
    """Whether the connection failed because :func:`public_socket` refused its address."""
    cause = getattr(error, "os_error", None)
    return isinstance(cause, PrivateAddressError) or "refused to connect: " in str(error)
