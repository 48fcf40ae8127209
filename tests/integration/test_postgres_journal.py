"""The service on a PostgreSQL journal (the tests' own server): what it does on SQLite, there."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest

from service.config import parse_config
from service.delivery.audience import Audience
from service.delivery.decide import backoff_of
from service.delivery.recorder import AlertRecorder
from service.delivery.settings import DeliveryConfig, WebhookConfig
from service.delivery.webhook import WebhookSender
from service.delivery.workers import DeliveryWorkers
from service.errors import ConfigError, JournalError
from service.journal.postgres import PostgresJournal, redact
from service.journal.records import Subscriber
from service.processing.batch import Batch
from tests.builders import alert_at
from tests.helpers import eventually
from tests.integration.http_service import http_config, http_service
from tests.postgres import PostgresServer
from tests.receivers import HttpReceiver


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


async def test_two_delivery_workers_on_one_postgresql_outbox_send_each_alert_once(
    postgres_server: PostgresServer, http_receiver: HttpReceiver
) -> None:
    url = postgres_server.new_database()
    hook = Subscriber(id="ops", webhook=http_receiver.url("/hook"), webhook_secret="s3cret-hook")
    writer = PostgresJournal(url)
    audience = Audience(writer, static=[hook], channels=["webhook"])
    audience.reload()
    recorder = AlertRecorder(writer, audience.plan)
    alerts = [alert_at(n) for n in range(40)]
    recorder(Batch((), alerts))
    assert writer.pending_count() == 40

    def worker() -> tuple[DeliveryWorkers, PostgresJournal]:
        journal = PostgresJournal(url)  # a connection of its own, as another process's
        sender = WebhookSender(WebhookConfig(timeout_seconds=5), concurrency=2)
        workers = DeliveryWorkers(
            journal,
            [sender],
            audience,
            max_attempts=3,
            backoff=backoff_of(DeliveryConfig()),
            release_on_start=False,  # the database is shared: leases end claims
        )
        return workers, journal

    pairs = [worker(), worker()]
    tasks = [asyncio.create_task(workers.run()) for workers, _ in pairs]
    try:
        await eventually(lambda: writer.pending_count() == 0, what="every delivery made")
    finally:
        for (workers, journal), task in zip(pairs, tasks, strict=True):
            workers.stop()
            await asyncio.wait_for(task, 5)
            journal.close()
    received = [request.json()["id"] for request in http_receiver.requests]
    assert sorted(received) == sorted(alert.id for alert in alerts)  # each once
    sent_by = [workers.outcomes["webhook", "sent"] for workers, _ in pairs]
    assert sum(sent_by) == 40
    assert all(sent_by), sent_by  # both worked
    assert {row.status for row in writer.deliveries()} == {"sent"}
    writer.close()


def test_a_lost_connection_is_a_journal_error_and_the_next_call_connects_again(
    postgres_server: PostgresServer,
) -> None:
    url = postgres_server.new_database()
    journal = PostgresJournal(url)
    journal.open()
    try:
        journal.record_alerts([(alert_at(1), [])], now_ns=0)
        # The server ends every session of this database (a restart, a failover would).
        with psycopg.connect(postgres_server.url("postgres"), autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
                (url.rsplit("/", 1)[1],),
            ).fetchone()
        assert ended is not None
        assert ended[0] >= 1
        with pytest.raises(JournalError, match="cannot be reached"):
            journal.alert_count()
        assert journal.alert_count() == 1  # connected again
        assert journal.record_alerts([(alert_at(2), [])], now_ns=0) == [alert_at(2)]
    finally:
        journal.close()
