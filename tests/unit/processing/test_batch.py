"""The walk of a batch through the stages: in order, each seeing what the last passed on."""

from __future__ import annotations

from collections.abc import Callable

import structlog

from service.models import AlertEvent
from service.processing.batch import Batch, Stages
from service.processing.stages import AlertCounts, each_alert, observe_latency
from tests.builders import alert_at, tick


def keep_first(batch: Batch) -> Batch:
    return batch.with_alerts(batch.alerts[:1])


def test_stages_run_in_order_each_seeing_what_the_one_before_passed_on() -> None:
    seen: list[tuple[str, int]] = []

    def record(name: str) -> Callable[[Batch], Batch]:
        def stage(batch: Batch) -> Batch:
            seen.append((name, len(batch.alerts)))
            return batch

        return stage

    stages = Stages([("a", record("a")), ("journal", keep_first), ("b", record("b"))])
    out = stages(Batch([tick(254.0)], [alert_at(1), alert_at(2)], received=5.0))
    assert seen == [("a", 2), ("b", 1)]
    assert out == Batch([tick(254.0)], [alert_at(1)], received=5.0)
    assert stages.names == ["a", "journal", "b"]


def test_a_failing_stage_ends_the_walk_of_its_batch_and_says_which() -> None:
    after: list[Batch] = []

    def broken(_batch: Batch) -> Batch:
        raise RuntimeError("disk on fire")

    stages = Stages([("journal", broken), ("hub", lambda b: after.append(b) or b)])
    with structlog.testing.capture_logs() as logs:
        out = stages(Batch([], [alert_at(1)]))
    assert after == []  # nothing after a failed journal sees the alert
    assert list(out.alerts) == []
    [line] = [line for line in logs if line["event"] == "stage_failed"]
    assert (line["stage"], line["alert_ids"]) == ("journal", [alert_at(1).id])
    assert stages.failures == 1
    # The next batch walks again.
    stages = Stages([("hub", lambda b: after.append(b) or b)])
    stages(Batch([], [alert_at(2)]))
    assert len(after) == 1


def test_a_sink_that_raises_is_logged_and_the_walk_goes_on() -> None:
    got: list[AlertEvent] = []

    def broken(_alert: AlertEvent) -> None:
        raise RuntimeError("sink down")

    stages = Stages([("broken", each_alert(broken)), ("list", each_alert(got.append))])
    with structlog.testing.capture_logs() as logs:
        stages(Batch([], [alert_at(1), alert_at(2)]))
    assert got == [alert_at(1), alert_at(2)]
    assert [line["event"] for line in logs] == ["alert_sink_failed", "alert_sink_failed"]


def test_counts_and_latency_see_every_alert_of_the_batch() -> None:
    counts = AlertCounts()
    timed: list[tuple[int, float]] = []
    stages = Stages(
        [
            ("count", counts),
            (
                "latency",
                observe_latency(lambda alerts, received: timed.append((len(alerts), received))),
            ),
        ]
    )
    stages(Batch([tick(254.0)], [alert_at(1), alert_at(2, "SPX")], received=3.5))
    stages(Batch([], [alert_at(3)]))  # a timer's alert: no tick, no latency
    assert counts.total == 3
    assert dict(counts.by) == {("IWM", "break_below"): 2, ("SPX", "break_below"): 1}
    assert timed == [(2, 3.5)]
