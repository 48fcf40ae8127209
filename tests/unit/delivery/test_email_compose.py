"""The alert mail as composed, before any server sees it."""

from __future__ import annotations

import email
import email.policy

from hypothesis import given
from hypothesis import strategies as st

from service.delivery.email import compose_alert_email, message_id
from service.delivery.push import push_text

ALERT = {
    "id": "4bd18ae19e72e938236d",
    "rule": "iwm-below-255",
    "symbol": "IWM",
    "kind": "break_below",
    "level": 255.0,
    "price": 254.6,
    "at": "2026-02-02T14:30:14.000Z",
    "headline": "IWM broke below 255.00 at 254.60",
    "article": {"title": "Small caps", "url": "https://strykr.example/a", "pulse": 40},
}


def compose(alert: dict[str, object], sender: str = "alerts@strykr.test") -> bytes:
    message = compose_alert_email(
        alert,
        subscriber_id="reader",
        recipient="reader@example.com",
        sender=sender,
        unsubscribe_url="https://alerts.example/api/v1/unsubscribe?token=T",
        unsubscribe_token="T",
    )
    return message.as_bytes(policy=email.policy.SMTP)


def test_message_id_is_the_same_for_an_alert_and_subscriber_and_differs_otherwise() -> None:
    one = message_id("a1", "reader", "alerts@strykr.test")
    assert one == message_id("a1", "reader", "alerts@strykr.test")
    assert one != message_id("a1", "other", "alerts@strykr.test")
    assert one != message_id("a2", "reader", "alerts@strykr.test")
    assert one.startswith("<a1.")
    assert one.endswith("@strykr.test>")


@given(
    st.text(max_size=200),
    st.text(max_size=200),
)
def test_no_text_in_an_alert_can_add_a_header(title: str, headline: str) -> None:
    raw = compose({**ALERT, "headline": headline, "article": {"title": title}})
    head = raw.split(b"\r\n\r\n", 1)[0]
    names = [
        line.split(b":", 1)[0].lower()
        for line in head.split(b"\r\n")
        if line and not line.startswith((b" ", b"\t"))
    ]
    assert sorted(names) == sorted(
        [
            b"from",
            b"to",
            b"subject",
            b"date",
            b"message-id",
            b"list-unsubscribe",
            b"list-unsubscribe-post",
            b"auto-submitted",
            b"x-strykr-alert-id",
            b"content-type",
            b"mime-version",
        ]
    )
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert parsed["Bcc"] is None
    assert "\n" not in str(parsed["Subject"])


def test_push_text_is_short_one_line_per_fact() -> None:
    title, body = push_text({**ALERT, "article": {"title": "A\r\nB" * 100, "url": "https://x"}})
    assert title == "IWM broke below 255.00 at 254.60"
    lines = body.splitlines()
    assert lines[0] == "IWM broke below 255.00 at 254.60 (14:30:14 UTC)"
    assert len(lines) == 3
    assert len(body) <= 400
    assert "\r" not in body
