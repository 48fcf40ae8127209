"""The service on a PostgreSQL journal (the tests' own server): what it does on SQLite, there."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import parse_config
from service.errors import ConfigError
from service.journal.postgres import PostgresJournal, redact
from tests.helpers import eventually
from tests.integration.http_service import http_config, http_service
from tests.postgres import PostgresServer


def on_postgres(tmp_path: Path, url: str) -> str:
    config = http_config(tmp_path)
    return config.replace(f'journal = "{tmp_path / "alerts.db"}"', f'journal = "{url}"')


async def test_a_replay_journals_on_postgresql_once_and_a_restart_goes_on_from_it(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    url = postgres_server.new_database()
    config = on_postgres(tmp_path, url)
    assert not (tmp_path / "alerts.db").exists()
    async with http_service(config) as service:
        await eventually(lambda: service.app.journal.alert_count() >= 3, what="3 alerts")
        assert isinstance(service.app.journal, PostgresJournal)
        first = [a["id"] for a in service.app.journal.recent_alerts()]
        status, body, _ = await service.get("/api/v1/alerts")
        assert status == 200
        assert [a["id"] for a in body["alerts"]] == first
    assert not (tmp_path / "alerts.db").exists()  # nothing went to a file
    stored = PostgresJournal(url)
    stored.open()
    try:
        assert [a["id"] for a in stored.recent_alerts()] == first
        assert "file" in stored.load_checkpoint().positions  # the replay's place
    finally:
        stored.close()
    # Started again on the same database: the replay goes on from its place, nothing twice.
    async with http_service(config) as service:
        await eventually(
            lambda: all(s.snapshot().state == "finished" for s in service.app.sources),
            what="the replay done",
        )
        assert [a["id"] for a in service.app.journal.recent_alerts()] == first


def test_a_postgresql_journal_is_a_url_and_its_password_never_shows(tmp_path: Path) -> None:
    config = parse_config(
        '[service]\njournal = "postgresql://app:s3cret@db.internal:5432/strykr"\n'
    )
    assert config.service.journal == "postgresql://app:s3cret@db.internal:5432/strykr"
    assert redact(str(config.service.journal)) == "postgresql://app:***@db.internal:5432/strykr"
    from_env = parse_config(
        '[service]\njournal = "env:JOURNAL"\n',
        env={"JOURNAL": "postgresql://app@db/strykr"},
    )
    assert from_env.service.journal == "postgresql://app@db/strykr"
    with pytest.raises(ConfigError, match=r"service\.journal: expected postgresql://user@host"):
        parse_config('[service]\njournal = "postgresql://"\n')
    assert parse_config(f'[service]\njournal = "{tmp_path}/a.db"\n').service.journal == (
        tmp_path / "a.db"
    )
