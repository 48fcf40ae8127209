"""Processes of one role each on a shared PostgreSQL journal: an engine and two delivery workers.

Real processes (``strykr-alerts run --role …``), the tests' own PostgreSQL
server, a webhook receiver on 127.0.0.1: every alert the engine journals is
sent once, by one of the two delivery processes.
"""

from __future__ import annotations

import signal
from pathlib import Path

from service.journal.postgres import PostgresJournal
from tests.conftest import StartService
from tests.helpers import eventually
from tests.integration.http_service import http_config
from tests.postgres import PostgresServer
from tests.receivers import HttpReceiver


def cluster_config(tmp_path: Path, url: str, hook: str) -> Path:
    """The HTTP tests' config (replay, rules) on a PostgreSQL journal, with a webhook on IWM."""
    desk = (
        f'[[subscribers]]\nid = "iwm-desk"\nwebhook = "{hook}"\n'
        'webhook_secret = "a-webhook-secret-of-the-desk"\nsymbols = ["IWM"]\n'
    )
    text = http_config(tmp_path, extra=desk).replace(
        f'journal = "{tmp_path / "alerts.db"}"', f'journal = "{url}"\nlog_format = "json"'
    )
    config = tmp_path / "alerts.toml"
    config.write_text(text)
    return config


async def test_an_engine_and_two_delivery_processes_send_each_alert_once(
    tmp_path: Path,
    postgres_server: PostgresServer,
    http_receiver: HttpReceiver,
    start_service: StartService,
) -> None:
    url = postgres_server.new_database()
    config = cluster_config(tmp_path, url, http_receiver.url("/hook"))
    workers = [
        start_service("run", "--config", str(config), "--role", "delivery") for _ in range(2)
    ]
    for worker in workers:
        worker.wait_for("service_started")
    engine = start_service("run", "--config", str(config), "--role", "engine")
    engine.wait_for("replay_finished")
    journal = PostgresJournal(url)
    journal.open()
    try:
        await eventually(lambda: journal.alert_count() == 3, what="the replay's 3 alerts")
        await eventually(lambda: len(http_receiver.requests) == 3, what="3 webhooks")
        await eventually(lambda: journal.pending_count() == 0, what="every delivery marked")
        for process in (engine, *workers):
            assert process.stop(signal.SIGTERM) == 0
        # Every process is stopped: what was sent is all that ever will be.
        received = sorted(request.json()["id"] for request in http_receiver.requests)
        assert received == sorted(a["id"] for a in journal.recent_alerts())
        assert [(row.status, row.attempts) for row in journal.deliveries()] == [("sent", 1)] * 3
    finally:
        journal.close()


def test_a_role_needs_a_postgresql_journal(tmp_path: Path, start_service: StartService) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text(f'[service]\njournal = "{tmp_path / "alerts.db"}"\n')
    process = start_service("run", "--config", str(config), "--role", "delivery")
    assert process.process.wait(timeout=30) != 0
    process.close()
    said = "".join(process.stray_lines) + str(process.events)
    assert "--role delivery: the processes of a cluster share a PostgreSQL journal" in said
