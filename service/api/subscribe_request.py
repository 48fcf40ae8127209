"""The body of ``POST /api/v1/subscribers``, validated: pure, no I/O.

Every problem names the field it is about, so the caller can fix it; nothing
here trusts the client for sizes, types or the shape of a key.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from service.delivery.mail_address import MAX_ADDRESS_CHARS, parse_email_address
from service.errors import RequestError
from service.journal.records import WebPushSubscription
from service.models import ALERT_KINDS
from service.symbols import normalize_symbol
from service.text import quote

MAX_SYMBOLS = 64
MAX_PUSH_URLS = 8
MAX_URL_CHARS = 2048
KEYS = frozenset({"email", "webpush", "push", "symbols", "article", "kinds"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SubscriptionRequest:
    email: str | None = None
    webpush: WebPushSubscription | None = None
    push: tuple[str, ...] = ()
    symbols: tuple[str, ...] = ()
    article: str | None = None  # the URL of an article: subscribe to the symbols it names
    kinds: tuple[str, ...] = ()


def parse_subscription(body: object, *, known_symbols: Collection[str]) -> SubscriptionRequest:
    """Validate a decoded JSON body; raise :class:`RequestError` naming the first problem."""
    if not isinstance(body, Mapping):
        raise RequestError(f"expected a JSON object, got {_json_type(body)}")
    unknown = sorted(set(body) - KEYS)
    if unknown:
        raise RequestError(
            f"{_name(unknown[0])}: unknown field; expected some of {', '.join(sorted(KEYS))}"
        )
    email = _email(body.get("email"))
    webpush = None if body.get("webpush") is None else parse_webpush(body["webpush"])
    push = _push_urls(body.get("push"))
    if email is None and webpush is None and not push:
        raise RequestError("give an email, a webpush subscription or push URLs to send alerts to")
    article = body.get("article")
    if article is not None and (
        not isinstance(article, str) or not 0 < len(article) <= MAX_URL_CHARS
    ):
        raise RequestError(f"article: expected the article's URL, got {_json_type(article)}")
    symbols = _symbols(body.get("symbols"), known_symbols)
    if article is None and not symbols:
        raise RequestError('symbols: expected a list of symbols (or ["*"]), or give an article')
    if article is not None and symbols:
        raise RequestError("give symbols or an article, not both")
    return SubscriptionRequest(
        email=email,
        webpush=webpush,
        push=push,
        symbols=symbols,
        article=article,
        kinds=_kinds(body.get("kinds")),
    )


def parse_webpush(value: object) -> WebPushSubscription:
    """A browser's ``PushSubscription.toJSON()``: an https endpoint and its two keys."""
    if not isinstance(value, Mapping):
        raise RequestError(f"webpush: expected PushSubscription.toJSON(), got {_json_type(value)}")
    endpoint = value.get("endpoint")
    if not isinstance(endpoint, str) or len(endpoint) > MAX_URL_CHARS:
        raise RequestError("webpush.endpoint: expected the push service's https URL")
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname:
        raise RequestError("webpush.endpoint: expected an https URL")
    keys = value.get("keys")
    if not isinstance(keys, Mapping):
        raise RequestError("webpush.keys: expected an object with p256dh and auth")
    p256dh = _b64_key(keys.get("p256dh"), "webpush.keys.p256dh", 65)
    auth = _b64_key(keys.get("auth"), "webpush.keys.auth", 16)
    return WebPushSubscription(endpoint=endpoint, p256dh=p256dh, auth=auth)


def _email(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_ADDRESS_CHARS:
        raise RequestError(f"email: expected an email address, got {_json_type(value)}")
    try:
        return str(parse_email_address(value.strip()))
    except ValueError as error:
        raise RequestError(f"email: {error}") from None


def _push_urls(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if (
        not isinstance(value, list)
        or not 0 < len(value) <= MAX_PUSH_URLS
        or not all(isinstance(url, str) and 0 < len(url) <= MAX_URL_CHARS for url in value)
    ):
        raise RequestError(f"push: expected a list of 1 to {MAX_PUSH_URLS} apprise URLs")
    return tuple(value)


def _symbols(value: object, known: Collection[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not 0 < len(value) <= MAX_SYMBOLS:
        raise RequestError(f'symbols: expected a list of 1 to {MAX_SYMBOLS} symbols, or ["*"]')
    if value == ["*"]:
        return ("*",)
    symbols: list[str] = []
    for index, item in enumerate(value):
        try:
            symbol = normalize_symbol(item)
        except ValueError as error:
            raise RequestError(f"symbols[{index}]: {error}") from None
        if symbol not in known:
            watched = ", ".join(sorted(known)[:20]) or "none yet"
            raise RequestError(
                f"symbols[{index}]: {symbol} is not watched here (watched: {watched})"
            )
        symbols.append(symbol)
    return tuple(dict.fromkeys(symbols))


def _kinds(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(kind in ALERT_KINDS for kind in value):
        raise RequestError(f"kinds: expected a list of {', '.join(ALERT_KINDS)}")
    return tuple(dict.fromkeys(value))


def _b64_key(value: object, where: str, size: int) -> str:
    if not isinstance(value, str) or len(value) > 200:
        raise RequestError(f"{where}: expected a base64url string")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise RequestError(f"{where}: not base64url") from None
    if len(raw) != size:
        raise RequestError(f"{where}: expected {size} bytes, got {len(raw)}")
    return value


def _name(key: str) -> str:
    return quote(key[:40])


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a number" if isinstance(value, int | float) else type(value).__name__
