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

import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from service.errors import JournalError
from service.journal.sql import SqlJournal

# 1: alerts, deliveries, subscribers, opt-outs. 2: the engine's checkpoint and tick log.
# 3: rules set through the API, and the owner of each alert (a subscriber's own rule's).
# 4: deliveries claimed by a worker until a time (several workers on one outbox).
# 5: each engine shard's own tick log (its scope).
SCHEMA_VERSION = 5

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
    claimed_until INTEGER,
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
CREATE TABLE IF NOT EXISTS tick_log (
    seq INTEGER PRIMARY KEY,
    ticks TEXT NOT NULL,
    scope TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS tick_log_by_scope ON tick_log (scope, seq);
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
    4: ("ALTER TABLE deliveries ADD COLUMN claimed_until INTEGER",),
    5: (
        "CREATE TABLE IF NOT EXISTS tick_log (seq INTEGER PRIMARY KEY, ticks TEXT NOT NULL)",
        "ALTER TABLE tick_log ADD COLUMN scope TEXT NOT NULL DEFAULT ''",
    ),
}


class SqliteJournal(SqlJournal):
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

    def _execute(self, query: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self._db.execute(query, params)

    def _executemany(self, query: str, rows: Iterable[Sequence[Any]]) -> None:
        self._db.executemany(query, rows)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self.path)

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
