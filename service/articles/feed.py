"""A feed reply → feed items: a JSON list of articles, a JSON Feed, or RSS/Atom.

Pure functions: the HTTP side is in :mod:`service.articles.sources`.
"""

from __future__ import annotations

import calendar
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import feedparser

from service.articles.html import html_to_text, looks_like_html
from service.errors import ArticleError
from service.text import quote
from service.timestamps import NS_PER_SECOND, parse_timestamp

_TEXT_FIELDS = ("text", "content", "body", "content_text", "content_html", "html", "summary")
_URL_FIELDS = ("url", "link")
_DATE_FIELDS = ("published", "datePublished", "date_published", "date")


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedItem:
    """One article of a feed. ``key`` identifies it across polls (its URL, id or title)."""

    key: str
    text: str
    title: str | None = None
    url: str | None = None
    published_ns: int | None = None


def parse_feed(
    body: bytes, *, content_type: str | None, source: str
) -> tuple[list[FeedItem], list[str]]:
    """The items of a feed reply, and a problem per item that could not be used.

    Raises :class:`~service.errors.ArticleError` when the reply is no feed at all.
    """
    head = body.lstrip()[:1]
    if (content_type and "json" in content_type) or head in (b"[", b"{"):
        return _json_items(body, source)
    return _xml_items(body, source)


def _json_items(body: bytes, source: str) -> tuple[list[FeedItem], list[str]]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as error:
        raise ArticleError(source, "invalid_feed", f"invalid JSON: {error}") from None
    if isinstance(data, Mapping) and isinstance(data.get("items"), list):
        data = data["items"]  # JSON Feed (jsonfeed.org)
    if not isinstance(data, list):
        raise ArticleError(
            source, "invalid_feed", 'expected a JSON list of articles or {"items": [...]}'
        )
    items: list[FeedItem] = []
    problems: list[str] = []
    for index, entry in enumerate(data):
        if not isinstance(entry, Mapping):
            problems.append(f"items[{index}]: expected an object, got {type(entry).__name__}")
            continue
        try:
            items.append(_json_item(entry, source, index))
        except ValueError as error:
            problems.append(f"items[{index}]: {error}")
    return items, problems


def _json_item(entry: Mapping[str, Any], source: str, index: int) -> FeedItem:
    text = _first_string(entry, _TEXT_FIELDS)
    if text is None:
        raise ValueError(f"no article text; expected one of {', '.join(_TEXT_FIELDS)}")
    title = _first_string(entry, ("title",))
    url = _first_string(entry, _URL_FIELDS)
    published_ns = None
    date = _first_string(entry, _DATE_FIELDS)
    if date is not None:
        try:
            published_ns = parse_timestamp(date)
        except ValueError as error:
            raise ValueError(f"published: {error}") from None
    ident = _first_string(entry, ("id", "guid"))
    key = url or (f"{source}#{ident}" if ident else f"{source}#{title or index}")
    return FeedItem(key=key, text=_plain(text), title=title, url=url, published_ns=published_ns)


def _xml_items(body: bytes, source: str) -> tuple[list[FeedItem], list[str]]:
    parsed = feedparser.parse(body)
    entries = parsed.get("entries") or []
    if not entries and (parsed.get("bozo") or not parsed.get("version")):
        problem = parsed.get("bozo_exception")
        detail = f"not a JSON, RSS or Atom feed ({problem})" if problem else "not a feed"
        raise ArticleError(source, "invalid_feed", detail)
    items: list[FeedItem] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        contents = entry.get("content") or []
        text = contents[0].get("value") if contents else entry.get("summary")
        if not isinstance(text, str) or not text.strip():
            problems.append(f"entries[{index}]: no content or summary")
            continue
        moment = entry.get("published_parsed") or entry.get("updated_parsed")
        published_ns = calendar.timegm(moment) * NS_PER_SECOND if moment else None
        title = entry.get("title") or None
        url = entry.get("link") or None
        key = url or entry.get("id") or f"{source}#{title or index}"
        items.append(
            FeedItem(key=key, text=_plain(text), title=title, url=url, published_ns=published_ns)
        )
    return items, problems


def _first_string(entry: Mapping[str, Any], fields: tuple[str, ...]) -> str | None:
    for name in fields:
        value = entry.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name}: expected a string, got {quote(json.dumps(value))}")
    return None


def _plain(text: str) -> str:
    return html_to_text(text) if looks_like_html(text) or "</p>" in text else text
