"""The ``[http]`` table: where the dashboard and the API listen, and who may administer."""

from __future__ import annotations

from dataclasses import dataclass, field

from service.config_table import Table, read_port


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    """The HTTP face: dashboard, subscriptions and read API, metrics and health."""

    host: str = "127.0.0.1"
    port: int = 8080  # 0: a free port (tests)
    # Bearer tokens for listing and deleting subscribers; none: those endpoints refuse all.
    admin_tokens: tuple[str, ...] = field(default=(), repr=False)
    # Per client IP, on the public endpoints that write (subscribe, confirm, unsubscribe).
    rate_limit_per_minute: float = 10.0
    rate_limit_burst: int = 5
    # Behind a reverse proxy every client has the proxy's address: take the client's
    # from the last X-Forwarded-For entry instead (only when the proxy sets it).
    trust_forwarded_for: bool = False
    max_body_bytes: int = 16 * 1024
    # A connection must send a whole request head within this of opening, or of its
    # previous answer; else it is closed: slow header senders and idle keep-alives alike.
    idle_timeout_seconds: float = 10.0
    # A request body must arrive within this (else 408).
    body_timeout_seconds: float = 10.0
    # Open connections per client address (0: no limit); behind a proxy every client
    # shares the proxy's address, so raise it or set 0 and let the proxy bound them.
    max_connections_per_client: int = 32
    # An email sign-up not confirmed within this is forgotten (its link stops working).
    pending_signup_hours: float = 24.0
    # Sign-ups waiting for confirmation per email address: more are refused (429).
    max_pending_per_address: int = 3
    # A subscriber's own rules (the rules API): how many, and on how many symbols.
    max_rules_per_subscriber: int = 50
    max_symbols_per_subscriber: int = 10


def read_http(table: Table) -> HttpConfig | None:
    """``None`` when ``enabled = false``."""
    enabled = table.boolean("enabled", default=True)
    table.reads(HttpConfig)
    config = HttpConfig(
        host=table.string("host"),
        port=read_port(table),
        admin_tokens=table.strings("admin_tokens"),
        rate_limit_per_minute=table.number("rate_limit_per_minute", exclusive_minimum=0.0),
        rate_limit_burst=table.integer("rate_limit_burst", minimum=1),
        trust_forwarded_for=table.boolean("trust_forwarded_for"),
        max_body_bytes=table.integer("max_body_bytes", minimum=1024),
        idle_timeout_seconds=table.number("idle_timeout_seconds", exclusive_minimum=0.0),
        body_timeout_seconds=table.number("body_timeout_seconds", exclusive_minimum=0.0),
        max_connections_per_client=table.integer("max_connections_per_client", minimum=0),
        pending_signup_hours=table.number("pending_signup_hours", exclusive_minimum=0.0),
        max_pending_per_address=table.integer("max_pending_per_address", minimum=1),
        max_rules_per_subscriber=table.integer("max_rules_per_subscriber", minimum=0),
        max_symbols_per_subscriber=table.integer("max_symbols_per_subscriber", minimum=1),
    )
    for index, token in enumerate(config.admin_tokens):
        if len(token) < 16:
            table.problem(
                f"admin_tokens[{index}]",
                "too short to be a secret: use 16 characters or more "
                '(python3 -c "import secrets; print(secrets.token_urlsafe(24))")',
            )
    table.finish()
    return config if enabled else None
