"""Which email addresses the service accepts: plain addr-specs, nothing a parser can unfold."""

from __future__ import annotations

import email.policy
from email.headerregistry import Address
from email.message import EmailMessage

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.delivery.mail_address import EmailAddress, parse_email_address


@pytest.mark.parametrize(
    "text",
    [
        "reader@example.com",
        "first.last+alerts@mail.example.co.uk",
        "o'neil@example.org",
        "x@sub-domain.example.io",
        "a!#$%&*/^_`{|}~?=-@example.com",
    ],
)
def test_plain_addresses_are_accepted_as_they_are(text: str) -> None:
    assert str(parse_email_address(text)) == text


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("=?UTF-8?Q?=0AReply-To:_a=40attacker.test=0A?=Bcc:victim@example.org", "plain"),
        ("=?UTF-8?Q?=0ABcc=3Avictim=40x.org?=@example.org", "encoded word"),
        ("a=?utf-8?b?DQpCY2M6IHZAeC5vcmc=?=@example.org", "plain"),
        ("=?us-ascii?q?victim?=@example.org", "encoded word"),
        ("Reader <reader@example.com>", "plain"),
        ('"quoted name"@example.com', "plain"),
        ("reader@example.com, victim@example.org", "plain"),
        ("reader@[127.0.0.1]", "no mail domain"),
        ("reader@localhost", "no mail domain"),
        ("rëader@example.com", "plain"),
        ("reader@exämple.com", "no mail domain"),
        ("reader.@example.com", "plain"),
        ("re..ader@example.com", "plain"),
        ("reader@-example.com", "no mail domain"),
        ("reader\r\nBcc: v@x.org@example.com", "plain"),
        ("not an address", "expected name@example.com"),
        ("@example.com", "expected name@example.com"),
        ("a" * 65 + "@example.com", "plain"),
        ("a@" + "b" * 250 + ".com", "longer than"),
    ],
)
def test_anything_but_a_plain_address_is_refused_saying_why(text: str, why: str) -> None:
    with pytest.raises(ValueError, match="email address") as caught:
        parse_email_address(text)
    assert why in str(caught.value)


@given(
    st.text(max_size=80) | st.from_regex(r"[a-z=?.+]{1,12}@[a-z]{1,8}\.[a-z]{2,4}", fullmatch=True)
)
def test_an_accepted_address_is_exactly_the_one_recipient_of_a_mail(text: str) -> None:
    try:
        address = parse_email_address(text)
    except ValueError:
        return
    assert str(address) == text
    message = EmailMessage()
    message["To"] = Address(username=address.local, domain=address.domain)
    raw = message.as_bytes(policy=email.policy.SMTP)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert [(a.username, a.domain) for a in parsed["To"].addresses] == [
        (address.local, address.domain)
    ]
    assert list(parsed.keys()) == ["To"]


def test_email_address_parts() -> None:
    assert parse_email_address("desk@example.com") == EmailAddress("desk", "example.com")
