"""What crash-exact recovery costs: checkpointing on the engine's market stream, and a restart.

The market stream of bench/engine.py (1,000 symbols with 3 level rules each,
as a Strykr Watch reads them) goes, in the same run, interleaved, through:

  engine          the engine alone (``on_ticks``, batches of 256): the floor;
  task            the engine task's path, no journal (what a run without a
                  checkpoint would do);
  checkpointed    the same, committed to a SQLite journal on disk (WAL,
                  synchronous = FULL) every ``commit_every_ticks`` ticks, as
                  the service does under load: the ticks appended to the
                  tick log at each commit, the changed symbols' states
                  written in full once a second.

Then the restart, in its worst case: the journal of a run over the whole
stream (every symbol with a state, a third of the rules closing on 1-minute
bars, with bars in progress, and a tick log all but full) is opened, its
states restored into a new engine of the same 3,000 rules and its log
evaluated again. Goal: under 1 s.

    .venv/bin/python bench/checkpoint.py [--ticks 1000000] [--symbols 1000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import logging
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import structlog
from engine import SCENARIOS, build, engine_batched, service_engine

from service.clock import SYSTEM_CLOCK, Clock, SystemClock
from service.delivery.recorder import AlertRecorder, CommitPolicy
from service.journal.sqlite import SqliteJournal
from service.models import LevelRule, Tick
from service.processing.batch import Stages
from service.processing.checkpoint import LOG_LIMIT_TICKS, EngineCheckpoint
from service.processing.engine_task import BATCH_SIZE, TickProcessor
from service.rules.settings import EngineConfig
from service.streams.rejections import Rejections

RESTORE_GOAL_S = 1.0

Loop = Callable[[list[LevelRule], list[Tick], Path], tuple[int, int]]


def engine_alone(rules: list[LevelRule], ticks: list[Tick], _directory: Path) -> tuple[int, int]:
    return engine_batched(rules, ticks), 0


def task(rules: list[LevelRule], ticks: list[Tick], _directory: Path) -> tuple[int, int]:
    processor = TickProcessor(service_engine(rules), Rejections())
    alerts = 0
    for start in range(0, len(ticks), BATCH_SIZE):
        alerts += len(processor.process(ticks[start : start + BATCH_SIZE]))
    return alerts, 0


def checkpointed(rules: list[LevelRule], ticks: list[Tick], directory: Path) -> tuple[int, int]:
    journal = SqliteJournal(directory / f"alerts-{time.monotonic_ns()}.db")
    journal.open()
    try:
        processor, recorder = checkpointed_processor(rules, journal)
        alerts = 0
        for start in range(0, len(ticks), BATCH_SIZE):
            alerts += len(processor.process(ticks[start : start + BATCH_SIZE]))
        recorder.commit()
        return alerts, recorder.commits
    finally:
        journal.close()


def checkpointed_processor(
    rules: list[LevelRule], journal: SqliteJournal, clock: Clock = SYSTEM_CLOCK
) -> tuple[TickProcessor, AlertRecorder]:
    """The engine task's processor and journal stage, as the service wires them."""
    engine = service_engine(rules)
    checkpoint = EngineCheckpoint(engine, clock=clock)
    recorder = AlertRecorder(
        journal,
        lambda _alert: [],
        state=checkpoint.take,
        policy=CommitPolicy(every_ticks=EngineConfig().commit_every_ticks),
    )
    stages = Stages([("journal", recorder)])
    return TickProcessor(engine, Rejections(), stages=stages, checkpoint=checkpoint), recorder


def measure(
    loop: Loop, rules: list[LevelRule], ticks: list[Tick], directory: Path
) -> tuple[float, int, int]:
    gc.collect()
    gc.disable()
    try:
        started = time.perf_counter()
        alerts, commits = loop(rules, ticks, directory)
        elapsed = time.perf_counter() - started
    finally:
        gc.enable()
    return len(ticks) / elapsed, alerts, commits


class StoppedClock(SystemClock):
    """A clock whose monotonic time stands still: the states are written only at the log's limit."""

    def monotonic(self) -> float:
        return 0.0


def restart(rules: list[LevelRule], ticks: list[Tick], directory: Path) -> tuple[float, int, int]:
    """Seconds to open a journal and restore its checkpoint; ticks in its log; bytes of state.

    The worst case: every symbol has a state, a third of the rules close on
    1-minute bars (bars in progress), and the tick log is all but full.
    """
    mixed = [
        dataclasses.replace(rule, trigger="bar_close", bar="1m") if index % 3 == 2 else rule
        for index, rule in enumerate(rules)
    ]
    path = directory / f"restart-{time.monotonic_ns()}.db"
    journal = SqliteJournal(path)
    journal.open()
    processor, recorder = checkpointed_processor(mixed, journal, StoppedClock())
    checkpoint = processor.checkpoint
    assert checkpoint is not None
    logged = min(LOG_LIMIT_TICKS - BATCH_SIZE, len(ticks) // 2)
    for start in range(0, len(ticks), BATCH_SIZE):
        if start <= len(ticks) - logged < start + BATCH_SIZE:
            checkpoint.mark_all()  # every state in full; the log starts over
        processor.process(ticks[start : start + BATCH_SIZE])
    recorder.commit()
    journal.close()
    gc.collect()
    started = time.perf_counter()
    journal = SqliteJournal(path)
    journal.open()
    stored = journal.load_checkpoint()
    engine = service_engine(mixed)
    restored = TickProcessor(engine, Rejections(), checkpoint=EngineCheckpoint(engine))
    restored.restore(stored.symbols, stored.ticks)
    elapsed = time.perf_counter() - started
    journal.close()
    size = sum(len(text) for text in stored.symbols.values())
    assert len(engine.symbols()) == len(stored.symbols)
    in_log = sum(text.count("],[") + 1 for text in stored.ticks)
    return elapsed, in_log, size


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--ticks", type=int, default=1_000_000)
    parser.add_argument("--symbols", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each loop; the best counts")
    args = parser.parse_args()
    # The journal's and the engine's info lines (a line per restore) are not the figures.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rules, ticks = build(SCENARIOS["market"], args.symbols, args.ticks)
    loops: dict[str, Loop] = {
        f"engine.on_ticks, batches of {BATCH_SIZE}": engine_alone,
        "engine task, no checkpoint": task,
        "engine task, checkpointed to SQLite": checkpointed,
    }
    print(
        f"python {platform.python_version()} on {platform.machine()}, market stream: "
        f"{args.symbols:,} symbols x 3 level rules, {args.ticks:,} ticks, best of {args.repeat}"
    )
    best: dict[str, float] = {}
    outputs: dict[str, tuple[int, int]] = {}
    with tempfile.TemporaryDirectory(prefix="strykr-bench-checkpoint-") as name:
        directory = Path(name)
        for _ in range(args.repeat):  # interleaved: drift in machine load hits every loop alike
            for label, loop in loops.items():
                rate, alerts, commits = measure(loop, rules, ticks, directory)
                best[label] = max(best.get(label, 0.0), rate)
                outputs[label] = (alerts, commits)
        floor = best[f"engine.on_ticks, batches of {BATCH_SIZE}"]
        for label, rate in best.items():
            alerts, commits = outputs[label]
            print(
                f"  {label:38s} {rate / 1e6:6.2f} M ticks/s  {rate / floor:6.1%} of the engine"
                f"   ({alerts:,} alerts, {commits:,} commits)"
            )
        cost_us = (1 / best["engine task, checkpointed to SQLite"] - 1 / floor) * 1e6
        print(f"  checkpointing costs {cost_us:.2f} us a tick over the engine alone")
        timings = [restart(rules, ticks, directory) for _ in range(args.repeat)]
    elapsed, in_log, size = min(timings)
    verdict = "meets" if elapsed < RESTORE_GOAL_S else "MISSES"
    print(
        f"\nrestart: {args.symbols:,} symbols, {len(rules):,} rules ({size / 1e6:.2f} MB of "
        f"state) and {in_log:,} ticks in the log, restored in {elapsed * 1000:.0f} ms"
    )
    print(f"  goal: restore under {RESTORE_GOAL_S:g} s: {verdict}")
    return 0 if elapsed < RESTORE_GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
