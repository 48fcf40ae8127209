"""Recovery in the engine task: restored from a commit, then sent again what came after it.

After a crash the broker sends again every message not acknowledged, and
acknowledgements go only after the commit covering their ticks, so the
restarted engine gets again some ticks its restored state already holds
(their acknowledgement was lost) and every tick it does not. It must skip
the first and evaluate the second, and so fire exactly what one run fires.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from service.journal.records import Checkpoint
from service.journal.sqlite import SqliteJournal
from service.models import Rule, Tick
from service.processing.checkpoint import STATE_EVERY_S, EngineCheckpoint, StateChange
from service.processing.engine_task import TickProcessor
from service.rules import RuleEngine
from service.rules.stale import StaleFeedWatch
from service.streams.rejections import Rejections
from tests.builders import tick
from tests.clock import FakeClock
from tests.unit.rules.test_engine_checkpoint import rules_with_bars
from tests.unit.rules.test_engine_properties import tick_streams


def processor(rules: list[Rule], clock: FakeClock | None = None) -> TickProcessor:
    engine = RuleEngine(rules)
    checkpoint = EngineCheckpoint(engine, clock=clock or FakeClock())
    return TickProcessor(engine, Rejections(), checkpoint=checkpoint)


def commit(journal: SqliteJournal, change: StateChange) -> None:
    """Store ``change`` as the journal stage does."""
    checkpoint = Checkpoint(symbols=change.symbols, ticks=change.ticks, reset_log=change.reset_log)
    journal.record_alerts([], now_ns=0, checkpoint=checkpoint)


def restored(rules: list[Rule], journal: SqliteJournal) -> TickProcessor:
    stored = journal.load_checkpoint()
    after = processor(rules)
    after.restore(stored.symbols, stored.ticks)
    return after


@st.composite
def in_time_order(draw: st.DrawFn) -> list[Tick]:
    """The engine's property-test streams (ties of time, outliers), each print once.

    A print identical to an earlier one (symbol, time and price) is the same
    tick sent again, for the sources and for recovery alike.
    """
    seen: set[tuple[str, int, float]] = set()
    ticks = []
    for tick_ in draw(tick_streams()):
        key = (tick_.symbol, tick_.ts_ns, tick_.price)
        if key not in seen:
            seen.add(key)
            ticks.append(tick_)
    return ticks


@settings(max_examples=300, deadline=None)
@given(
    rules=rules_with_bars(),
    ticks=in_time_order(),
    commits=st.lists(st.sampled_from(["none", "log", "full"]), min_size=1, max_size=40),
    crash=st.integers(0, 40),
    resent=st.integers(0, 80),
    batch=st.integers(1, 10),
)
def test_a_restart_from_any_commit_fires_exactly_what_one_run_fires(
    rules: list[Rule],
    ticks: list[Tick],
    commits: list[str],
    crash: int,
    resent: int,
    batch: int,
) -> None:
    """Batches with commits of the log or of the states in full; a crash; the broker resends.

    A batch that fires commits at once, as the journal stage does. Whatever the
    engine evaluated after the last commit is lost with the process.
    """
    one_run = [alert.id for alert in processor(rules).process(ticks)]
    clock = FakeClock()
    before = processor(rules, clock)
    assert before.checkpoint is not None
    journal = SqliteJournal(":memory:")
    journal.open()
    fired: list[str] = []
    uncommitted: list[str] = []
    committed = 0
    batches = [ticks[i : i + batch] for i in range(0, len(ticks), batch)]
    for index, part in enumerate(batches[: min(crash, len(batches))]):
        uncommitted += [alert.id for alert in before.process(part)]
        kind = commits[index % len(commits)]
        if kind != "none" or uncommitted:
            if kind == "full":
                clock.advance(STATE_EVERY_S)
            commit(journal, before.checkpoint.take())
            fired += uncommitted
            uncommitted = []
            committed = min(len(ticks), (index + 1) * batch)
    after = restored(rules, journal)
    start = max(0, committed - resent)  # the broker sends again from the first unacknowledged
    for index in range(start, len(ticks), batch):
        fired += [alert.id for alert in after.process(ticks[index : index + batch])]
    journal.close()
    assert fired == one_run


def test_ticks_sent_again_are_counted_by_source_not_evaluated_nor_rejected() -> None:
    rules: list[Rule] = []
    before = processor(rules)
    before.process([tick(256.0, 0), tick(255.5, 1), tick(255.2, 2)], source="broker")
    assert before.checkpoint is not None
    change = before.checkpoint.take()  # the ticks, as a log entry: no state in full yet
    assert (change.symbols, len(change.ticks), change.reset_log) == ({}, 1, False)
    after = processor(rules)
    after.restore(change.symbols, change.ticks)
    sent_again = [tick(255.5, 1), tick(255.2, 2)]
    after.process([*sent_again, tick(255.1, 3), tick(254.0, 4)], source="broker")
    assert after.redelivered == {"broker": 2}
    assert (after.ticks, after.rejections.total) == (2, 0)
    # Past the first new tick, time order is the engine's again: an older tick is refused.
    after.process([tick(255.0, 3.5)], source="broker")
    assert (after.redelivered["broker"], after.rejections.counts["out_of_order"]) == (2, 1)


def test_the_stale_watch_is_restored_counting_quiet_time_from_start_up_at_the_earliest() -> None:
    engine = RuleEngine([])
    stale = StaleFeedWatch(120, now_ns=tick(0, 0).ts_ns)
    checkpoint = EngineCheckpoint(engine, stale)
    processor = TickProcessor(engine, Rejections(), checkpoint=checkpoint)
    processor.process([tick(256.0, 0), tick(500.0, 1, symbol="SPY")])
    stale.observe([tick(256.0, 0)], tick(0, 5).ts_ns)
    stale.observe([tick(500.0, 1, symbol="SPY")], tick(0, 100).ts_ns)
    assert [alert.symbol for alert in stale.check(tick(0, 125).ts_ns)] == ["IWM"]
    checkpoint.mark_all()
    change = checkpoint.take()
    assert (set(change.symbols), change.reset_log) == ({"IWM", "SPY"}, True)

    def restarted_at(seconds: float) -> StaleFeedWatch:
        watch = StaleFeedWatch(120, now_ns=tick(0, seconds).ts_ns)
        EngineCheckpoint(RuleEngine([]), watch).restore(change.symbols)
        return watch

    # IWM stays stale: no second alert. SPY's quiet time counts from start-up (130 s),
    # not from its last tick (100 s): the service's own downtime is not the feed's.
    soon = restarted_at(130)
    assert soon.check(tick(0, 249).ts_ns) == []
    assert [alert.symbol for alert in soon.check(tick(0, 250).ts_ns)] == ["SPY"]
    late = restarted_at(600)
    assert late.check(tick(0, 719).ts_ns) == []
    assert [alert.symbol for alert in late.check(tick(0, 720).ts_ns)] == ["SPY"]
