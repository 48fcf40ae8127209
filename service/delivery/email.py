"""Alert mail: composed as a pure function, sent over one SMTP connection (aiosmtplib).

Every header value passes through :func:`~service.text.one_line`, so no text
from a tick, an article or a subscriber can end a header line and start
another, nor hide one in an encoded word; the HTML part escapes it. The
recipient is built from a checked :class:`~service.delivery.mail_address.EmailAddress`,
never parsed from text. And before anything is sent, :func:`envelope` reads
the mail back as the recipient's server will: the headers must be the ones
composed, and the one recipient the checked address; the SMTP envelope names
that address alone, whatever the headers say.

The ``Message-ID`` is derived from the alert and the subscriber, so a retry
after a lost reply carries the same id and the recipient's server (or mail
client) can fold the copies.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
from collections.abc import Callable, Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import SMTP, default
from email.utils import formatdate
from urllib.parse import quote as url_quote

import aiosmtplib

from service.delivery.mail_address import EmailAddress, parse_email_address
from service.delivery.outcomes import delivery_error, smtp_outcome
from service.delivery.settings import EmailConfig
from service.errors import PermanentDeliveryError, RetryableDeliveryError
from service.journal.records import Channel, Delivery, Subscriber
from service.models import AlertPayload, ArticlePayload
from service.text import first_line, one_line

MAX_SUBJECT_CHARS = 200
# Every header a mail of this module may carry at its top level, lower case.
COMPOSED_HEADERS = frozenset(
    {
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "auto-submitted",
        "x-strykr-alert-id",
        "content-type",
        "content-transfer-encoding",
        "mime-version",
    }
)


def message_id(alert_id: str, subscriber_id: str, sender: str) -> str:
    """The same on every attempt for one alert and one subscriber."""
    who = hashlib.blake2b(subscriber_id.encode(), digest_size=6).hexdigest()
    domain = one_line(sender.rpartition("@")[2]) or "localhost"
    return f"<{one_line(alert_id)}.{who}@{domain}>"


def compose_alert_email(
    alert: AlertPayload,
    *,
    subscriber_id: str,
    recipient: EmailAddress,
    sender: str,
    unsubscribe_url: str,
    unsubscribe_token: str,
) -> EmailMessage:
    """The alert mail: subject, plain-text and HTML parts, RFC 8058 unsubscribe headers."""
    message = EmailMessage()
    message["From"] = one_line(sender)
    message["To"] = _address(recipient)
    message["Subject"] = one_line(alert["headline"], MAX_SUBJECT_CHARS)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(alert["id"], subscriber_id, sender)
    mailto = f"mailto:{one_line(sender)}?subject={url_quote('unsubscribe ' + unsubscribe_token)}"
    message["List-Unsubscribe"] = f"<{one_line(unsubscribe_url)}>, <{mailto}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Auto-Submitted"] = "auto-generated"
    message["X-Strykr-Alert-Id"] = one_line(alert["id"])
    message.set_content(_plain(alert, unsubscribe_url))
    message.add_alternative(_html(alert, unsubscribe_url), subtype="html")
    return message


def _facts(alert: AlertPayload) -> list[tuple[str, str]]:
    return [
        ("Symbol", alert["symbol"]),
        ("Quiet for (s)" if alert["kind"] == "stale_feed" else "Level", f"{alert['level']}"),
        ("Price", f"{alert['price']}"),
        ("At", alert["at"]),
        ("Rule", alert["rule"]),
    ]


def _article_facts(article: ArticlePayload) -> list[tuple[str, str]]:
    # .get(): an alert journaled by an older version may lack a newer key.
    candidates = (
        ("Article", article.get("title")),
        ("Published", article.get("published")),
        ("Pulse", article.get("pulse")),
        ("Threat level", article.get("threat_level")),
        ("Bias", article.get("bias")),
        ("Strykr Take", article.get("take")),
        ("Link", article.get("url")),
    )
    return [(label, str(value)) for label, value in candidates if value not in (None, "")]


def _plain(alert: AlertPayload, unsubscribe_url: str) -> str:
    lines = [alert["headline"], ""]
    lines += [f"{label}: {value}" for label, value in _facts(alert)]
    article = alert.get("article")
    if article:
        lines += ["", "Latest Strykr analysis"]
        lines += [f"{label}: {value}" for label, value in _article_facts(article)]
    lines += ["", f"Unsubscribe: {unsubscribe_url}", ""]
    return "\n".join(lines)


def _html(alert: AlertPayload, unsubscribe_url: str) -> str:
    def rows(facts: list[tuple[str, str]]) -> str:
        return "".join(
            f"<tr><th align='left'>{html.escape(label)}</th><td>{html.escape(value)}</td></tr>"
            for label, value in facts
        )

    parts = [
        "<!doctype html><html><body>",
        f"<h2>{html.escape(alert['headline'])}</h2>",
        f"<table>{rows(_facts(alert))}</table>",
    ]
    article = alert.get("article")
    if article:
        facts = [(label, value) for label, value in _article_facts(article) if label != "Link"]
        parts += ["<h3>Latest Strykr analysis</h3>", f"<table>{rows(facts)}</table>"]
        url = article.get("url")
        if isinstance(url, str) and url.startswith(("https://", "http://")):
            parts.append(f'<p><a href="{html.escape(url)}">Read the analysis</a></p>')
    parts += [
        f'<p><small><a href="{html.escape(unsubscribe_url)}">Unsubscribe</a></small></p>',
        "</body></html>",
    ]
    return "".join(parts)


def _reply(code: int, text: str) -> str:
    return f"SMTP {code} {one_line(text, 200)}"


def compose_confirmation_email(
    *,
    recipient: EmailAddress,
    sender: str,
    confirm_url: str,
    symbols: Sequence[str],
    service_url: str,
    manage_url: str | None = None,
) -> EmailMessage:
    """The double opt-in mail: nothing else goes to ``recipient`` until the link is opened.

    With ``manage_url``, the link to set one's own alerts, which works once confirmed.
    """
    watched = "every symbol" if "*" in symbols else ", ".join(symbols)
    manage_text = manage_html = ""
    if manage_url is not None:
        manage_text = (
            f"Then set your own price alerts on the chart (keep this link to yourself):\n"
            f"{manage_url}\n\n"
        )
        manage_html = (
            f'<p>Then <a href="{html.escape(manage_url, quote=True)}">set your own price '
            "alerts on the chart</a> (keep this link to yourself).</p>"
        )
    message = EmailMessage()
    message["Subject"] = "Confirm your Strykr real-time alerts"
    message["From"] = one_line(sender)
    message["To"] = _address(recipient)
    message["Date"] = formatdate(usegmt=True)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        f"Someone, hopefully you, asked for real-time Strykr alerts on {watched} "
        f"at {service_url}.\n\n"
        f"Open this link to start them:\n{confirm_url}\n\n"
        f"{manage_text}"
        "If it was not you, ignore this mail: nothing more will be sent.\n"
    )
    message.add_alternative(
        '<!doctype html><html><body style="font-family: sans-serif">'
        f"<p>Someone, hopefully you, asked for real-time Strykr alerts on "
        f"<b>{html.escape(watched)}</b>.</p>"
        f'<p><a href="{html.escape(confirm_url, quote=True)}">Start my alerts</a></p>'
        f"{manage_html}"
        "<p>If it was not you, ignore this mail: nothing more will be sent.</p>"
        "</body></html>",
        subtype="html",
    )
    return message


def _address(address: EmailAddress) -> Address:
    # From the parts: nothing is parsed, so nothing can be decoded into the header.
    return Address(username=address.local, domain=address.domain)


def envelope(message: EmailMessage, recipient: EmailAddress) -> bytes:
    """``message`` as the bytes to send to ``recipient``, once they are checked.

    The bytes are read back with a standard parser, as the recipient's server
    will read them: a header that was not composed (a ``Bcc`` an encoded word
    unfolded, say) or a ``To`` other than ``recipient`` alone refuses the mail
    with :class:`~service.errors.PermanentDeliveryError`.
    """
    raw = message.as_bytes(policy=SMTP)
    parsed = BytesHeaderParser(policy=default).parsebytes(raw)
    names = [name.lower() for name in parsed]
    unexpected = sorted(set(names) - COMPOSED_HEADERS)
    if unexpected:
        raise PermanentDeliveryError(
            f"refused to send: the mail would carry headers it was not composed with "
            f"({', '.join(one_line(name, 40) for name in unexpected)})"
        )
    to = parsed.get_all("To") or []
    addresses = [(a.username, a.domain) for header in to for a in getattr(header, "addresses", ())]
    if names.count("to") != 1 or addresses != [(recipient.local, recipient.domain)]:
        raise PermanentDeliveryError(
            "refused to send: the mail's recipients would not be exactly the subscriber's address"
        )
    return raw


class EmailSender:
    """Sends alert mail through one SMTP connection, opened when needed and kept open."""

    name: Channel = "email"

    def __init__(
        self, config: EmailConfig, *, unsubscribe: Callable[[str], tuple[str, str]]
    ) -> None:
        self.config = config
        self.concurrency = 1  # one SMTP connection, one transaction at a time
        self._unsubscribe = unsubscribe  # subscriber id -> (URL, token)
        self._client: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()

    async def send(self, delivery: Delivery, subscriber: Subscriber | None) -> None:
        assert subscriber is not None
        try:
            recipient = parse_email_address(delivery.target)
        except ValueError as error:  # stored before addresses were checked as they are now
            raise PermanentDeliveryError(f"refused to send: {error}") from None
        url, token = self._unsubscribe(subscriber.id)
        message = compose_alert_email(
            delivery.alert,
            subscriber_id=subscriber.id,
            recipient=recipient,
            sender=self.config.sender,
            unsubscribe_url=url,
            unsubscribe_token=token,
        )
        await self.send_message(message, recipient)

    async def send_confirmation(
        self,
        subscriber: Subscriber,
        *,
        confirm_url: str,
        service_url: str,
        manage_url: str | None = None,
    ) -> None:
        """Send ``subscriber`` the double opt-in mail with ``confirm_url`` in it."""
        if subscriber.email is None:
            raise PermanentDeliveryError("no email address to confirm")
        try:
            recipient = parse_email_address(subscriber.email)
        except ValueError as error:
            raise PermanentDeliveryError(f"refused to send: {error}") from None
        message = compose_confirmation_email(
            recipient=recipient,
            sender=self.config.sender,
            confirm_url=confirm_url,
            symbols=subscriber.symbols,
            service_url=service_url,
            manage_url=manage_url,
        )
        await self.send_message(message, recipient)

    async def send_message(self, message: EmailMessage, recipient: EmailAddress) -> None:
        """Send ``message`` to ``recipient`` alone (checked by :func:`envelope` first).

        A refusal raises a retryable or a permanent ``DeliveryError``.
        """
        raw = envelope(message, recipient)
        async with self._lock:
            client = await self._connected()
            try:
                errors, _ = await client.sendmail(self.config.sender, [str(recipient)], raw)
            except aiosmtplib.SMTPSenderRefused as error:
                # The server's view of our sender, not of this recipient: try again later.
                raise RetryableDeliveryError(_reply(error.code, error.message)) from None
            except aiosmtplib.SMTPRecipientsRefused as error:
                refused = error.recipients[0]
                raise delivery_error(
                    smtp_outcome(refused.code),
                    f"SMTP {refused.code} {one_line(refused.message, 200)}",
                ) from None
            except aiosmtplib.SMTPResponseException as error:
                await self._drop()
                raise delivery_error(
                    smtp_outcome(error.code), _reply(error.code, error.message)
                ) from None
            except (aiosmtplib.SMTPException, OSError) as error:
                await self._drop()
                raise RetryableDeliveryError(f"SMTP: {first_line(error)}") from None
        for code, text in errors.values():  # per-recipient refusals that did not stop the mail
            raise delivery_error(smtp_outcome(code), _reply(code, text))

    async def _connected(self) -> aiosmtplib.SMTP:
        if self._client is not None and self._client.is_connected:
            return self._client
        config = self.config
        client = aiosmtplib.SMTP(
            hostname=config.host,
            port=config.port,
            use_tls=config.tls,
            start_tls=config.starttls and not config.tls,
            username=config.username,
            password=config.password,
            timeout=config.timeout_seconds,
        )
        try:
            # Refusals here (greeting, STARTTLS, login) concern the server or our
            # settings, not the recipient: retried until someone fixes them.
            await client.connect()
        except (aiosmtplib.SMTPException, OSError) as error:
            raise RetryableDeliveryError(
                f"SMTP {config.host}:{config.port}: {first_line(error)}"
            ) from None
        self._client = client
        return client

    async def _drop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            client.close()

    async def close(self) -> None:
        async with self._lock:
            client, self._client = self._client, None
            if client is not None and client.is_connected:
                try:
                    await asyncio.wait_for(client.quit(), timeout=1.0)
                except (aiosmtplib.SMTPException, OSError, TimeoutError):
                    client.close()
