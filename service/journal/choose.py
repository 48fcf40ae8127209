"""The journal a setting names: a SQLite file, a PostgreSQL server, or memory."""

from __future__ import annotations

from pathlib import Path

from service.journal.postgres import PostgresJournal
from service.journal.roles import Journal
from service.journal.sqlite import SqliteJournal


def journal_for(setting: Path | str | None) -> Journal:
    """``[service] journal``: a path is a SQLite file, a URL a PostgreSQL database."""
    if isinstance(setting, str):
        return PostgresJournal(setting)
    return SqliteJournal(setting or ":memory:")


def describe_journal(setting: Path | str | None) -> str:
    """What ``setting`` is, for people: never a password."""
    if setting is None:
        return "in memory (lost on exit)"
    if isinstance(setting, str):
        return PostgresJournal(setting).path
    return str(setting)
