"""Which failures are worth retrying: pure functions of the reply, one per protocol."""

from __future__ import annotations

from typing import Literal

from service.errors import DeliveryError, PermanentDeliveryError, RetryableDeliveryError

Outcome = Literal["sent", "retry", "dead"]


def smtp_outcome(code: int) -> Outcome:
    """An SMTP reply code: 2xx sent, 4xx (try later) retry, anything else dead."""
    if 200 <= code < 300:
        return "sent"
    if 400 <= code < 500:
        return "retry"
    return "dead"


def http_outcome(status: int) -> Outcome:
    """An HTTP status: 2xx sent; 408, 425, 429 and 5xx retry; other codes dead."""
    if 200 <= status < 300:
        return "sent"
    if status in (408, 425, 429) or 500 <= status < 600:
        return "retry"
    return "dead"


def delivery_error(outcome: Outcome, detail: str) -> DeliveryError:
    """The error to raise for a failed ``outcome``."""
    if outcome == "retry":
        return RetryableDeliveryError(detail)
    return PermanentDeliveryError(detail)
