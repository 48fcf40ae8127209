"""The exception tree of strykr-alerts.

Every error a user can cause derives from :class:`StrykrError`; the CLI turns
those into one readable message and an exit status instead of a traceback.
Context lives in attributes as well as in the message, so callers (metrics,
logs, tests) never parse message text::

    StrykrError
    ├── ConfigError          alerts.toml is missing, unreadable or invalid (exit 2)
    ├── TickError            one tick is unusable; the tick is skipped, never fatal
    │   │                    (``reason``: bad_price, future_ts, same_time, price_implausible…)
    │   └── TickOutOfOrderError   older than the last accepted tick of its symbol
    ├── SourceError          a tick source cannot be read at all (missing file, bad columns)
    ├── ArticleError         an article input (file, feed reply) cannot be used; never fatal
    ├── JournalError         the alert journal cannot be opened or written (exit 1)
    ├── UnknownAlertError    a client names an alert (``since``) the journal does not hold
    ├── RequestError         a client's request or message is malformed; answered, never fatal
    │   ├── ApiError         (service.api.responses) an HTTP request refused, with its status
    │   └── ClientMessageError   (service.hub.protocol) a dashboard's websocket message
    ├── ListenError          a server of the service cannot listen (port taken; exit 1)
    ├── TaskFailedError      a task the service cannot run without failed; it stopped (exit 1)
    └── DeliveryError        one attempt to send one alert on one channel failed
        ├── RetryableDeliveryError   worth another attempt later (SMTP 4xx, HTTP 5xx, no link)
        └── PermanentDeliveryError   will never succeed (SMTP 5xx, HTTP 4xx, bad address)
"""

from __future__ import annotations

from collections.abc import Sequence

from service.timestamps import format_timestamp


class StrykrError(Exception):
    """Root of every error the service raises on purpose."""


class ConfigError(StrykrError):
    """The configuration cannot be used; ``problems`` lists every reason found.

    Each problem starts with the path of the offending value, e.g.
    ``rules[2].direction: expected "below" or "above", got "down"``.
    """

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        noun = "problem" if len(self.problems) == 1 else "problems"
        lines = "\n".join(f"  {problem}" for problem in self.problems)
        super().__init__(f"{source}: {len(self.problems)} {noun}:\n{lines}")


class TickError(StrykrError):
    """A tick was rejected.

    ``reason`` is a short, stable snake_case token (used as a metric label and
    to log each kind of rejection once); ``detail`` says what was wrong.
    """

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


class TickOutOfOrderError(TickError):
    """A tick is older than the last accepted tick of its symbol."""

    def __init__(self, symbol: str, ts_ns: int, last_ts_ns: int) -> None:
        self.symbol = symbol
        self.ts_ns = ts_ns
        self.last_ts_ns = last_ts_ns
        super().__init__(
            "out_of_order",
            f"{symbol} tick at {format_timestamp(ts_ns)} is older than the last accepted one "
            f"at {format_timestamp(last_ts_ns)}",
        )


class SourceError(StrykrError):
    """A tick source cannot be used at all (as opposed to one bad tick in it)."""

    def __init__(self, source: str, detail: str) -> None:
        self.source = source
        self.detail = detail
        super().__init__(f"{source}: {detail}")


class ArticleError(StrykrError):
    """An article input cannot be used at all: an unreadable file, a feed reply that is no feed.

    ``reason`` is a short, stable snake_case token (a metric label); ``detail``
    says what was wrong. The article source logs it, counts it and goes on.
    """

    def __init__(self, source: str, reason: str, detail: str) -> None:
        self.source = source
        self.reason = reason
        self.detail = detail
        super().__init__(f"{source}: {detail}")


class JournalError(StrykrError):
    """The alert journal cannot be used: unreadable, not writable, or from a newer version."""

    def __init__(self, path: str, detail: str) -> None:
        self.path = path
        self.detail = detail
        super().__init__(f"journal {path}: {detail}")


class UnknownAlertError(StrykrError):
    """``since`` names an alert the journal does not hold (``alert_id`` says which)."""

    def __init__(self, alert_id: str) -> None:
        self.alert_id = alert_id
        super().__init__(alert_id)


class RequestError(StrykrError):
    """A client sent a request or message the service cannot take; the message says what.

    Raised by the pure validation of API bodies and hub messages; the server
    answers it (HTTP 4xx, an ``error`` frame) and goes on.
    """


class ListenError(StrykrError):
    """A server of the service (the websocket hub, the HTTP server) cannot listen.

    The message says what to set.
    """


class TaskFailedError(StrykrError):
    """A task the service cannot run without (the engine) failed: the service stopped.

    ``task`` names it; the log has its traceback.
    """

    def __init__(self, task: str, detail: str) -> None:
        self.task = task
        self.detail = detail
        super().__init__(f"the {task} task failed ({detail}); the service stopped")


class DeliveryError(StrykrError):
    """One attempt to send an alert failed; ``detail`` says why, never with a secret in it."""

    retryable = False

    def __init__(self, detail: str) -> None:
        self.detail = detail
        super().__init__(detail)


class RetryableDeliveryError(DeliveryError):
    """The attempt may succeed later: the delivery is retried with backoff."""

    retryable = True


class PermanentDeliveryError(DeliveryError):
    """The attempt can never succeed: the delivery is marked dead at once."""
