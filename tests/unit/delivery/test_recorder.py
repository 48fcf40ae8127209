"""The journal stage: when it commits, what a commit holds, and whom it tells after."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.delivery.recorder import AlertRecorder, CommitPolicy
from service.journal.records import Checkpoint, Planned
from service.journal.sqlite import SqliteJournal
from service.models import AlertEvent, Receipt
from service.processing.batch import Batch
from service.processing.checkpoint import StateChange
from tests.builders import alert_at, tick
from tests.clock import FakeClock

POLICY = CommitPolicy(every_ticks=10, within_s=0.02, state_within_s=1.0)


class Settled:
    """What the recorder told the sources, in order: (source, receipts) per call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[int]]] = []

    def __call__(self, source: str, receipts: Sequence[int]) -> None:
        self.calls.append((source, list(receipts)))

    @property
    def receipts(self) -> list[int]:
        return [receipt for _, receipts in self.calls for receipt in receipts]


@pytest.fixture
def journal() -> Iterator[SqliteJournal]:
    journal = SqliteJournal(":memory:")
    journal.open()
    yield journal
    journal.close()


def recorder_for(
    journal: SqliteJournal, clock: FakeClock, settled: Settled, state: dict[str, str]
) -> AlertRecorder:
    def take_state() -> StateChange:
        taken = dict(state)
        state.clear()
        return StateChange(taken)

    return AlertRecorder(
        journal,
        lambda _alert: [Planned(subscriber="ops", channel="webhook", target="https://h/x")],
        state=take_state,
        positions={"file": lambda row: f"f:{row}"},
        settle=settled,
        policy=POLICY,
        clock=clock,
    )


def batch(count: int, receipts: Sequence[Receipt] = (), alerts: Sequence[AlertEvent] = ()) -> Batch:
    return Batch([tick(256.0, i) for i in range(count)], alerts, None, receipts)


def test_ticks_without_alerts_wait_for_a_commit_until_it_is_due(journal: SqliteJournal) -> None:
    clock, settled, state = FakeClock(), Settled(), {"IWM": "s1"}
    recorder = recorder_for(journal, clock, settled, state)
    recorder(batch(3, [("mqtt", 1), ("mqtt", 2)]))
    assert (recorder.commits, settled.calls) == (0, [])
    assert journal.load_checkpoint().symbols == {}
    clock.advance(0.019)
    assert recorder.due_in() == pytest.approx(0.001)
    clock.advance(0.001)
    assert recorder.due_in() == pytest.approx(0.0)
    assert recorder.commit() == []
    assert settled.calls == [("mqtt", [1, 2])]
    assert journal.load_checkpoint().symbols == {"IWM": "s1"}
    assert recorder.due_in() is None  # nothing waits
    assert recorder.commit() == []
    assert recorder.commits == 1


def test_ticks_no_source_waits_for_are_committed_within_the_longer_bound(
    journal: SqliteJournal,
) -> None:
    recorder = recorder_for(journal, FakeClock(), Settled(), {"IWM": "s"})
    recorder(batch(3))
    assert recorder.due_in() == pytest.approx(1.0)


def test_every_ticks_ticks_commit_at_once(journal: SqliteJournal) -> None:
    settled = Settled()
    recorder = recorder_for(journal, FakeClock(), settled, {})
    recorder(batch(6, [("mqtt", 1)]))
    recorder(batch(4, [("mqtt", 2)]))
    assert recorder.commits == 1
    assert settled.receipts == [1, 2]


def test_a_batch_with_alerts_commits_them_with_the_state_and_then_settles(
    journal: SqliteJournal,
) -> None:
    settled, state = Settled(), {"IWM": "armed"}
    recorder = recorder_for(journal, FakeClock(), settled, state)
    recorder(batch(1, [("mqtt", 7)]))
    stored = recorder(batch(1, [("file", 41), ("mqtt", 8), ("file", 42)], [alert_at(1)]))
    assert [alert.id for alert in stored.alerts] == [alert_at(1).id]
    assert [alert["id"] for alert in journal.alerts_after(None, None)] == [alert_at(1).id]
    assert [d.alert_id for d in journal.deliveries()] == [alert_at(1).id]
    checkpoint = journal.load_checkpoint()
    assert checkpoint.symbols == {"IWM": "armed"}
    assert checkpoint.positions == {"file": "f:42"}  # the last row of the file's, as it goes
    # Told in the order the receipts came, a call per run of one source.
    assert settled.calls == [("mqtt", [7]), ("file", [41]), ("mqtt", [8]), ("file", [42])]


def test_an_alert_stored_before_is_neither_stored_nor_passed_on_again(
    journal: SqliteJournal,
) -> None:
    recorder = recorder_for(journal, FakeClock(), Settled(), {})
    recorder(batch(1, alerts=[alert_at(1)]))
    again = recorder(batch(1, alerts=[alert_at(1), alert_at(2)]))
    assert [alert.id for alert in again.alerts] == [alert_at(2).id]


def test_a_refused_commit_holds_everything_and_tells_no_source(journal: SqliteJournal) -> None:
    clock, settled, state = FakeClock(), Settled(), {"IWM": "s1"}
    recorder = recorder_for(journal, clock, settled, state)
    journal.refuse_writes(True)
    stored = recorder(batch(2, [("mqtt", 1)], [alert_at(1)]))
    assert (list(stored.alerts), recorder.failing, recorder.holding) == ([], True, 1)
    state["SPY"] = "s2"
    recorder(batch(1, [("mqtt", 2)], [alert_at(2)]))  # tried again: refused again
    assert recorder.commit() == []
    assert (settled.calls, recorder.failing, recorder.holding, recorder.failures) == (
        [],
        True,
        2,
        3,
    )
    journal.refuse_writes(False)
    assert [alert.id for alert in recorder.commit()] == [alert_at(1).id, alert_at(2).id]
    assert (recorder.failing, recorder.holding) == (False, 0)
    assert settled.receipts == [1, 2]
    assert journal.load_checkpoint().symbols == {"IWM": "s1", "SPY": "s2"}
    assert [alert["id"] for alert in journal.alerts_after(None, None)] == [
        alert_at(1).id,
        alert_at(2).id,
    ]


@given(st.lists(st.tuples(st.integers(0, 30), st.booleans(), st.booleans()), max_size=30))
def test_a_receipt_is_settled_only_by_a_commit_after_its_tick_and_each_once(
    steps: list[tuple[int, bool, bool]],
) -> None:
    """Batches (ticks, fired, journal writable) in any order: no receipt settles uncovered."""
    journal = SqliteJournal(":memory:")
    journal.open()
    try:
        clock, settled = FakeClock(), Settled()
        recorder = recorder_for(journal, clock, settled, {})
        put = 0
        covered = 0  # receipts put before the last commit that went through
        for count, fired, writable in steps:
            journal.refuse_writes(not writable)
            receipts = [("mqtt", put + i) for i in range(count)]
            put += count
            commits = recorder.commits
            recorder(batch(count, receipts, [alert_at(put)] if fired else []))
            if recorder.commits > commits:
                covered = put
            assert settled.receipts == list(range(covered))
        journal.refuse_writes(False)
        recorder.commit()
        assert settled.receipts == list(range(put))
    finally:
        journal.close()


def test_a_refused_commit_keeps_the_tick_log_in_order_and_states_in_full_start_it_over(
    journal: SqliteJournal,
) -> None:
    changes = iter(
        [
            StateChange({}, ("t1",)),
            StateChange({"IWM": "full"}, reset_log=True),
            StateChange({}, ("t2",)),
            StateChange({}, ("t3",)),
        ]
    )
    recorder = AlertRecorder(journal, lambda _alert: [], state=lambda: next(changes))
    journal.refuse_writes(True)
    recorder(batch(1, alerts=[alert_at(1)]))  # t1: refused
    assert recorder.commit() == []  # t1, then the states in full (they cover t1): refused
    journal.refuse_writes(False)
    recorder.commit()  # the states in full, then t2
    assert journal.load_checkpoint().ticks == ("t2",)
    assert journal.load_checkpoint().symbols == {"IWM": "full"}
    recorder(batch(1, alerts=[alert_at(2)]))
    assert journal.load_checkpoint().ticks == ("t2", "t3")


@given(
    st.lists(
        st.tuples(
            st.dictionaries(st.sampled_from("ABC"), st.text(max_size=2), max_size=2),
            st.lists(st.text(max_size=2), max_size=2),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_changes_held_together_store_what_they_store_one_by_one(
    parts: list[tuple[dict[str, str], list[str], bool]],
) -> None:
    changes = [StateChange(symbols, tuple(ticks), reset) for symbols, ticks, reset in parts]

    def stored(commits: list[StateChange]) -> tuple[dict[str, str], tuple[str, ...]]:
        journal = SqliteJournal(":memory:")
        journal.open()
        for change in commits:
            checkpoint = Checkpoint(
                symbols=change.symbols, ticks=change.ticks, reset_log=change.reset_log
            )
            journal.record_alerts([], now_ns=0, checkpoint=checkpoint)
        loaded = journal.load_checkpoint()
        journal.close()
        return dict(loaded.symbols), tuple(loaded.ticks)

    held = changes[0]
    for change in changes[1:]:
        held = held.then(change)
    assert stored([held]) == stored(changes)
