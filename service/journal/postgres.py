"""The journal on a PostgreSQL server: every role, for services that outgrow one file.

``[service] journal = "postgresql://user@host:5432/strykr"`` (a password as
``env:NAME`` in the URL's place, or in ``PGPASSWORD``). The roles' queries
are :class:`~service.journal.sql.SqlJournal`'s; this class gives them a
connection (psycopg 3), its transactions and the schema.

The schema is versioned as the SQLite one is (``meta.schema_version``), and
made or migrated under an advisory lock, so processes that start together
make it once. Each write is one transaction; a committed alert is on the
server's disk (``synchronous_commit`` as the server is configured).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from service.errors import JournalError
from service.journal.sql import SqlJournal

# The schema's own history on PostgreSQL; it starts where the SQLite one was (3: rules
# and the owners of alerts), so a number means the same tables on both. 4: deliveries
# claimed by a worker until a time. 5: each engine shard's own tick log (its scope).
SCHEMA_VERSION = 5
# Held while the schema is made or migrated: one process at a time does it.
SCHEMA_LOCK = 0x5354524B  # "STRK"
# Held by each transaction that stores alerts, to its commit: the alerts' positions
# (seq) then commit in the order they were given, so a reader that has seen position
# N has seen every alert before it, and can go on from N alone.
ALERTS_LOCK = 0x5354524C
# Notified at the commit of new alerts (gateways listen: service.journal.alert_feed).
ALERTS_CHANNEL = "strykr_alerts"
CONNECT_TIMEOUT_S = 10

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL,
    kind TEXT NOT NULL,
    ts_ns BIGINT NOT NULL,
    recorded_ns BIGINT NOT NULL,
    body TEXT NOT NULL,
    owner TEXT
);
CREATE INDEX IF NOT EXISTS alerts_by_symbol ON alerts (symbol, seq);
CREATE TABLE IF NOT EXISTS deliveries (
    id BIGSERIAL PRIMARY KEY,
    alert_id TEXT NOT NULL REFERENCES alerts (id),
    subscriber TEXT NOT NULL,
    channel TEXT NOT NULL,
    target TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ns BIGINT NOT NULL,
    last_error TEXT,
    updated_ns BIGINT NOT NULL,
    claimed_until BIGINT,
    UNIQUE (alert_id, subscriber, channel, target)
);
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, next_attempt_ns)
    WHERE status IN ('pending', 'retry');
CREATE TABLE IF NOT EXISTS subscribers (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    created_ns BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS opt_outs (id TEXT PRIMARY KEY, at_ns BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS engine_state (symbol TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS positions (source TEXT PRIMARY KEY, position TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tick_log (
    seq BIGSERIAL PRIMARY KEY,
    ticks TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tick_log_by_scope ON tick_log (scope, seq);
CREATE TABLE IF NOT EXISTS rules (
    id TEXT PRIMARY KEY,
    owner TEXT,
    body TEXT NOT NULL,
    created_ns BIGINT NOT NULL,
    updated_ns BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS rules_by_owner ON rules (owner, created_ns);
"""
# What a database of an older schema needs, by the version that brought it in.
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    4: ("ALTER TABLE deliveries ADD COLUMN IF NOT EXISTS claimed_until BIGINT",),
    5: ("ALTER TABLE tick_log ADD COLUMN IF NOT EXISTS scope TEXT NOT NULL DEFAULT ''",),
}


class PostgresJournal(SqlJournal):
    """The journal in a PostgreSQL database; one connection per journal object.

    Several processes may share the database: a claim locks the rows it
    takes and skips those another claim holds (``FOR UPDATE SKIP LOCKED``),
    so no two delivery workers take the same delivery.
    """

    _CLAIM_LOCK = " FOR UPDATE OF d SKIP LOCKED"

    def __init__(self, url: str) -> None:
        self.url = url
        self.path = redact(url)
        self._connection: psycopg.Connection[Any] | None = None
        self._read_only = False
        # An engine shard's writer: the advisory lock (two keys) its connection (pid) holds.
        self._fence: tuple[int, int, int] | None = None

    def open(self) -> None:
        """Connect, and make or migrate the schema; a no-op when connected already."""
        if self._connection is not None:
            return
        try:
            db = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as error:
            raise JournalError(self.path, f"cannot be reached: {_first_line(error)}") from None
        try:
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                version = _version(db)
                if version > SCHEMA_VERSION:
                    raise JournalError(
                        self.path,
                        f"written by a newer strykr-alerts (schema {version}, this one reads "
                        f"{SCHEMA_VERSION}); upgrade, or point [service] journal elsewhere",
                    )
                # A database of this version is left alone: DDL on tables that other
                # processes write can deadlock with them (an index takes a share lock).
                if version < SCHEMA_VERSION:
                    for step in sorted(_MIGRATIONS):
                        if 0 < version < step:
                            for statement in _MIGRATIONS[step]:
                                db.execute(statement)
                    db.execute(_SCHEMA)
                    db.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', %s) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                        (str(SCHEMA_VERSION),),
                    )
        except psycopg.Error as error:
            db.close()
            raise JournalError(self.path, f"cannot be opened: {_first_line(error)}") from None
        except JournalError:
            db.close()
            raise
        self._connection = db

    @property
    def _db(self) -> psycopg.Connection[Any]:
        if self._connection is None:
            self.open()
            assert self._connection is not None
        return self._connection

    def _execute(self, query: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        try:
            return self._db.execute(_placeholders(query), params)
        except psycopg.Error as error:
            raise self._failed(error) from None

    def _executemany(self, query: str, rows: Iterable[Sequence[Any]]) -> None:
        try:
            with self._db.cursor() as cursor:
                cursor.executemany(_placeholders(query), list(rows))
        except psycopg.Error as error:
            raise self._failed(error) from None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        try:
            with self._db.transaction():
                if self._read_only:
                    self._db.execute("SET TRANSACTION READ ONLY")
                yield
        except psycopg.Error as error:
            raise self._failed(error) from None

    def fence(self, key: tuple[int, int], backend_pid: int) -> None:
        """Store alerts and checkpoints only while the connection ``backend_pid`` holds the
        advisory lock ``key`` (:class:`~service.journal.shard_lease.ShardLease`'s)."""
        self._fence = (*key, backend_pid)

    def _check_fence(self) -> None:
        if self._fence is None:
            return
        classid, objid, pid = self._fence
        held = self._execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = CAST(? AS oid) "
            "AND objid = CAST(? AS oid) AND objsubid = 2 AND pid = ? AND granted",
            (classid, objid, pid),
        ).fetchone()
        if held is None:
            raise JournalError(
                self.path,
                "cannot be written: this engine shard's lock is no longer held by this "
                "process (another runs the shard now)",
            )

    def _before_alerts(self) -> None:
        self._execute("SELECT pg_advisory_xact_lock(?)", (ALERTS_LOCK,))

    def _announce_alerts(self) -> None:
        self._execute("SELECT pg_notify(?, '')", (ALERTS_CHANNEL,))

    def _failed(self, error: psycopg.Error) -> JournalError:
        """A statement failed; a JournalError, which every caller knows, says why.

        A connection the failure broke (the server restarted, the network
        dropped) is dropped: the next call connects again.
        """
        connection = self._connection
        if connection is not None and connection.broken:
            connection.close()
            self._connection = None
            return JournalError(self.path, f"cannot be reached: {_first_line(error)}")
        idle = connection is not None and (
            connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        )
        doing = "read" if idle else "written"
        return JournalError(self.path, f"cannot be {doing}: {_first_line(error)}")

    def refuse_writes(self, refuse: bool = True) -> None:
        """Refuse every write from now (``False``: take them again), as a full disk would.

        For drills: each write's transaction is read-only, so the server refuses it.
        """
        self._read_only = refuse

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _version(db: psycopg.Connection[Any]) -> int:
    """The schema version of the database (0: a new one)."""
    exists = db.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()
    if not exists or not exists[0]:
        return 0
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    return int(row[0]) if row else 0


def _placeholders(query: str) -> str:
    """The shared queries' ``?`` as psycopg's ``%s`` (no query holds a literal ``?`` or ``%``)."""
    return query.replace("?", "%s")


def redact(url: str) -> str:
    """``url`` without its password, for logs and errors."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}:***@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host))


def _first_line(error: BaseException) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
