"""Pure decisions of delivery: who gets what, what is retried, signed links."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.delivery.outcomes import http_outcome, smtp_outcome
from service.delivery.subscribers import plan_deliveries
from service.delivery.tokens import CONFIRM, MANAGE, UNSUBSCRIBE, sign_token, verify_token
from service.journal.records import OPS_SUBSCRIBER, Planned, Subscriber
from service.models import AlertEvent

ALERT = AlertEvent(
    id="a1", rule="r", symbol="IWM", kind="break_below", level=255.0, price=254.6, ts_ns=0
)
EVERY_CHANNEL = ("email", "push", "webpush", "webhook", "mqtt")


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (250, "sent"),
        (421, "retry"),
        (450, "retry"),
        (451, "retry"),
        (452, "retry"),
        (500, "dead"),
        (550, "dead"),
        (554, "dead"),
    ],
)
def test_smtp_outcome_retries_4xx_and_gives_up_on_5xx(code: int, outcome: str) -> None:
    assert smtp_outcome(code) == outcome


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "sent"),
        (204, "sent"),
        (301, "dead"),
        (400, "dead"),
        (401, "dead"),
        (404, "dead"),
        (410, "dead"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_http_outcome_retries_only_what_may_pass_later(status: int, outcome: str) -> None:
    assert http_outcome(status) == outcome


def test_plan_gives_each_subscriber_its_channels_for_its_symbols_and_kinds() -> None:
    subscribers = [
        Subscriber(id="all", email="a@example.com", push=("ntfy://x",), webhook="http://h"),
        Subscriber(id="spx", email="s@example.com", symbols=("SPX",)),
        Subscriber(id="above", email="b@example.com", kinds=("break_above",)),
        Subscriber(id="unconfirmed", email="u@example.com", confirmed=False),
    ]
    planned = plan_deliveries(ALERT, subscribers, EVERY_CHANNEL, mqtt_topic="alerts/IWM")
    assert planned == [
        Planned("all", "email", "a@example.com"),
        Planned("all", "push", "ntfy://x"),
        Planned("all", "webhook", "http://h"),
        Planned(OPS_SUBSCRIBER, "mqtt", "alerts/IWM"),
    ]


def test_plan_leaves_out_channels_that_are_not_configured() -> None:
    subscriber = Subscriber(id="all", email="a@example.com", webhook="http://h")
    assert plan_deliveries(ALERT, [subscriber], ("webhook",), mqtt_topic="alerts/IWM") == [
        Planned("all", "webhook", "http://h")
    ]


def test_plan_sends_a_subscribers_own_alert_to_them_alone_and_not_to_the_ops_topic() -> None:
    subscribers = [
        Subscriber(id="everyone", email="e@example.com"),
        # The owner chose other symbols and kinds: they set the rule, so they get it.
        Subscriber(id="owner", email="o@example.com", webhook="http://o", symbols=("SPX",),
                   kinds=("break_above",)),
    ]  # fmt: skip
    own = dataclasses.replace(ALERT, owner="owner")
    planned = plan_deliveries(own, subscribers, EVERY_CHANNEL, mqtt_topic="alerts/IWM")
    assert planned == [
        Planned("owner", "email", "o@example.com"),
        Planned("owner", "webhook", "http://o"),
    ]
    # An owner who is gone (unsubscribed) or not confirmed gets nothing; nor does anyone else.
    assert plan_deliveries(own, subscribers[:1], EVERY_CHANNEL, mqtt_topic="alerts/IWM") == []
    unconfirmed = [dataclasses.replace(subscribers[1], confirmed=False)]
    assert plan_deliveries(own, unconfirmed, EVERY_CHANNEL) == []


symbols = st.sampled_from(["IWM", "SPX", "RUT", "*"])


@given(
    st.lists(
        st.builds(
            Subscriber,
            id=st.text("abc", min_size=1, max_size=3),
            email=st.none() | st.just("x@example.com"),
            webhook=st.none() | st.just("http://h"),
            symbols=st.lists(symbols, min_size=1, max_size=3).map(tuple),
            kinds=st.lists(st.sampled_from(["break_below", "break_above"]), max_size=2).map(tuple),
            confirmed=st.booleans(),
        ),
        max_size=8,
        unique_by=lambda subscriber: subscriber.id,  # ids are unique, as the config checks
    ),
    st.none() | st.text("abc", min_size=1, max_size=3),
)
def test_plan_never_repeats_a_delivery_and_only_reaches_those_who_want_it(
    subscribers: list[Subscriber], owner: str | None
) -> None:
    alert = dataclasses.replace(ALERT, owner=owner)
    planned = plan_deliveries(alert, subscribers, EVERY_CHANNEL, mqtt_topic="t")
    assert len(planned) == len(set(planned))
    if owner is None:
        wanting = {s.id for s in subscribers if s.wants(alert)} | {OPS_SUBSCRIBER}
    else:  # a subscriber's own alert: that subscriber, confirmed, and nobody else
        wanting = {s.id for s in subscribers if s.id == owner and s.confirmed}
    assert {p.subscriber for p in planned} <= wanting
    for subscriber in subscribers:
        if subscriber.id in wanting and subscriber.email:
            assert Planned(subscriber.id, "email", "x@example.com") in planned


@given(st.binary(min_size=16, max_size=32), st.text(min_size=1, max_size=64))
def test_token_verifies_for_its_purpose_only(secret: bytes, subject: str) -> None:
    token = sign_token(secret, UNSUBSCRIBE, subject)
    assert verify_token(secret, UNSUBSCRIBE, token) == subject
    assert verify_token(secret, CONFIRM, token) is None
    assert verify_token(secret + b"x", UNSUBSCRIBE, token) is None


@given(st.binary(min_size=16, max_size=32), st.text(min_size=1, max_size=64))
def test_a_manage_token_is_worthless_for_unsubscribing_and_the_reverse(
    secret: bytes, subject: str
) -> None:
    manage = sign_token(secret, MANAGE, subject)
    assert verify_token(secret, MANAGE, manage) == subject
    assert verify_token(secret, UNSUBSCRIBE, manage) is None
    assert verify_token(secret, MANAGE, sign_token(secret, UNSUBSCRIBE, subject)) is None


@given(st.text(max_size=80))
def test_any_forged_token_is_refused_without_error(token: str) -> None:
    assert verify_token(b"k" * 32, UNSUBSCRIBE, token) is None
