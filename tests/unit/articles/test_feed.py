"""Feed replies → feed items: JSON lists, JSON Feed, RSS and Atom, and replies that are no feed."""

from __future__ import annotations

import json

import pytest

from service.articles.feed import parse_feed
from service.errors import ArticleError
from service.timestamps import parse_timestamp

SOURCE = "http://127.0.0.1/feed"
TEXT = "Strykr Watch\nIWM support at $255."


def test_json_list_of_articles() -> None:
    body = json.dumps(
        [
            {
                "title": "IWM stuck",
                "url": "https://strykr.example/iwm",
                "published": "2026-02-02T03:45:00Z",
                "text": TEXT,
            },
            {"id": "b-2", "body": "<p>Strykr Watch</p><p>SPX resistance at 4,900.</p>"},
        ]
    ).encode()
    items, problems = parse_feed(body, content_type="application/json", source=SOURCE)
    assert problems == []
    first, second = items
    assert (first.key, first.title, first.text) == ("https://strykr.example/iwm", "IWM stuck", TEXT)
    assert first.published_ns == parse_timestamp("2026-02-02T03:45:00Z")
    assert second.key == f"{SOURCE}#b-2"
    assert second.text == "Strykr Watch\n\nSPX resistance at 4,900."


def test_json_feed_items_and_bad_items_are_problems_not_failures() -> None:
    body = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "items": [
                {"id": "1", "content_text": TEXT, "date_published": "2026-02-02T03:45:00Z"},
                "not an object",
                {"id": "3", "title": "no text"},
                {"id": "4", "text": TEXT, "published": "yesterday"},
                {"id": "5", "text": 42},
            ],
        }
    ).encode()
    items, problems = parse_feed(body, content_type=None, source=SOURCE)
    assert [item.key for item in items] == [f"{SOURCE}#1"]
    assert [problem.split(":")[0] for problem in problems] == [
        "items[1]",
        "items[2]",
        "items[3]",
        "items[4]",
    ]


RSS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Strykr</title>
<item><title>IWM stuck</title><link>https://strykr.example/iwm</link>
<guid>iwm-1</guid><pubDate>Mon, 02 Feb 2026 03:45:00 GMT</pubDate>
<description>&lt;p&gt;Strykr Watch&lt;/p&gt;&lt;p&gt;IWM support at $255.&lt;/p&gt;</description>
</item></channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Strykr</title><id>urn:strykr</id>
<updated>2026-02-02T03:45:00Z</updated>
<entry><title>SPX range</title><id>urn:spx-1</id><updated>2026-02-01T18:15:00Z</updated>
<content type="text">Strykr Watch
SPX resistance at 4,900.</content></entry></feed>"""


def test_rss_items_with_html_descriptions() -> None:
    (item,), problems = parse_feed(RSS, content_type="application/rss+xml", source=SOURCE)
    assert problems == []
    assert (item.key, item.title) == ("https://strykr.example/iwm", "IWM stuck")
    assert item.published_ns == parse_timestamp("2026-02-02T03:45:00Z")
    assert item.text == "Strykr Watch\n\nIWM support at $255."


def test_atom_entries() -> None:
    (item,), _ = parse_feed(ATOM, content_type="application/atom+xml", source=SOURCE)
    assert (item.key, item.title) == ("urn:spx-1", "SPX range")
    assert item.published_ns == parse_timestamp("2026-02-01T18:15:00Z")
    assert "SPX resistance at 4,900." in item.text


@pytest.mark.parametrize(
    "body",
    [b"{not json", b'{"items": 3}', b"42", b"<html><body>Not found</body></html>", b"\x00\x01"],
)
def test_a_reply_that_is_no_feed_is_an_article_error(body: bytes) -> None:
    with pytest.raises(ArticleError) as raised:
        parse_feed(body, content_type=None, source=SOURCE)
    assert raised.value.reason == "invalid_feed"
    assert raised.value.source == SOURCE
