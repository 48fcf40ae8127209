"""A Strykr analysis (text, a page scrape, or HTML) → an :class:`~service.models.Article`.

The parser knows the shape of the articles: an optional page header with the
title, a "Strykr Analysis" block with the bias, the Strykr Pulse sentence and
the Threat Level, the body, a "Strykr Watch" paragraph with the levels, a
"Strykr Take", then ``datePublished:``, "Sources (N)" and ``#tags``. Every
part may be missing. :func:`parse_article` never raises: what it cannot use
becomes a warning, and input that is no article at all (empty, binary, too
large) comes back ``rejected`` with the reason.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from service.articles.html import html_to_text, looks_like_html
from service.articles.instruments import Instruments
from service.articles.watch_levels import extract_levels
from service.models import Article, Bias, Citation
from service.text import quote
from service.timestamps import NS_PER_SECOND

# Real articles are a few kilobytes; anything this large is a wrong file.
MAX_ARTICLE_BYTES = 1_000_000
# Share of control characters above which text is taken for binary data.
_BINARY_SHARE = 0.05

_HEADING = re.compile(
    r"^\s*(?:#{1,6}\s*)?(?:\*\*)?strykr\s+(analysis|watch|take)(?:\*\*)?\s*(?:[:\-\u2013\u2014]\s*(.*))?$",
    re.IGNORECASE,
)
_END_MARKER = re.compile(
    r"^\s*(?:datePublished\b|sources\s*(?:\(\d+\))?\s*$|get real-time alerts|related articles)",
    re.IGNORECASE,
)
_PUBLISHED = re.compile(r"datePublished[\"']?\s*[:=]\s*[\"']?([^\"'\n<,}]+)", re.IGNORECASE)
_PULSE = re.compile(r"strykr\s+pulse\s*:?\s*(\d{1,3})\s*/\s*100\b\.?", re.IGNORECASE)
_THREAT = re.compile(r"threat\s+level\s*:?\s*(\d{1,2})\s*/\s*5\b", re.IGNORECASE)
_BIAS = re.compile(r"(?<![a-z])(bearish|bullish|neutral)", re.IGNORECASE)
_URL_LINE = re.compile(r"^\s*(?:url|link|canonical)\s*:\s*(https?://\S+)\s*$", re.IGNORECASE)
_PAGE_TITLE = re.compile(r"^\s*(.+?)\s*\|\s*Strykr\b", re.IGNORECASE)
_MARKDOWN_TITLE = re.compile(r"^\s*#\s+(.+?)\s*#*\s*$")
_TAGS = re.compile(r"^\s*#[\w-]+(?:\s*#[\w-]+)*\s*$")
_SOURCES = re.compile(r"^\s*sources\s*(?:\((\d+)\))?\s*:?\s*$", re.IGNORECASE)
_SITE = re.compile(r"^\s*([a-z0-9-]+(?:\.[a-z0-9-]+)+)\s*(?:·|\||-|\u2014)", re.IGNORECASE)
_BULLET = re.compile(r"^\s*(?:[-*\u2022\u2013]|\d+[.)])\s+")
_BOILERPLATE = re.compile(
    r"skip to (?:main )?content|back to news|min read|^strykr ai$|get real-time alerts"
    r"|related articles|^score$|^risk$",
    re.IGNORECASE,
)
_TITLE_MIN_WORDS = 4


def parse_article(
    data: str | bytes,
    *,
    source: str,
    instruments: Instruments | None = None,
    url: str | None = None,
    max_bytes: int = MAX_ARTICLE_BYTES,
) -> Article:
    """Parse one article; ``source`` names it (a path or a URL) in the result and in warnings."""
    text, rejected, warnings = _decode(data, max_bytes)
    if rejected is not None:
        return Article(source=source, url=url, rejected=rejected, warnings=tuple(warnings))
    if looks_like_html(text):
        try:
            text = html_to_text(text)
        except Exception:  # a broken page is still worth reading as text
            warnings.append("could not read the HTML; reading it as plain text")
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    sections = _sections(lines)
    watch = sections.get("watch")
    pulse = _PULSE.search(text)
    if watch:
        levels, level_warnings = extract_levels(watch, instruments or Instruments())
        warnings.extend(level_warnings)
    else:
        levels = []
        warnings.append('no "Strykr Watch" section: the article names no levels')
    published, published_warning = _published(text)
    if published_warning:
        warnings.append(published_warning)
    return Article(
        source=source,
        title=_title(lines),
        url=url or _url(lines),
        published_ns=published,
        pulse=_bounded(pulse.group(1) if pulse else None, 100),
        threat_level=_bounded(_group(_THREAT.search(text)), 5),
        bias=_bias(text, pulse.start() if pulse else None),
        summary=_summary(text, pulse),
        watch=watch,
        take=sections.get("take"),
        tags=_tags(lines),
        sources=_citations(lines),
        levels=tuple(levels),
        warnings=tuple(warnings),
    )


def _decode(data: str | bytes, max_bytes: int) -> tuple[str, str | None, list[str]]:
    """The text of ``data``, or the reason it is no article, and warnings."""
    size = len(data)
    if size > max_bytes:
        return "", "too_large", [f"is {size:,} bytes; articles are limited to {max_bytes:,}"]
    warnings: list[str] = []
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            if b"\x00" in data:
                return "", "binary", ["is binary data, not text"]
            text = data.decode("cp1252", errors="replace")
            warnings.append("is not UTF-8; read as Windows-1252")
    else:
        text = data
    if not text.strip():
        return "", "empty", ["is empty"]
    controls = sum(1 for char in text if char < " " and char not in "\n\r\t\f")
    if "\x00" in text or controls > _BINARY_SHARE * len(text):
        return "", "binary", ["is binary data, not text"]
    return text, None, warnings


def _sections(lines: list[str]) -> dict[str, str]:
    """The text under each Strykr heading: ``analysis``, ``watch``, ``take``."""
    sections: dict[str, str] = {}
    index = 0
    while index < len(lines):
        heading = _HEADING.match(lines[index])
        index += 1
        if heading is None:
            continue
        name = heading.group(1).lower()
        body: list[str] = [heading.group(2).strip()] if heading.group(2) else []
        while index < len(lines) and not _HEADING.match(lines[index]):
            line = lines[index].strip()
            if _END_MARKER.match(line):
                break
            index += 1
            if not line:
                continue
            if name == "watch" and body and not (_BULLET.match(line) or body[-1].endswith(":")):
                break  # the watch is its first paragraph, with any list that follows it
            body.append(line)
        if body and name not in sections:
            sections[name] = "\n".join(body)
    return sections


def _published(text: str) -> tuple[int | None, str | None]:
    match = _PUBLISHED.search(text)
    if match is None:
        return None, None
    raw = match.group(1).strip()
    value = re.sub(r"\s*(?:UTC|GMT|Z)$", "+00:00", raw, flags=re.IGNORECASE)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None, f"datePublished {quote(raw)} is not a date; write 2026-02-02 03:45 UTC"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * NS_PER_SECOND + delta.microseconds * 1000, None


def _title(lines: list[str]) -> str | None:
    for line in reversed(lines):
        page = _PAGE_TITLE.match(line)
        if page and len(page.group(1).split()) >= 2:
            return page.group(1)
    for line in lines:
        if not line.strip():
            continue
        markdown = _MARKDOWN_TITLE.match(line)
        if markdown and not _HEADING.match(line):
            return markdown.group(1)
        break
    # A page scrape: the first line of real words above the analysis.
    for line in lines:
        text = line.strip()
        if _HEADING.match(text) or _PULSE.search(text):
            break
        if _BOILERPLATE.search(text) or len(text.split()) < _TITLE_MIN_WORDS:
            continue
        return text
    return None


def _url(lines: list[str]) -> str | None:
    for line in lines:
        match = _URL_LINE.match(line)
        if match:
            return match.group(1)
    return None


def _group(match: re.Match[str] | None) -> str | None:
    return match.group(1) if match else None


def _bounded(value: str | None, maximum: int) -> int | None:
    if value is None:
        return None
    number = int(value)
    return number if number <= maximum else None


def _bias(text: str, pulse_at: int | None) -> Bias | None:
    # The bias label stands just before the Pulse ("BearishStrykr Pulse 40/100").
    head = text[: pulse_at if pulse_at is not None else 2_000]
    found = _BIAS.findall(head)
    if not found:
        return None
    label = found[-1].lower()
    if label == "bearish":
        return "bearish"
    if label == "bullish":
        return "bullish"
    return "neutral"


def _summary(text: str, pulse: re.Match[str] | None) -> str | None:
    if pulse is None:
        return None
    line_end = text.find("\n", pulse.end())
    rest = text[pulse.end() : line_end if line_end >= 0 else len(text)]
    threat = _THREAT.search(rest)
    sentence = (rest[: threat.start()] if threat else rest).strip(" .\t") + "."
    return sentence if len(sentence) > 1 else None


def _tags(lines: list[str]) -> tuple[str, ...]:
    tags: list[str] = []
    for line in lines:
        if _TAGS.match(line):
            tags.extend(tag for tag in re.findall(r"#([\w-]+)", line) if tag not in tags)
    return tuple(tags)


def _citations(lines: list[str]) -> tuple[Citation, ...]:
    """The "Sources (N)" list: title, snippet and, where given, the site."""
    start = next((i for i, line in enumerate(lines) if _SOURCES.match(line)), None)
    if start is None:
        return ()
    entries: list[str] = []
    for line in lines[start + 1 :]:
        text = line.strip()
        if _TAGS.match(text) or _HEADING.match(text) or (text and _END_MARKER.match(text)):
            break
        if text:
            entries.append(text)
    citations: list[Citation] = []
    if any(_SITE.match(line) for line in entries):
        # Page scrape: title, snippet, then "site.com·Feb 1" ends each entry.
        chunk: list[str] = []
        for line in entries:
            site = _SITE.match(line)
            if site is None:
                chunk.append(line)
                continue
            if chunk:
                snippet = " ".join(chunk[1:]) or None
                citations.append(Citation(title=chunk[0], snippet=snippet, site=site.group(1)))
            chunk = []
        if chunk:
            citations.append(Citation(title=chunk[0], snippet=" ".join(chunk[1:]) or None))
    else:
        # Plain text: title and snippet lines in turn.
        for index in range(0, len(entries), 2):
            pair = entries[index : index + 2]
            citations.append(Citation(title=pair[0], snippet=pair[1] if len(pair) > 1 else None))
    return tuple(citations)
