"""The command line, run as users run it: the installed console script in a subprocess."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import polars as pl
import pytest

from service.app import build
from service.config import load_config
from tests.conftest import CLI, REPO, StartService, run_cli
from tests.helpers import eventually, running

# --- replay ---------------------------------------------------------------------------


def test_replay_prints_one_json_alert_per_line_in_tick_order(data_dir: Path) -> None:
    result = run_cli(
        "replay", "--config", str(data_dir / "iwm.toml"), "--ticks", str(data_dir / "iwm_day.csv")
    )
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(a["rule"], a["kind"], a["level"], a["price"], a["at"]) for a in alerts] == [
        ("iwm-above-265", "break_above", 265.0, 265.2, "2026-02-02T14:30:02.500Z"),
        ("iwm-below-255", "break_below", 255.0, 254.6, "2026-02-02T14:30:14.000Z"),
        ("iwm-below-255", "break_below", 255.0, 254.5, "2026-02-02T14:36:41.000Z"),
    ]
    for alert in alerts:
        assert alert["symbol"] == "IWM"
        assert len(alert["id"]) == 20
        assert alert["article"] is None
    assert len({a["id"] for a in alerts}) == 3


def test_replay_is_deterministic_so_ids_repeat(data_dir: Path) -> None:
    args = (
        "replay",
        "--config",
        str(data_dir / "iwm.toml"),
        "--ticks",
        str(data_dir / "iwm_day.csv"),
    )
    assert run_cli(*args).stdout == run_cli(*args).stdout


def test_replay_skips_bad_rows_and_summarises_them_on_stderr(data_dir: Path) -> None:
    result = run_cli(
        "replay", "--config", str(data_dir / "iwm.toml"), "--ticks", str(data_dir / "iwm_day.csv")
    )
    assert result.returncode == 0
    summary = result.stderr
    assert "replay: 11 rows, 7 ticks evaluated, 4 rejected, 3 alerts" in summary
    assert "price_not_finite: 1 (first: iwm_day.csv row 4:" in summary
    assert "bad_price: 1 (first: iwm_day.csv row 5:" in summary
    assert "missing_symbol: 1 (first: iwm_day.csv row 6:" in summary
    assert "out_of_order: 1 (first: iwm_day.csv IWM at 2026-02-02T14:30:05.000Z:" in summary
    # Logged once per reason, as JSON since stderr is not a terminal.
    logged = [json.loads(line) for line in summary.splitlines() if line.startswith("{")]
    assert sorted(e["reason"] for e in logged if e["event"] == "tick_rejected") == [
        "bad_price",
        "missing_symbol",
        "out_of_order",
        "price_not_finite",
    ]
    assert "Traceback" not in summary


def test_replay_reads_parquet_like_csv(data_dir: Path, tmp_path: Path) -> None:
    frame = pl.read_csv(data_dir / "iwm_day.csv", infer_schema_length=0).filter(
        pl.col("price").str.contains(r"^\d")
        & pl.col("symbol").is_not_null()
        & pl.col("ts").str.starts_with("2026")
    )
    frame = frame.with_columns(
        pl.col("ts").str.to_datetime(time_zone="UTC"), pl.col("price").cast(pl.Float64)
    )
    frame.write_parquet(tmp_path / "day.parquet")
    result = run_cli(
        "replay", "--config", str(data_dir / "iwm.toml"), "--ticks", str(tmp_path / "day.parquet")
    )
    assert result.returncode == 0, result.stderr
    assert [json.loads(line)["at"] for line in result.stdout.splitlines()] == [
        "2026-02-02T14:30:02.500Z",
        "2026-02-02T14:30:14.000Z",
    ]
    assert "1 rejected" in result.stderr  # the out-of-order row


def test_replay_of_the_sample_day_breaks_the_seed_levels() -> None:
    with_sample = run_cli(
        "replay", "--config", "alerts.toml", "--ticks", "service/data/sample_day.parquet"
    )
    assert with_sample.returncode == 0, with_sample.stderr
    fired = {json.loads(line)["rule"] for line in with_sample.stdout.splitlines()}
    assert {
        "iwm-above-265",
        "iwm-below-255",
        "iwm-below-250",
        "spx-range",
        "rut-below-1900",
    } <= fired


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty"),
        (b"time,sym,px\n1,IWM,2\n", "missing column(s) ts, symbol, price"),
        (bytes(range(256)) * 40, "not a readable CSV or Parquet tick file"),
        (b"PAR1 not really parquet", "not a readable CSV or Parquet tick file"),
    ],
)
def test_replay_when_tick_file_is_unusable_exits_2_with_a_message(
    data_dir: Path, tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "ticks.csv"
    path.write_bytes(content)
    result = run_cli("replay", "--config", str(data_dir / "iwm.toml"), "--ticks", str(path))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_replay_when_tick_file_missing_exits_2(data_dir: Path) -> None:
    result = run_cli(
        "replay", "--config", str(data_dir / "iwm.toml"), "--ticks", "/nonexistent.csv"
    )
    assert result.returncode == 2
    assert "/nonexistent.csv: no such file" in result.stderr


def large_tick_file(path: Path, rows: int) -> Path:
    start = 1_770_042_600_000
    pl.DataFrame(
        {
            "ts": pl.int_range(start, start + rows, eager=True),
            "symbol": ["IWM"] * rows,
            "price": [259.0 + (i % 100) / 100 for i in range(rows)],
        }
    ).write_csv(path)
    return path


def test_replay_in_a_pipe_shows_no_progress_bar(data_dir: Path, tmp_path: Path) -> None:
    ticks = large_tick_file(tmp_path / "big.csv", 120_000)
    result = run_cli("replay", "--config", str(data_dir / "iwm.toml"), "--ticks", str(ticks))
    assert result.returncode == 0
    assert (
        result.stderr.strip()
        == "replay: 120,000 rows, 120,000 ticks evaluated, 0 rejected, 0 alerts"
    )


def test_replay_on_a_terminal_shows_a_progress_bar_for_a_large_file(
    data_dir: Path, tmp_path: Path
) -> None:
    ticks = large_tick_file(tmp_path / "big.csv", 120_000)
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [CLI, "replay", "--config", str(data_dir / "iwm.toml"), "--ticks", str(ticks)],
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        env={**os.environ, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(controller, 65536)
                except OSError:  # the terminal closed: the process ended
                    break
                if not chunk:
                    break
                seen += chunk
            elif process.poll() is not None:
                break
        assert process.wait(timeout=30) == 0
    finally:
        os.close(controller)
        if process.poll() is None:
            process.kill()
            process.wait()
    assert b"replaying big.csv" in seen
    assert b"120,000 ticks evaluated" in seen


# --- config errors ----------------------------------------------------------------------


@pytest.mark.parametrize("command", ["run", "replay", "check"])
def test_cli_when_config_is_bad_exits_2_without_traceback(command: str, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[rules]]\nid = "a"\nsymbol = "IWM"\nlevel = 255\ndirection = "down"\n')
    args = [command, "--config", str(config)]
    if command == "replay":
        args += ["--ticks", str(tmp_path / "whatever.csv")]
    result = run_cli(*args)
    assert result.returncode == 2
    assert 'rules[0].direction: expected "below" or "above", got "down"' in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_when_config_file_missing_exits_2(tmp_path: Path) -> None:
    result = run_cli("run", "--config", str(tmp_path / "absent.toml"))
    assert result.returncode == 2
    assert "file not found; pass --config PATH" in result.stderr


def test_check_summarises_a_good_config() -> None:
    result = run_cli("check", "--config", "alerts.toml")
    assert result.returncode == 0
    assert "alerts.toml: OK" in result.stdout
    assert "rules: 5 on IWM, RUT, SPX" in result.stdout


def test_check_describes_each_live_source(tmp_path: Path) -> None:
    config = tmp_path / "live.toml"
    config.write_text(
        """
[[sources]]
kind = "mqtt"
name = "broker"
url = "mqtt://127.0.0.1:1883"
topic = ["ticks/#", "fx/+"]

[[sources]]
kind = "websocket"
name = "vendor"
url = "wss://feed.example.com/stream"

[[sources]]
kind = "simulator"
name = "demo"
prices = { IWM = 260.0 }
rate = 2
"""
    )
    result = run_cli("check", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[2:5] == [
        "  source broker: mqtt mqtt://127.0.0.1:1883 topic ticks/#, fx/+ qos 1 "
        "as strykr-alerts-broker (persistent session)",
        "  source vendor: websocket feed wss://feed.example.com/stream",
        "  source demo: simulated random walk around IWM 260 at 2 ticks/s each",
    ]


# --- run ------------------------------------------------------------------------------------


def test_run_replays_a_source_logs_alerts_and_keeps_running_until_sigterm(
    start_service: StartService, data_dir: Path
) -> None:
    service = start_service("run", "--config", str(data_dir / "iwm.toml"))
    alerts = service.wait_for("alert_fired", count=3)
    assert [a["headline"] for a in alerts] == [
        "IWM broke above 265.00 at 265.20",
        "IWM broke below 255.00 at 254.60",
        "IWM broke below 255.00 at 254.50",
    ]
    (finished,) = service.wait_for("replay_finished")
    assert (finished["ticks"], finished["rejected"]) == (8, 3)
    assert service.stop(signal.SIGTERM) == 0
    # It stopped because it was asked to, not because the replay ended: the signal
    # is logged first (a process that had exited on its own could not log it).
    events = [e["event"] for e in service.events]
    assert events[-3:] == ["signal_received", "service_stopping", "service_stopped"]
    (stopped,) = service.wait_for("service_stopped")
    assert (stopped["ticks"], stopped["alerts"], stopped["rejected"]) == (7, 3, 4)


def test_run_stops_on_sigint_too(start_service: StartService, data_dir: Path) -> None:
    service = start_service("run", "--config", str(data_dir / "iwm.toml"))
    service.wait_for("replay_finished")
    assert service.stop(signal.SIGINT) == 0


def shipped_config_in(directory: Path) -> Path:
    """The shipped alerts.toml: its journal in ``directory``, its hub and HTTP on free ports."""
    text = (REPO / "alerts.toml").read_text()
    for old, new in (
        ('journal = "var/alerts.db"', f'journal = "{directory / "alerts.db"}"'),
        ("port = 8765", "port = 0"),
        ("port = 8080", "port = 0"),
        ('dir = "articles"', f'dir = "{REPO / "articles"}"'),
    ):
        assert old in text, f"alerts.toml no longer has {old!r}; update this test"
        text = text.replace(old, new)
    path = directory / "alerts.toml"
    path.write_text(text)
    return path


def test_run_without_sources_replays_the_sample_day_and_alerts_within_a_minute(
    start_service: StartService, tmp_path: Path
) -> None:
    started = time.monotonic()
    service = start_service("run", "--config", str(shipped_config_in(tmp_path)))
    (hello,) = service.wait_for("service_started")
    assert "bundled sample day" in str(hello["note"])
    # The first line on the terminal says where the dashboard is, and it is there.
    assert service.process.stdout is not None
    line = service.process.stdout.readline()
    match = re.fullmatch(
        r"strykr-alerts: dashboard at (http://127\.0\.0\.1:\d+/)  \(Ctrl-C stops\)\n", line
    )
    assert match, line
    with urllib.request.urlopen(match.group(1), timeout=5) as page:  # noqa: S310 (http only)
        assert "Get Real-Time Alerts" in page.read().decode()
    (first,) = service.wait_for("alert_fired", timeout=60)
    assert time.monotonic() - started < 60
    assert first["headline"] == "IWM broke above 265.00 at 265.05"
    assert service.stop() == 0


@pytest.mark.parametrize(
    ("table", "server", "others"),
    [("websocket", "the websocket hub", "[http]\nport = 0\n"), ("http", "the HTTP server", "")],
)
def test_run_with_a_port_taken_says_which_and_exits_1(
    tmp_path: Path, table: str, server: str, others: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "alerts.toml"
        hub = "" if table == "websocket" else "[websocket]\nport = 0\n\n"
        config.write_text(f"{hub}{others}\n[{table}]\nport = {port}\n")
        result = run_cli("run", "--config", str(config))
    assert result.returncode == 1
    assert f"{server} cannot listen on 127.0.0.1:{port}" in result.stderr
    assert f"set [{table}] port" in result.stderr
    assert "Traceback" not in result.stderr


async def test_check_says_which_rules_are_done_paused_or_expired(
    tmp_path: Path, data_dir: Path
) -> None:
    config = tmp_path / "lifecycle.toml"
    config.write_text(
        f"""
[service]
journal = "{tmp_path / "alerts.db"}"
stats_seconds = 0
[websocket]
enabled = false
[http]
enabled = false
[[sources]]
kind = "replay"
path = "{data_dir / "iwm_day.csv"}"
speed = 0
[[rules]]
id = "once"
symbol = "IWM"
condition = "cross_below"
level = 255
frequency = "once"
[[rules]]
id = "resting"
symbol = "IWM"
condition = "greater_than"
level = 300
paused = true
[[rules]]
id = "old"
symbol = "IWM"
condition = "cross_above"
level = 'high("30m")'
expires = 2026-02-02T14:30:02Z
"""
    )
    before = run_cli("check", "--config", str(config))
    assert before.returncode == 0, before.stderr
    assert "    once: IWM cross_below 255.00 (once): active" in before.stdout
    app = build(load_config(config))
    async with running(app):
        # Eight good rows, one of them out of order (rejected by the engine).
        await eventually(lambda: app.processor.ticks == 7, what="the sample day replayed")
    after = run_cli("check", "--config", str(config))
    assert after.returncode == 0, after.stderr
    lines = [line.strip() for line in after.stdout.splitlines() if line.startswith("    ")]
    assert lines == [
        "once: IWM cross_below 255.00 (once): done",
        "resting: IWM greater_than 300.00 (once): paused",
        'old: IWM cross_above high("30m"): expired (at 2026-02-02T14:30:02.000Z)',
    ]
