"""The benchmarks still run against today's code: each, on a small load, to its summary.

Only that they run and say what they measured: speed is never asserted in
tests (docs/benchmarks.md has the figures).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SMALL = {
    "engine": (["--ticks", "20000", "--symbols", "50", "--repeat", "1"], "goal: engine"),
    "checkpoint": (["--ticks", "20000", "--symbols", "50", "--repeat", "1"], "goal: restore"),
    "ingest": (["--ticks", "2000", "--repeat", "1"], "of bare"),
    "fanout": (["--clients", "20", "--alerts", "200"], "hub/bare rate"),
    "cluster": (
        "--deliveries 200 --ticks 20000 --symbols 50 --clients 5 --alerts 50 --repeat 1".split(),
        "gateway / hub rate",
    ),
}


def test_every_benchmark_is_run_here() -> None:
    assert {path.stem for path in BENCH.glob("*.py")} == set(SMALL)


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_benchmark_runs_to_its_summary_on_a_small_load(name: str) -> None:
    arguments, summary = SMALL[name]
    done = subprocess.run(
        [sys.executable, str(BENCH / f"{name}.py"), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # Exit status 1 can mean a goal missed on this small load; a traceback never.
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.returncode in (0, 1)
    assert summary in done.stdout
