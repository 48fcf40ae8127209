"""What becomes of a delivery: a pure decision, from the row, its subscriber and the send's result.

Before a send, :func:`before_send` cancels a delivery whose subscriber or
address is gone (unsubscribed after the alert was planned). After it,
:func:`after_send` turns the result into what the worker records:

=====================================  ==========================================
result of the send                     decision
=====================================  ==========================================
none (it went through)                 :class:`Sent`
retryable failure, attempts left       :class:`Retry` at now + the backoff delay
retryable failure, none left           :class:`Dead` ("out of attempts")
permanent failure                      :class:`Dead` ("permanent failure")
a bug in the sender, first time        :class:`Retry` (it may have been passing)
a bug in the sender, again             :class:`Dead` ("internal error")
=====================================  ==========================================

The worker only fetches, sends and applies; the clock and the backoff are inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from service.backoff import retry_delay
from service.delivery.settings import DeliveryConfig
from service.errors import DeliveryError
from service.journal.records import OPS_SUBSCRIBER, Delivery, Subscriber
from service.text import first_line

NS_PER_S = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Sent:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    at_ns: int
    delay_s: float
    error: str


@dataclass(frozen=True, slots=True)
class Dead:
    error: str
    reason: str  # "permanent failure", "out of attempts", "internal error"


@dataclass(frozen=True, slots=True)
class Cancelled:
    reason: str


Decision = Sent | Retry | Dead | Cancelled
# The wait before retry number n (1 for the first), in seconds.
Backoff = Callable[[int], float]


def backoff_of(config: DeliveryConfig) -> Backoff:
    """The retry delays of ``config``: doubling from the initial delay to the cap, jittered."""
    return lambda attempt: retry_delay(
        attempt, initial=config.retry_initial_seconds, maximum=config.retry_max_seconds
    )


def before_send(row: Delivery, subscriber: Subscriber | None) -> Cancelled | None:
    """A delivery no one should get any more, cancelled; ``None``: send it.

    Deliveries of no subscriber (MQTT out) always go.
    """
    if row.subscriber == OPS_SUBSCRIBER:
        return None
    if (
        subscriber is None
        or not subscriber.confirmed
        or (row.channel, row.target) not in subscriber.targets()
    ):
        return Cancelled("the subscriber or this address was removed")
    return None


def after_send(
    row: Delivery,
    failure: BaseException | None,
    *,
    now_ns: int,
    max_attempts: int,
    backoff: Backoff,
) -> Sent | Retry | Dead:
    """What to record of an attempt at ``row`` that ended with ``failure`` (``None``: sent)."""
    if failure is None:
        return Sent()
    attempt = row.attempts + 1
    if isinstance(failure, DeliveryError):
        error = failure.detail or type(failure).__name__  # a dead delivery always says why
        retryable, reason = failure.retryable, "permanent failure"
    else:
        error = f"internal error: {first_line(failure, 200)}"
        retryable, reason = attempt < 2, "internal error"
    if not retryable:
        return Dead(error, reason)
    if attempt >= max_attempts:
        return Dead(error, "out of attempts")
    delay_s = backoff(attempt)
    return Retry(now_ns + int(delay_s * NS_PER_S), delay_s, error)
