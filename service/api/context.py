"""What the HTTP handlers need of the running service."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from service.api.settings import HttpConfig
from service.config import Config
from service.delivery.destinations import Resolve, system_resolve
from service.delivery.email import EmailSender
from service.delivery.pipeline import DeliveryPipeline
from service.journal.sqlite import SqliteJournal
from service.metrics import ServiceMetrics
from service.pipeline import TickProcessor


@dataclass(kw_only=True)
class ApiContext:
    config: Config
    http: HttpConfig
    journal: SqliteJournal
    delivery: DeliveryPipeline
    processor: TickProcessor
    metrics: ServiceMetrics
    # Why the service is not ready to serve (empty: it is).
    readiness: Callable[[], list[str]]
    # The port dashboards reach the websocket hub on (None: no hub).
    hub_port: Callable[[], int | None]
    email: EmailSender | None = None
    clock_ns: Callable[[], int] = field(default=time.time_ns)
    # Host name -> addresses: how sign-up checks where a push endpoint leads.
    resolve_host: Resolve = field(default=system_resolve)

    def known_symbols(self) -> set[str]:
        """Every symbol watched: by rules (its own and the articles'), or having ticked."""
        symbols = set(self.config.symbols)
        symbols.update(rule.symbol for rule in self.processor.engine.rules)
        if self.processor.tracker is not None:
            symbols.update(self.processor.tracker.store.symbols())
        if self.processor.stale is not None:
            symbols.update(self.processor.stale.symbols())
        return symbols

    @property
    def public_url(self) -> str:
        return self.config.service.public_url
