"""What the HTTP handlers need of the running service: roles and read models, nothing more."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from service.api.settings import HttpConfig
from service.delivery.audience import Audience
from service.delivery.destinations import Resolve, system_resolve
from service.delivery.links import Links
from service.delivery.settings import PushConfig
from service.journal.records import Subscriber
from service.journal.roles import AlertLog, RuleStore, SubscriberStore
from service.journal.stored_rules import rules_of
from service.models import Rule
from service.processing.history import ChartHistory
from service.processing.live_view import LiveView


class Confirmations(Protocol):
    """Sends the double opt-in mail (the email channel does); raises ``DeliveryError``."""

    async def send_confirmation(
        self,
        subscriber: Subscriber,
        *,
        confirm_url: str,
        service_url: str,
        manage_url: str | None = None,
    ) -> None: ...


@dataclass(kw_only=True)
class ApiContext:
    http: HttpConfig
    push: PushConfig
    alerts: AlertLog
    subscribers: SubscriberStore
    # Who gets alerts now: reloaded after every change the API makes.
    audience: Audience
    links: Links
    view: LiveView
    # The Prometheus exposition of the service's metrics.
    metrics: Callable[[], bytes]
    # Why the service is not ready to serve (empty: it is).
    readiness: Callable[[], list[str]]
    # The port dashboards reach the websocket hub on (None: no hub).
    hub_port: Callable[[], int | None]
    # None: this service sends no email.
    confirmations: Confirmations | None = None
    clock_ns: Callable[[], int] = field(default=time.time_ns)
    # Host name -> addresses: how sign-up checks where a push endpoint leads.
    resolve_host: Resolve = field(default=system_resolve)
    # Pause (True) or resume (False) the rule of this id; False when there is none.
    pause_rule: Callable[[str, bool], bool] | None = None
    # The rules set through the API: where they are kept, and how the engine gets them
    # (None: this process runs no engine, and the rules API answers 503).
    rules: RuleStore | None = None
    apply_rules: Callable[[Sequence[Rule]], None] | None = None
    # Recent bars per symbol, for charts opened mid-session (None: none are kept here).
    history: ChartHistory | None = None

    def watch_stored_rules(self) -> None:
        """Give the engine the rules the store holds now (after any change to them)."""
        if self.rules is None or self.apply_rules is None:
            return
        rules, _unreadable = rules_of(self.rules.stored_rules())
        self.apply_rules(rules)

    @property
    def public_url(self) -> str:
        return self.links.public_url
