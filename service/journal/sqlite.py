"""The journal in one SQLite file: the embedded implementation of every journal role.

Every new alert is stored with one delivery row per (subscriber, channel,
address) in one transaction; only then do the hub and the delivery workers
see it. Alert ids are deterministic, so an alert replayed or re-detected
after a restart finds its row and is neither stored nor delivered again.

WAL with ``synchronous = FULL``: a committed alert survives a power cut. The
file is opened by :meth:`SqliteJournal.open` (or on first use), never when
the object is made, so building the service touches no file.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import cast

from service.errors import JournalError, UnknownAlertError
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

# 1: alerts, deliveries, subscribers, opt-outs. 2: the engine's checkpoint and tick log.
# 3: rules set through the API, and the owner of each alert (a subscriber's own rule's).
SCHEMA_VERSION = 3
# Errors are stored for people to read; a reply can be long.
MAX_ERROR_CHARS = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    recorded_ns INTEGER NOT NULL,
    body TEXT NOT NULL,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS alerts_by_symbol ON alerts (symbol, seq);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    subscriber TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ns INTEGER NOT NULL,
    last_error TEXT,
    updated_ns INTEGER NOT NULL,
    UNIQUE (alert_id, subscriber, channel, target)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, next_attempt_ns)
    WHERE status IN ('pending', 'retry');
CREATE TABLE IF NOT EXISTS subscribers (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    created_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS opt_outs (id TEXT PRIMARY KEY, at_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS engine_state (symbol TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (source TEXT PRIMARY KEY, position TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tick_log (seq INTEGER PRIMARY KEY, ticks TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rules (
    id TEXT PRIMARY KEY,
    owner TEXT,
    body TEXT NOT NULL,
    created_ns INTEGER NOT NULL,
    updated_ns INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS rules_by_owner ON rules (owner, created_ns);
"""
# What a file of an older schema needs before the schema above applies to it, by the
# version that brought it in. (Tables that are new in a version come with the schema.)
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    3: ("ALTER TABLE alerts ADD COLUMN owner TEXT",),
}


class SqliteJournal:
    """The journal in one SQLite file (``":memory:"`` for a journal that dies with the process).

    One writer: the service's event loop thread. Every method commits before
    it returns.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._connection: sqlite3.Connection | None = None

    def open(self) -> None:
        """Open (or create) the file and its schema; a no-op when open already."""
        if self._connection is not None:
            return
        if self.path != ":memory:":
            try:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                raise JournalError(self.path, f"cannot create its directory: {error}") from None
        try:
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        except sqlite3.Error as error:
            raise JournalError(self.path, f"cannot be opened: {error}") from None
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA busy_timeout = 5000")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise JournalError(
                    self.path,
                    f"written by a newer strykr-alerts (schema {version}, this one reads "
                    f"{SCHEMA_VERSION}); upgrade, or point [service] journal elsewhere",
                )
            _migrate(db, version)
            # Every statement is idempotent (IF NOT EXISTS): a fresh file gets the schema,
            # an existing one is left as it is.
            db.executescript(_SCHEMA)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except sqlite3.Error as error:
            db.close()
            raise JournalError(self.path, f"cannot be opened: {error}") from None
        except JournalError:
            db.close()
            raise
        self._connection = db

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.open()
            assert self._connection is not None
        return self._connection

    def pragmas(self) -> dict[str, object]:
        """How the file is kept: ``journal_mode`` (wal) and ``synchronous`` (2: FULL)."""
        return {
            name: self._db.execute(f"PRAGMA {name}").fetchone()[0]
            for name in ("journal_mode", "synchronous")
        }

    def refuse_writes(self, refuse: bool = True) -> None:
        """Refuse every write from now (``False``: take them again), as a full disk would.

        For drills: what the service does while its journal cannot be written.
        """
        self._db.execute(f"PRAGMA query_only = {'ON' if refuse else 'OFF'}")

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self.path)

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
            if checkpoint is not None:
                if checkpoint.reset_log:
                    self._db.execute("DELETE FROM tick_log")
                self._db.executemany(
                    "INSERT INTO tick_log (ticks) VALUES (?)",
                    ((entry,) for entry in checkpoint.ticks),
                )
                self._db.executemany(
                    "INSERT INTO engine_state (symbol, state) VALUES (?, ?) "
                    "ON CONFLICT (symbol) DO UPDATE SET state = excluded.state",
                    checkpoint.symbols.items(),
                )
                self._db.executemany(
                    "INSERT INTO positions (source, position) VALUES (?, ?) "
                    "ON CONFLICT (source) DO UPDATE SET position = excluded.position",
                    checkpoint.positions.items(),
                )
            for alert, planned in alerts:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO alerts "
                    "(id, symbol, kind, ts_ns, recorded_ns, body, owner) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
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
                self._db.executemany(
                    "INSERT OR IGNORE INTO deliveries "
                    "(alert_id, subscriber, channel, target, next_attempt_ns, updated_ns) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (alert.id, p.subscriber, p.channel, p.target, now_ns, now_ns)
                        for p in planned
                    ],
                )
        return new

    def load_checkpoint(self) -> Checkpoint:
        symbols = dict(self._db.execute("SELECT symbol, state FROM engine_state"))
        positions = dict(self._db.execute("SELECT source, position FROM positions"))
        ticks = tuple(
            entry for (entry,) in self._db.execute("SELECT ticks FROM tick_log ORDER BY seq")
        )
        return Checkpoint(symbols=symbols, positions=positions, ticks=ticks)

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
            row = self._db.execute("SELECT seq FROM alerts WHERE id = ?", (since,)).fetchone()
            if row is None:
                raise UnknownAlertError(since)
            after = row[0]
        query = "SELECT body FROM alerts WHERE seq > ?"
        params: list[object] = [after]
        if symbols is not None:
            wanted = sorted(set(symbols))
            query += f" AND symbol IN ({', '.join('?' * len(wanted))})"
            params += wanted
        query, params = _visible(query, params, viewer)
        query += " ORDER BY seq"
        if limit is not None:
            query += " LIMIT ?"
            params.append(limit)
        return [_payload(body) for (body,) in self._db.execute(query, params)]

    def alerts_from(
        self,
        ts_ns: int,
        *,
        symbol: str | None = None,
        limit: int = 100,
        viewer: Viewer | None = None,
    ) -> list[AlertPayload]:
        """Alerts that fired at or after ``ts_ns`` (of ``symbol``), oldest recorded first."""
        query = "SELECT body FROM alerts WHERE ts_ns >= ?"
        params: list[object] = [ts_ns]
        if symbol is not None:
            query += " AND symbol = ?"
            params.append(symbol)
        query, params = _visible(query, params, viewer)
        query += " ORDER BY seq LIMIT ?"
        params.append(limit)
        return [_payload(body) for (body,) in self._db.execute(query, params)]

    def recent_alerts(
        self, *, symbol: str | None = None, limit: int = 100, viewer: Viewer | None = None
    ) -> list[AlertPayload]:
        """The latest ``limit`` alerts (of ``symbol``), oldest first."""
        query = "SELECT body FROM alerts WHERE 1 = 1"
        params: list[object] = []
        if symbol is not None:
            query += " AND symbol = ?"
            params.append(symbol)
        query, params = _visible(query, params, viewer)
        query += " ORDER BY seq DESC LIMIT ?"
        params.append(limit)
        rows = self._db.execute(query, params).fetchall()
        return [_payload(body) for (body,) in reversed(rows)]

    def due(self, channel: Channel, *, now_ns: int, limit: int) -> list[Delivery]:
        """Deliveries of ``channel`` to try now, oldest first."""
        rows = self._db.execute(
            "SELECT d.id, d.alert_id, d.subscriber, d.channel, d.target, d.attempts, a.body "
            "FROM deliveries d JOIN alerts a ON a.id = d.alert_id "
            "WHERE d.channel = ? AND d.status IN ('pending', 'retry') AND d.next_attempt_ns <= ? "
            "ORDER BY d.next_attempt_ns, d.id LIMIT ?",
            (channel, now_ns, limit),
        ).fetchall()
        return [
            Delivery(
                id=row[0],
                alert_id=row[1],
                subscriber=row[2],
                channel=row[3],
                target=row[4],
                attempts=row[5],
                alert=_payload(row[6]),
            )
            for row in rows
        ]

    def next_due_ns(self, channel: Channel) -> int | None:
        """When the next delivery of ``channel`` is due (``None``: none is waiting)."""
        row = self._db.execute(
            "SELECT MIN(next_attempt_ns) FROM deliveries "
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
            self._db.execute(
                "UPDATE deliveries SET status = ?, attempts = attempts + ?, "
                "last_error = COALESCE(?, last_error), "
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
            for row in self._db.execute(query + " ORDER BY id", params)
        ]

    def delivery_counts(self) -> dict[tuple[str, str], int]:
        """Deliveries by (channel, status)."""
        rows = self._db.execute(
            "SELECT channel, status, COUNT(*) FROM deliveries GROUP BY channel, status"
        )
        return {(channel, status): count for channel, status, count in rows}

    def pending_count(self) -> int:
        """Deliveries not yet sent, dead or cancelled."""
        row = self._db.execute(
            "SELECT COUNT(*) FROM deliveries WHERE status IN ('pending', 'retry')"
        ).fetchone()
        return int(row[0])

    def check_writable(self, *, now_ns: int) -> None:
        """Write and commit one row; raises :class:`JournalError` if the journal cannot."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('ready_probe', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(now_ns),),
            )

    def opt_out(self, subscriber_id: str, *, now_ns: int) -> None:
        """Record that ``subscriber_id`` (one of alerts.toml) unsubscribed through its link."""
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO opt_outs (id, at_ns) VALUES (?, ?)", (subscriber_id, now_ns)
            )

    def opted_out(self) -> set[str]:
        return {row[0] for row in self._db.execute("SELECT id FROM opt_outs")}

    def alert_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM alerts").fetchone()[0])

    def subscribers(self) -> list[Subscriber]:
        """The subscribers added through the API, oldest first."""
        rows = self._db.execute("SELECT body FROM subscribers ORDER BY created_ns, id")
        return [_subscriber_from_json(body) for (body,) in rows]

    def put_subscriber(self, subscriber: Subscriber, *, now_ns: int) -> None:
        """Add ``subscriber``, or replace the one with its id."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO subscribers (id, body, created_ns) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET body = excluded.body",
                (subscriber.id, _subscriber_to_json(subscriber), now_ns),
            )

    def pending_signups(self) -> list[tuple[Subscriber, int]]:
        """The subscribers still to confirm, each with when it signed up, oldest first."""
        rows = self._db.execute("SELECT body, created_ns FROM subscribers ORDER BY created_ns, id")
        found = [(_subscriber_from_json(body), created_ns) for body, created_ns in rows]
        return [(subscriber, created) for subscriber, created in found if not subscriber.confirmed]

    def expire_pending(self, *, before_ns: int) -> list[str]:
        """Remove the subscribers still to confirm that signed up at or before ``before_ns``."""
        expired = [s.id for s, created in self.pending_signups() if created <= before_ns]
        if expired:
            with self._transaction():
                self._db.executemany(
                    "DELETE FROM subscribers WHERE id = ?", [(sid,) for sid in expired]
                )
        return expired

    def remove_subscriber(self, subscriber_id: str) -> bool:
        with self._transaction():
            cursor = self._db.execute("DELETE FROM subscribers WHERE id = ?", (subscriber_id,))
        return cursor.rowcount == 1

    def stored_rules(self) -> list[StoredRule]:
        """The rules set through the API, oldest first."""
        rows = self._db.execute(
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
            self._db.execute(
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
            cursor = self._db.execute("DELETE FROM rules WHERE id = ?", (rule_id,))
        return cursor.rowcount == 1

    def secret(self) -> bytes:
        """This journal's signing key (made on first use): it signs unsubscribe links."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'secret'").fetchone()
        if row is not None:
            return bytes.fromhex(row[0])
        value = secrets.token_bytes(32)
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('secret', ?)", (value.hex(),)
            )
        return self.secret()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` on an error.

    A database error (disk full, file gone read-only) leaves as a
    :class:`JournalError` that names the journal.
    """

    def __init__(self, db: sqlite3.Connection, path: str) -> None:
        self._db = db
        self._path = path

    def __enter__(self) -> None:
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as error:
            raise JournalError(self._path, f"cannot be written: {error}") from None

    def __exit__(self, kind: object, error: object, traceback: object) -> None:
        try:
            self._db.execute("ROLLBACK" if error is not None else "COMMIT")
        except sqlite3.Error as failure:
            raise JournalError(self._path, f"cannot be written: {failure}") from None
        if isinstance(error, sqlite3.Error):
            raise JournalError(self._path, f"cannot be written: {error}") from None


def _migrate(db: sqlite3.Connection, version: int) -> None:
    """Bring a file written by an older schema (``version``, 0 for a new file) up to date."""
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "alerts" not in tables:
        return  # a new file: the schema makes everything
    for step in sorted(_MIGRATIONS):
        if version < step:
            for statement in _MIGRATIONS[step]:
                db.execute(statement)


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
