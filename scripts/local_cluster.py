"""``make cluster``: the cluster of deploy/docker-compose.cluster.yml, as processes on this machine.

Where no container engine runs: a PostgreSQL server (``initdb`` into a
temporary directory, ``postgres`` on a free port of 127.0.0.1, as the
``postgres`` user when run as root: PostgreSQL refuses root), a Mosquitto
broker and an SMTP catcher of its own, then every role of
deploy/alerts.cluster.toml with the hosts made local: two engine shards and a
standby of each, two delivery workers, two gateways, the API, and a feed that
replays the bundled sample day into the broker. Ctrl-C (or ``--seconds``)
stops them all, in order, and removes what it made. The servers are started
by the same launchers the tests use (tests/postgres.py, tests/mosquitto.py).

    make cluster                      # or: .venv/bin/python scripts/local_cluster.py
    .venv/bin/python scripts/local_cluster.py --free-ports --seconds 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.mosquitto import Mosquitto, free_port  # noqa: E402
from tests.postgres import PostgresServer  # noqa: E402

CONFIG = REPO / "deploy" / "alerts.cluster.toml"
BIN = Path(sys.executable).parent
ADMIN_TOKEN = "local-cluster-admin-token"  # noqa: S105 (a local cluster on 127.0.0.1)
STOP_TIMEOUT_S = 10.0
READY_TIMEOUT_S = 60.0


@dataclass
class Role:
    name: str
    argv: list[str]
    http_port: int | None = None
    ws_port: int | None = None
    process: subprocess.Popen[bytes] | None = None
    log: Path = Path("/dev/null")


def local_config(text: str, *, journal: str, broker: str, smtp_port: int) -> str:
    """deploy/alerts.cluster.toml with the compose hosts made this machine's."""
    replacements = {
        '"postgresql://strykr@postgres:5432/strykr"': f'"{journal}"',
        '"mqtt://mosquitto:1883"': f'"{broker}"',
        'host = "mailcatcher"\nport = 1025': f'host = "127.0.0.1"\nport = {smtp_port}',
        'host = "0.0.0.0"': 'host = "127.0.0.1"',
        'dir = "articles"': f'dir = "{REPO / "articles"}"',
    }
    for compose, local in replacements.items():
        if compose not in text:
            raise SystemExit(f"{CONFIG}: expected {compose} in it; update {__file__} with it")
        text = text.replace(compose, local)
    return text


def roles(config: Path, ports: dict[str, int]) -> list[Role]:
    run = [str(BIN / "strykr-alerts"), "run", "--config", str(config)]
    made: list[Role] = []
    for shard in ("0/2", "1/2"):
        for name in (f"engine-{shard[0]}", f"engine-{shard[0]}-standby"):
            port = free_port()
            made.append(
                Role(
                    name,
                    [*run, "--role", "engine", "--shard", shard, "--http-port", str(port)],
                    port,
                )
            )
    for name in ("delivery-1", "delivery-2"):
        port = free_port()
        made.append(Role(name, [*run, "--role", "delivery", "--http-port", str(port)], port))
    for index, name in enumerate(("gateway-1", "gateway-2")):
        port, ws = free_port(), ports[f"gateway-{index + 1}"]
        argv = [*run, "--role", "gateway", "--http-port", str(port), "--ws-port", str(ws)]
        made.append(Role(name, argv, port, ws))
    made.append(
        Role("api", [*run, "--role", "api", "--http-port", str(ports["api"])], ports["api"])
    )
    return made


def readiness(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            return reply.status, "ready"
    except urllib.error.HTTPError as error:
        reasons = json.loads(error.read() or b"{}").get("reasons", [])
        return error.code, "; ".join(reasons)
    except OSError:
        return 0, "not listening yet"


def wait_ready(started: list[Role]) -> dict[str, str]:
    """Each role's /readyz once every one answers (a standby answers 503 "standby")."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    states: dict[str, str] = {}
    while time.monotonic() < deadline:
        for role in started:
            assert role.process is not None
            assert role.http_port is not None
            if role.process.poll() is not None:
                said = role.log.read_text(errors="replace").strip().splitlines()[-3:]
                raise SystemExit(
                    f"{role.name} exited with status {role.process.returncode}: " + " / ".join(said)
                )
            status, said = readiness(role.http_port)
            states[role.name] = said if status in (200, 503) else ""
        if all(states.values()):
            return states
        time.sleep(0.25)
    raise SystemExit(f"not ready within {READY_TIMEOUT_S:g} s: {states}")


def stop(processes: list[subprocess.Popen[bytes]]) -> list[int]:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return [process.returncode for process in processes]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, help="stop after this long (default: Ctrl-C)")
    parser.add_argument(
        "--free-ports",
        action="store_true",
        help="the API and the gateways on free ports, not 8080, 8765 and 8766",
    )
    parser.add_argument("--speed", type=float, default=60.0, help="the feed's speed (default 60)")
    parser.add_argument("--keep", action="store_true", help="keep the logs when it stops")
    args = parser.parse_args(argv)
    ports = {"api": 8080, "gateway-1": 8765, "gateway-2": 8766}
    if args.free_ports:
        ports = {name: free_port() for name in ports}
    directory = Path(tempfile.mkdtemp(prefix="strykr-cluster-"))
    logs = directory / "logs"
    logs.mkdir()
    postgres = PostgresServer()
    broker = Mosquitto(directory / "mosquitto", max_inflight_messages=1000)
    smtp_port = free_port()
    started: list[Role] = []
    helpers: list[subprocess.Popen[bytes]] = []
    stopping = False

    def on_signal(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    try:
        postgres.start()
        journal = postgres.new_database()
        broker.start()
        helpers.append(
            subprocess.Popen(
                [str(BIN / "aiosmtpd"), "-n", "-l", f"127.0.0.1:{smtp_port}"],
                stdout=(logs / "mail.log").open("wb"),
                stderr=subprocess.STDOUT,
            )
        )
        config = directory / "alerts.toml"
        config.write_text(
            local_config(
                CONFIG.read_text(), journal=journal, broker=broker.url, smtp_port=smtp_port
            )
        )
        environment = {**os.environ, "STRYKR_ADMIN_TOKEN": ADMIN_TOKEN}
        everyone = roles(config, ports)
        # The standbys once the shards run: which process is which is then as named.
        states: dict[str, str] = {}
        for standbys in (False, True):
            for role in everyone:
                if role.name.endswith("-standby") == standbys:
                    role.log = logs / f"{role.name}.log"
                    role.process = subprocess.Popen(
                        role.argv,
                        stdout=role.log.open("wb"),
                        stderr=subprocess.STDOUT,
                        env=environment,
                    )
                    started.append(role)
            states = wait_ready(started)
        feed = subprocess.Popen(
            [str(BIN / "strykr-alerts"), "feed", "--to", broker.url, "--speed", str(args.speed)],
            stdout=(logs / "feed.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        helpers.append(feed)
        print(f"strykr-alerts cluster: PostgreSQL {journal}, Mosquitto {broker.url}")
        for role in started:
            assert role.process is not None
            where = f"ws://127.0.0.1:{role.ws_port}" if role.ws_port else ""
            if role.name == "api":
                where = f"http://127.0.0.1:{role.http_port}/  (admin token {ADMIN_TOKEN})"
            print(f"  {role.name:<18} pid {role.process.pid:<8} {states[role.name]:<50} {where}")
        kept = "kept" if args.keep else "removed at the end; --keep keeps them"
        print(f"  logs in {logs} ({kept})")
        print(f"  the feed replays the sample day at {args.speed:g}x. Ctrl-C stops.")
        sys.stdout.flush()
        deadline = None if args.seconds is None else time.monotonic() + args.seconds
        with contextlib.suppress(KeyboardInterrupt):
            while not stopping and (deadline is None or time.monotonic() < deadline):
                for role in started:
                    assert role.process is not None
                    if role.process.poll() is not None:
                        print(f"{role.name} exited with status {role.process.returncode}")
                        stopping = True
                time.sleep(0.2)
        return 0 if not any(r.process and r.process.poll() is not None for r in started) else 1
    finally:
        statuses = stop([role.process for role in started if role.process is not None])
        stop(helpers)
        broker.stop()
        postgres.remove()
        if started:
            print(f"stopped: {dict(zip((r.name for r in started), statuses, strict=True))}")
        if args.keep:
            print(f"logs kept in {logs}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # while starting: everything started is stopped already
        sys.exit(130)
