"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import settings

from tests.mosquitto import Mosquitto
from tests.postgres import PostgresServer
from tests.receivers import HttpReceiver, SmtpServer

# Speed is measured in bench/, never asserted in tests: no per-example deadline,
# which would turn a busy CI machine into a failing test.
settings.register_profile("strykr", deadline=None)
settings.load_profile("strykr")

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).resolve().parent / "data"
# The console script installed with the project, next to this interpreter.
CLI = str(Path(sys.executable).parent / "strykr-alerts")


def run_cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """Run ``strykr-alerts`` to completion, capturing its output."""
    return subprocess.run(
        [CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def data_dir() -> Path:
    return DATA


class ServiceProcess:
    """A running ``strykr-alerts`` process whose JSON log lines are collected as they come."""

    def __init__(self, args: list[str], cwd: Path) -> None:
        self.process = subprocess.Popen(
            [CLI, *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.events: list[dict[str, object]] = []
        self.stray_lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._changed:
                try:
                    self.events.append(json.loads(line))
                except json.JSONDecodeError:
                    self.stray_lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(
        self, event: str, count: int = 1, timeout: float = 10.0
    ) -> list[dict[str, object]]:
        """Wait until ``count`` log lines of ``event`` have arrived; return them."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [e for e in self.events if e.get("event") == event]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reader.is_alive()):
                    raise AssertionError(
                        f"{count} x {event} not seen within {timeout} s; got "
                        f"{[e.get('event') for e in self.events]}, stray {self.stray_lines[-5:]}"
                    )
                self._changed.wait(min(left, 0.2))

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int:
        """Send ``sig`` and wait for the exit status (failing the test if it hangs)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"strykr-alerts did not stop within {timeout} s") from None
        finally:
            self.close()
        return status

    def close(self) -> None:
        """Kill the process if it still runs, then release its pipes."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(timeout=2)
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


StartService = Callable[..., ServiceProcess]


@pytest.fixture
def start_service() -> Iterator[object]:
    """Start ``strykr-alerts`` with arguments; every process started is stopped at teardown."""
    started: list[ServiceProcess] = []

    def start(*args: str, cwd: Path = REPO) -> ServiceProcess:
        service = ServiceProcess(list(args), cwd)
        started.append(service)
        return service

    yield start
    for service in started:
        service.close()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Mosquitto]:
    """A Mosquitto broker of the test's own on a free port; stopped at teardown."""
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server (aiosmtpd) of the test's own on a free port; stopped at teardown."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def http_receiver() -> AsyncIterator[HttpReceiver]:
    """An HTTP server (aiohttp) that records POSTs, on a free port; stopped at teardown."""
    receiver = HttpReceiver()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server of the tests' own for the session (a database per test)."""
    server = PostgresServer()
    server.start()
    yield server
    server.remove()
