"""The journal's roles in SQL, once, for every database that speaks it (SQLite, PostgreSQL).

A subclass gives the connection and its transactions (:meth:`SqlJournal._execute`,
:meth:`~SqlJournal._executemany`, :meth:`~SqlJournal._transaction`); the
queries are written once, with ``?`` placeholders and the SQL the two
databases share (``INSERT … ON CONFLICT``), and each subclass runs them its
way. The schemas stay each database's own.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, cast

from service.errors import UnknownAlertError
from service.journal.records import (
    Channel,
    Checkpoint,
    Delivery,
    DeliveryRecord,
    Planned,
    Status,
    StoredRule,
    Subscriber,
    WebPushSubscription,
)
from service.models import AlertEvent, AlertPayload, Viewer

# Errors are stored for people to read; a reply can be long.
MAX_ERROR_CHARS = 500


class SqlJournal:
    """Every journal role as SQL; a subclass connects and runs it (one writer at a time)."""

    path: str

    def _execute(self, query: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; its cursor (rows to iterate, ``fetchone``, ``rowcount``)."""
        raise NotImplementedError

    def _executemany(self, query: str, rows: Iterable[Sequence[Any]]) -> None:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[None]:
        """Everything inside commits together, or not at all (as a :class:`JournalError`)."""
        raise NotImplementedError

    def record_alerts(
        self,
        alerts: Sequence[tuple[AlertEvent, Sequence[Planned]]],
        *,
        now_ns: int,
        checkpoint: Checkpoint | None = None,
    ) -> list[AlertEvent]:
        """Store each alert with its deliveries, and ``checkpoint``, in one transaction.

        Returns the new alerts. An alert already in the journal (same id) is
        skipped with its deliveries: it was stored, and is being delivered, already.
        """
        new: list[AlertEvent] = []
        with self._transaction():
            self._check_fence()
            if checkpoint is not None:
                scope = checkpoint.scope
                if checkpoint.reset_log:
                    self._execute("DELETE FROM tick_log WHERE scope = ?", (scope,))
                self._executemany(
                    "INSERT INTO tick_log (ticks, scope) VALUES (?, ?)",
                    ((entry, scope) for entry in checkpoint.ticks),
                )
                self._executemany(
                    "INSERT INTO engine_state (symbol, state) VALUES (?, ?) "
                    "ON CONFLICT (symbol) DO UPDATE SET state = excluded.state",
                    checkpoint.symbols.items(),
                )
                self._executemany(
                    "INSERT INTO positions (source, position) VALUES (?, ?) "
                    "ON CONFLICT (source) DO UPDATE SET position = excluded.position",
                    (
                        (_scoped(scope, name), position)
                        for name, position in checkpoint.positions.items()
                    ),
                )
            if alerts:
                self._before_alerts()
            for alert, planned in alerts:
                cursor = self._execute(
                    "INSERT INTO alerts "
                    "(id, symbol, kind, ts_ns, recorded_ns, body, owner) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (
                        alert.id,
                        alert.symbol,
                        alert.kind,
                        alert.ts_ns,
                        now_ns,
                        json.dumps(alert.to_dict(), separators=(",", ":")),
                        alert.owner,
                    ),
                )
                if cursor.rowcount != 1:
                    continue
                new.append(alert)
                self._executemany(
                    "INSERT INTO deliveries "
                    "(alert_id, subscriber, channel, target, next_attempt_ns, updated_ns) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [
                        (alert.id, p.subscriber, p.channel, p.target, now_ns, now_ns)
                        for p in planned
                    ],
                )
            if new:
                self._announce_alerts()
        return new

    def _check_fence(self) -> None:
        """In a transaction that stores alerts or state: raise if this writer may no longer."""

    def _before_alerts(self) -> None:
        """Before a transaction stores alerts: one writer at a time, where there are several."""

    def _announce_alerts(self) -> None:
        """In the transaction that stored new alerts: tell whoever listens, at its commit."""

    def alerts_since_seq(self, seq: int, *, limit: int) -> list[tuple[int, AlertPayload]]:
        """Up to ``limit`` alerts stored after position ``seq`` (0: all), oldest first.

        Each comes with its position, which grows in the order alerts were
        committed, so the last one read is where the next read starts.
        """
        rows = self._execute(
            "SELECT seq, body FROM alerts WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)
        )
        return [(position, _payload(body)) for position, body in rows]

    def last_seq(self) -> int:
        """The position of the newest alert (0: none yet)."""
        row = self._execute("SELECT MAX(seq) FROM alerts").fetchone()
        return int(row[0]) if row is not None and row[0] is not None else 0

    def load_checkpoint(self, scope: str = "") -> Checkpoint:
        symbols = dict(self._execute("SELECT symbol, state FROM engine_state"))
        prefix = _scoped(scope, "")
        positions = {
            name[len(prefix) :]: position
            for name, position in self._execute("SELECT source, position FROM positions")
            if name.startswith(prefix) and (scope or "|" not in name)
        }
        ticks = tuple(
            entry
            for (entry,) in self._execute(
                "SELECT ticks FROM tick_log WHERE scope = ? ORDER BY seq", (scope,)
            )
        )
        return Checkpoint(symbols=symbols, positions=positions, ticks=ticks, scope=scope)

    def alerts_after(
        self,
        since: str | None,
        symbols: Iterable[str] | None,
        *,
        limit: int | None = None,
        viewer: Viewer | None = None,
    ) -> list[AlertPayload]:
        """Alerts recorded after the alert ``since`` (all, when ``None``), oldest first.

        ``symbols`` ``None`` means every symbol; ``viewer`` ``None``, every owner's
        alerts. Raises :class:`UnknownAlertError` when ``since`` is not in the journal.
        """
        after = 0
        if since is not None:
            row = self._execute("SELECT seq FROM alerts WHERE id = ?", (since,)).fetchone()
            if row is None:
                raise UnknownAlertError(since)
            after = row[0]
        return self._alerts("seq > ?", [after], symbols=symbols, viewer=viewer, limit=limit)

    def alerts_from(
        self,
        ts_ns: int,
        *,
        symbol: str | None = None,
        limit: int = 100,
        viewer: Viewer | None = None,
    ) -> list[AlertPayload]:
        """Alerts that fired at or after ``ts_ns`` (of ``symbol``), oldest recorded first."""
        symbols = None if symbol is None else [symbol]
        return self._alerts("ts_ns >= ?", [ts_ns], symbols=symbols, viewer=viewer, limit=limit)

    def recent_alerts(
        self, *, symbol: str | None = None, limit: int = 100, viewer: Viewer | None = None
    ) -> list[AlertPayload]:
        """The latest ``limit`` alerts (of ``symbol``), oldest first."""
        symbols = None if symbol is None else [symbol]
        return self._alerts("1 = 1", [], symbols=symbols, viewer=viewer, limit=limit, newest=True)

    def _alerts(
        self,
        where: str,
        params: list[object],
        *,
        symbols: Iterable[str] | None,
        viewer: Viewer | None,
        limit: int | None,
        newest: bool = False,
    ) -> list[AlertPayload]:
        """The alerts ``where`` holds for, of ``symbols`` (``None``: all), those ``viewer`` may
        see, oldest first: the first ``limit`` of them, or with ``newest`` the last."""
        query = f"SELECT body FROM alerts WHERE {where}"  # noqa: S608 (a literal of this class)
        if symbols is not None:
            wanted = sorted(set(symbols))
            if not wanted:
                return []
            query += f" AND symbol IN ({', '.join('?' * len(wanted))})"
            params = [*params, *wanted]
        query, params = _visible(query, params, viewer)
        query += " ORDER BY seq DESC" if newest else " ORDER BY seq"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        rows = self._execute(query, params).fetchall()
        if newest:
            rows.reverse()
        return [_payload(body) for (body,) in rows]

    # Rows a worker may take now: due, and not claimed by a worker whose lease still runs.
    _DUE = (
        "SELECT d.id, d.alert_id, d.subscriber, d.channel, d.target, d.attempts, a.body "
        "FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
        "WHERE d.channel = ? AND d.status IN ('pending', 'retry') AND d.next_attempt_ns <= ? "
        "AND (d.claimed_until IS NULL OR d.claimed_until <= ?) "
        "ORDER BY d.next_attempt_ns, d.id LIMIT ?"
    )
    # Appended to the claim's select: how this database keeps two claims apart.
    _CLAIM_LOCK = ""

    def due(self, channel: Channel, *, now_ns: int, limit: int) -> list[Delivery]:
        """Deliveries of ``channel`` to try now, oldest first (none that a worker holds)."""
        rows = self._execute(self._DUE, (channel, now_ns, now_ns, limit)).fetchall()
        return [_delivery(row) for row in rows]

    def claim(self, channel: Channel, *, now_ns: int, limit: int, lease_ns: int) -> list[Delivery]:
        """Deliveries of ``channel`` due now, taken for ``lease_ns``, oldest first.

        No other worker gets them until the lease ends or they are marked; a
        worker that dies with them lets them fall due again when it ends.
        """
        params = (channel, now_ns, now_ns, limit)
        if self._execute(self._DUE, params).fetchone() is None:
            return []  # nothing due: no write (a journal refusing writes still idles)
        with self._transaction():
            rows = self._execute(self._DUE + self._CLAIM_LOCK, params).fetchall()
            if rows:
                self._executemany(
                    "UPDATE deliveries SET claimed_until = ? WHERE id = ?",
                    [(now_ns + lease_ns, row[0]) for row in rows],
                )
        return [_delivery(row) for row in rows]

    def release_claims(self) -> int:
        """Every claim ended now (one process starting over: none of its sends is in flight)."""
        with self._transaction():
            cursor = self._execute(
                "UPDATE deliveries SET claimed_until = NULL WHERE claimed_until IS NOT NULL"
            )
        return int(cursor.rowcount)

    def next_due_ns(self, channel: Channel) -> int | None:
        """When the next delivery of ``channel`` is due (``None``: none is waiting)."""
        row = self._execute(
            "SELECT MIN(CASE WHEN claimed_until > next_attempt_ns THEN claimed_until "
            "ELSE next_attempt_ns END) FROM deliveries "
            "WHERE channel = ? AND status IN ('pending', 'retry')",
            (channel,),
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def mark_sent(self, delivery_id: int, *, now_ns: int) -> None:
        self._update(delivery_id, "sent", None, now_ns)

    def mark_retry(self, delivery_id: int, error: str, *, next_ns: int, now_ns: int) -> None:
        self._update(delivery_id, "retry", error, now_ns, next_ns=next_ns)

    def mark_dead(self, delivery_id: int, error: str, *, now_ns: int) -> None:
        self._update(delivery_id, "dead", error, now_ns)

    def mark_cancelled(self, delivery_id: int, reason: str, *, now_ns: int) -> None:
        self._update(delivery_id, "cancelled", reason, now_ns, attempted=False)

    def _update(
        self,
        delivery_id: int,
        status: Status,
        error: str | None,
        now_ns: int,
        *,
        next_ns: int | None = None,
        attempted: bool = True,
    ) -> None:
        with self._transaction():
            self._execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + ?, "
                "last_error = COALESCE(?, last_error), claimed_until = NULL, "
                "next_attempt_ns = COALESCE(?, next_attempt_ns), updated_ns = ? WHERE id = ?",
                (
                    status,
                    1 if attempted else 0,
                    None if error is None else error[:MAX_ERROR_CHARS],
                    next_ns,
                    now_ns,
                    delivery_id,
                ),
            )

    def deliveries(self, *, alert_id: str | None = None) -> list[DeliveryRecord]:
        """Every delivery row (of ``alert_id``), in the order they were planned."""
        query = (
            "SELECT alert_id, subscriber, channel, target, status, attempts, last_error "
            "FROM deliveries"
        )
        params: tuple[object, ...] = ()
        if alert_id is not None:
            query += " WHERE alert_id = ?"
            params = (alert_id,)
        return [
            DeliveryRecord(
                alert_id=row[0],
                subscriber=row[1],
                channel=row[2],
                target=row[3],
                status=row[4],
                attempts=row[5],
                last_error=row[6],
            )
            for row in self._execute(query + " ORDER BY id", params)
        ]

    def delivery_counts(self) -> dict[tuple[str, str], int]:
        """Deliveries by (channel, status)."""
        rows = self._execute(
            "SELECT channel, status, COUNT(*) FROM deliveries GROUP BY channel, status"
        )
        return {(channel, status): count for channel, status, count in rows}

    def pending_count(self) -> int:
        """Deliveries not yet sent, dead or cancelled."""
        row = self._execute(
            "SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'retry')"
        ).fetchone()
        return int(row[0])

    def check_writable(self, *, now_ns: int) -> None:
        """Write and commit one row; raises :class:`JournalError` if the journal cannot."""
        with self._transaction():
            self._execute(
                "INSERT INTO meta (key, value) VALUES ('ready_probe', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(now_ns),),
            )

    def opt_out(self, subscriber_id: str, *, now_ns: int) -> None:
        """Record that ``subscriber_id`` (one of alerts.toml) unsubscribed through its link."""
        with self._transaction():
            self._execute(
                "INSERT INTO opt_outs (id, at_ns) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (subscriber_id, now_ns),
            )

    def opted_out(self) -> set[str]:
        return {row[0] for row in self._execute("SELECT id FROM opt_outs")}

    def alert_count(self) -> int:
        return int(self._execute("SELECT COUNT(*) FROM alerts").fetchone()[0])

    def subscribers(self) -> list[Subscriber]:
        """The subscribers added through the API, oldest first."""
        rows = self._execute("SELECT body FROM subscribers ORDER BY created_ns, id")
        return [_subscriber_from_json(body) for (body,) in rows]

    def put_subscriber(self, subscriber: Subscriber, *, now_ns: int) -> None:
        """Add ``subscriber``, or replace the one with its id."""
        with self._transaction():
            self._execute(
                "INSERT INTO subscribers (id, body, created_ns) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                (subscriber.id, _subscriber_to_json(subscriber), now_ns),
            )

    def pending_signups(self) -> list[tuple[Subscriber, int]]:
        """The subscribers still to confirm, each with when it signed up, oldest first."""
        rows = self._execute("SELECT body, created_ns FROM subscribers ORDER BY created_ns, id")
        found = [(_subscriber_from_json(body), created_ns) for body, created_ns in rows]
        return [(subscriber, created) for subscriber, created in found if not subscriber.confirmed]

    def expire_pending(self, *, before_ns: int) -> list[str]:
        """Remove the subscribers still to confirm that signed up at or before ``before_ns``."""
        expired = [s.id for s, created in self.pending_signups() if created <= before_ns]
        if expired:
            with self._transaction():
                self._executemany(
                    "DELETE FROM subscribers WHERE id = ?", [(sid,) for sid in expired]
                )
        return expired

    def remove_subscriber(self, subscriber_id: str) -> bool:
        with self._transaction():
            cursor = self._execute("DELETE FROM subscribers WHERE id = ?", (subscriber_id,))
        return bool(cursor.rowcount == 1)

    def stored_rules(self) -> list[StoredRule]:
        """The rules set through the API, oldest first."""
        rows = self._execute(
            "SELECT id, owner, body, created_ns, updated_ns FROM rules ORDER BY created_ns, id"
        )
        return [
            StoredRule(
                id=rule_id,
                owner=owner,
                definition=json.loads(body),
                created_ns=created_ns,
                updated_ns=updated_ns,
            )
            for rule_id, owner, body, created_ns, updated_ns in rows
        ]

    def put_rule(self, rule: StoredRule) -> None:
        """Add ``rule``, or replace the one with its id (keeping when it was made)."""
        with self._transaction():
            self._execute(
                "INSERT INTO rules (id, owner, body, created_ns, updated_ns) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                "owner = excluded.owner, body = excluded.body, updated_ns = excluded.updated_ns",
                (
                    rule.id,
                    rule.owner,
                    json.dumps(dict(rule.definition), separators=(",", ":")),
                    rule.created_ns,
                    rule.updated_ns,
                ),
            )

    def remove_rule(self, rule_id: str) -> bool:
        with self._transaction():
            cursor = self._execute("DELETE FROM rules WHERE id = ?", (rule_id,))
        return bool(cursor.rowcount == 1)

    def secret(self) -> bytes:
        """This journal's signing key (made on first use): it signs unsubscribe links."""
        row = self._execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
        if row is not None:
            return bytes.fromhex(row[0])
        value = secrets.token_bytes(32)
        with self._transaction():
            self._execute(
                "INSERT INTO meta (key, value) VALUES ('secret', ?) ON CONFLICT DO NOTHING",
                (value.hex(),),
            )
        return self.secret()


def _scoped(scope: str, source: str) -> str:
    """A source's key in ``positions``: its name, after its shard's (``1/2|file``) if sharded."""
    return f"{scope}|{source}" if scope else source


def _delivery(row: Sequence[Any]) -> Delivery:
    return Delivery(
        id=row[0],
        alert_id=row[1],
        subscriber=row[2],
        channel=row[3],
        target=row[4],
        attempts=row[5],
        alert=_payload(row[6]),
    )


def _visible(query: str, params: list[object], viewer: Viewer | None) -> tuple[str, list[object]]:
    """``query`` narrowed to the alerts ``viewer`` may see (``None``: all of them)."""
    if viewer is None:
        return query, params
    if viewer.subscriber is None:
        return query + " AND owner IS NULL", params
    return query + " AND (owner IS NULL OR owner = ?)", [*params, viewer.subscriber]


def _payload(body: str) -> AlertPayload:
    """An ALERT as stored: written by :meth:`AlertEvent.to_dict`, read back as it was."""
    return cast(AlertPayload, json.loads(body))


def _subscriber_to_json(subscriber: Subscriber) -> str:
    return json.dumps(
        {
            "id": subscriber.id,
            "email": subscriber.email,
            "push": list(subscriber.push),
            "webpush": [sub.to_dict() for sub in subscriber.webpush],
            "webhook": subscriber.webhook,
            "webhook_secret": subscriber.webhook_secret,
            "symbols": list(subscriber.symbols),
            "kinds": list(subscriber.kinds),
            "confirmed": subscriber.confirmed,
            "manage_generation": subscriber.manage_generation,
        }
    )


def _subscriber_from_json(body: str) -> Subscriber:
    data = json.loads(body)
    return Subscriber(
        id=data["id"],
        email=data["email"],
        push=tuple(data["push"]),
        webpush=tuple(
            WebPushSubscription(
                endpoint=sub["endpoint"], p256dh=sub["keys"]["p256dh"], auth=sub["keys"]["auth"]
            )
            for sub in data["webpush"]
        ),
        webhook=data["webhook"],
        webhook_secret=data["webhook_secret"],
        symbols=tuple(data["symbols"]),
        kinds=tuple(data["kinds"]),
        confirmed=data["confirmed"],
        manage_generation=data.get("manage_generation", 0),
    )
