"""The alert mail as composed, before any server sees it."""

from __future__ import annotations

import email
import email.policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.delivery.email import compose_alert_email, envelope, message_id
from service.delivery.mail_address import EmailAddress
from service.delivery.push import push_text
from service.errors import PermanentDeliveryError

READER = EmailAddress("reader", "example.com")
# RFC 2047 encoded words that decode to line breaks and new headers.
ENCODED_WORDS = (
    "=?UTF-8?Q?=0ABcc:_victim@example.org?=",
    "=?UTF-8?Q?=0D=0AReply-To:_a=40attacker.test=0A?=",
    "=?utf-8?b?DQpCY2M6IHZpY3RpbUBleGFtcGxlLm9yZw==?=",
    "=?ISO-8859-1?Q?=0A=0A<body>?=",
)
header_texts = st.text(max_size=200) | st.builds(
    "{}{}{}".format, st.text(max_size=20), st.sampled_from(ENCODED_WORDS), st.text(max_size=20)
)

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
        recipient=READER,
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


@given(header_texts, header_texts)
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
    assert [str(a) for a in parsed["To"].addresses] == ["reader@example.com"]


@pytest.mark.parametrize("word", ENCODED_WORDS)
def test_an_encoded_word_in_a_title_stays_text_in_the_subject(word: str) -> None:
    raw = compose({**ALERT, "headline": f"IWM {word} broke"})
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert set(parsed.keys()) == {
        "From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe",
        "List-Unsubscribe-Post", "Auto-Submitted", "X-Strykr-Alert-Id", "Content-Type",
        "MIME-Version",
    }  # fmt: skip
    assert str(parsed["Subject"]).startswith("IWM = ?")


def test_envelope_passes_the_composed_mail_to_its_recipient() -> None:
    message = compose_alert_email(
        ALERT,
        subscriber_id="reader",
        recipient=READER,
        sender="alerts@strykr.test",
        unsubscribe_url="https://alerts.example/u",
        unsubscribe_token="T",
    )
    assert envelope(message, READER) == message.as_bytes(policy=email.policy.SMTP)


@pytest.mark.parametrize(
    ("header", "value", "refusal"),
    [
        ("Bcc", "victim@example.org", r"headers it was not composed with \(bcc\)"),
        ("Cc", "victim@example.org", r"headers it was not composed with \(cc\)"),
        ("Resent-To", "victim@example.org", r"not composed with \(resent-to\)"),
    ],
)
def test_envelope_refuses_a_mail_whose_headers_name_anyone_else(
    header: str, value: str, refusal: str
) -> None:
    message = compose_alert_email(
        ALERT,
        subscriber_id="reader",
        recipient=READER,
        sender="alerts@strykr.test",
        unsubscribe_url="https://alerts.example/u",
        unsubscribe_token="T",
    )
    message[header] = value
    with pytest.raises(PermanentDeliveryError, match=refusal):
        envelope(message, READER)


def test_envelope_refuses_a_mail_for_another_recipient() -> None:
    message = compose_alert_email(
        ALERT,
        subscriber_id="reader",
        recipient=READER,
        sender="alerts@strykr.test",
        unsubscribe_url="https://alerts.example/u",
        unsubscribe_token="T",
    )
    with pytest.raises(PermanentDeliveryError, match="recipients"):
        envelope(message, EmailAddress("someone", "example.org"))


def test_push_text_is_short_one_line_per_fact() -> None:
    title, body = push_text({**ALERT, "article": {"title": "A\r\nB" * 100, "url": "https://x"}})
    assert title == "IWM broke below 255.00 at 254.60"
    lines = body.splitlines()
    assert lines[0] == "IWM broke below 255.00 at 254.60 (14:30:14 UTC)"
    assert len(lines) == 3
    assert len(body) <= 400
    assert "\r" not in body
