"""The delivery decision: what becomes of a delivery, from its row, its subscriber and the send.

A table per decision, row by row as :mod:`service.delivery.decide` documents
it, and properties that hold for every row and every outcome.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.delivery.decide import Cancelled, Dead, Retry, Sent, after_send, before_send
from service.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError
from service.journal.records import OPS_SUBSCRIBER, Delivery, Subscriber
from tests.builders import alert_at

NOW = 1_000_000_000_000
S = 1_000_000_000  # a second, in nanoseconds


def row(
    *, attempts: int = 0, subscriber: str = "reader", target: str = "r@example.com"
) -> Delivery:
    return Delivery(
        id=1,
        alert_id="a1",
        subscriber=subscriber,
        channel="email",
        target=target,
        attempts=attempts,
        alert=alert_at(1).to_dict(),
    )


def doubling(attempt: int) -> float:
    return 5.0 * 2 ** (attempt - 1)


READER = Subscriber(id="reader", email="r@example.com")


@pytest.mark.parametrize(
    ("subscriber", "delivery", "expected"),
    [
        # still there, same address: send
        (READER, row(), None),
        # gone (unsubscribed after the alert was planned)
        (None, row(), Cancelled("the subscriber or this address was removed")),
        # signed up again, not yet confirmed
        (
            Subscriber(id="reader", email="r@example.com", confirmed=False),
            row(),
            Cancelled("the subscriber or this address was removed"),
        ),
        # changed address: the old one gets nothing more
        (
            Subscriber(id="reader", email="new@example.com"),
            row(),
            Cancelled("the subscriber or this address was removed"),
        ),
        # a delivery of no subscriber (MQTT out) always goes
        (None, row(subscriber=OPS_SUBSCRIBER, target="alerts/IWM"), None),
    ],
)
def test_before_send_cancels_only_what_no_one_should_get(
    subscriber: Subscriber | None, delivery: Delivery, expected: Cancelled | None
) -> None:
    assert before_send(delivery, subscriber) == expected


@pytest.mark.parametrize(
    ("attempts", "failure", "expected"),
    [
        (0, None, Sent()),
        (5, None, Sent()),
        (0, RetryableDeliveryError("451 later"), Retry(NOW + 5 * S, 5.0, "451 later")),
        (2, RetryableDeliveryError("HTTP 503"), Retry(NOW + 20 * S, 20.0, "HTTP 503")),
        (7, RetryableDeliveryError("HTTP 503"), Dead("HTTP 503", "out of attempts")),
        (0, PermanentDeliveryError("550 no user"), Dead("550 no user", "permanent failure")),
        (3, PermanentDeliveryError("HTTP 404"), Dead("HTTP 404", "permanent failure")),
        (0, PermanentDeliveryError(""), Dead("PermanentDeliveryError", "permanent failure")),
        (0, KeyError("headline"), Retry(NOW + 5 * S, 5.0, "internal error: 'headline'")),
        (1, KeyError("headline"), Dead("internal error: 'headline'", "internal error")),
    ],
)
def test_after_send_follows_the_table(
    attempts: int, failure: BaseException | None, expected: Sent | Retry | Dead
) -> None:
    decided = after_send(
        row(attempts=attempts), failure, now_ns=NOW, max_attempts=8, backoff=doubling
    )
    assert decided == expected


failures = st.one_of(
    st.none(),
    st.builds(RetryableDeliveryError, st.text(max_size=20)),
    st.builds(PermanentDeliveryError, st.text(max_size=20)),
    st.builds(RuntimeError, st.text(max_size=20)),
)


@given(
    attempts=st.integers(min_value=0, max_value=50),
    max_attempts=st.integers(min_value=1, max_value=20),
    failure=failures,
)
def test_after_send_never_retries_past_max_attempts_nor_a_permanent_failure(
    attempts: int, max_attempts: int, failure: BaseException | None
) -> None:
    decided = after_send(
        row(attempts=attempts), failure, now_ns=NOW, max_attempts=max_attempts, backoff=doubling
    )
    if failure is None:
        assert decided == Sent()
        return
    if isinstance(decided, Retry):
        assert attempts + 1 < max_attempts
        assert not isinstance(failure, PermanentDeliveryError)
        assert decided.at_ns == NOW + int(doubling(attempts + 1) * 1e9) > NOW
    else:
        assert isinstance(decided, Dead)
        assert decided.error  # a dead delivery always says why
        if isinstance(failure, DeliveryError) and failure.detail:
            assert decided.error == failure.detail
