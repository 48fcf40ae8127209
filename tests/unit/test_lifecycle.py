"""Running tasks: supervision by policy, and the shutdown in its declared order."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from service.errors import TaskFailedError
from service.lifecycle import Step, Task, run
from tests.clock import FakeClock
from tests.waiting import eventually


async def test_a_task_that_fails_is_restarted_with_growing_waits_and_a_line_each_time() -> None:
    clock = FakeClock()
    stop = asyncio.Event()
    starts = 0

    async def flaky() -> None:
        nonlocal starts
        starts += 1
        raise OSError("link refused")

    task = Task("source:broker", flaky, group="sources", failed_event="source_failed",
                context={"source": "broker"})  # fmt: skip
    with structlog.testing.capture_logs() as logs:
        running = asyncio.create_task(
            run([task], [Step("sources", group="sources")], stop, clock=clock)
        )
        for expected in (1, 2, 3):
            await eventually(lambda n=expected: starts == n and clock.next_due_s() is not None)
            clock.advance(clock.next_due_s() or 0.0)
        stop.set()
        await asyncio.wait_for(running, 5)
    failures = [line for line in logs if line["event"] == "source_failed"]
    assert len(failures) >= 3
    assert failures[0]["source"] == "broker"
    assert failures[0]["error"] == "link refused"
    waits = [line["restart_in_s"] for line in failures[:3]]
    assert 0.5 <= waits[0] <= 1.0
    assert 1.0 <= waits[1] <= 2.0
    assert 2.0 <= waits[2] <= 4.0


async def test_a_vital_task_that_fails_stops_the_service_with_a_clear_error() -> None:
    stop = asyncio.Event()
    others_stopped = asyncio.Event()

    async def engine() -> None:
        raise KeyError("a bug")

    async def source() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            others_stopped.set()

    tasks = [
        Task("engine", engine, group="engine", on_failure="stop"),
        Task("source:feed", source, group="sources"),
    ]
    steps = [Step("sources", group="sources"), Step("engine", group="engine")]
    with structlog.testing.capture_logs() as logs, pytest.raises(TaskFailedError) as failed:
        await asyncio.wait_for(run(tasks, steps, stop, clock=FakeClock()), 5)
    assert failed.value.task == "engine"
    assert "the engine task failed (KeyError: 'a bug'); the service stopped" in str(failed.value)
    assert others_stopped.is_set()
    [line] = [line for line in logs if line["event"] == "task_failed"]
    assert line["action"] == "stopping the service"


async def test_shutdown_runs_its_steps_in_their_order() -> None:
    stop = asyncio.Event()
    order: list[str] = []

    started: list[str] = []

    def until_cancelled(name: str) -> Task:
        async def work() -> None:
            started.append(name)
            try:
                await asyncio.Event().wait()
            finally:
                order.append(f"{name} ended")

        return Task(name, work, group=name)

    async def finish_delivery() -> None:
        order.append("delivery asked to finish")

    async def drain() -> None:
        order.append("drained")

    tasks = [until_cancelled(name) for name in ("sources", "engine", "delivery")]
    steps = [
        Step("sources", group="sources", grace_s=1.0),
        Step("drain", first=drain),
        Step("engine", group="engine"),
        Step("delivery", group="delivery", grace_s=0.1, first=finish_delivery, wait=True),
    ]
    running = asyncio.create_task(run(tasks, steps, stop, clock=FakeClock()))
    await eventually(lambda: len(started) == 3)
    stop.set()
    await asyncio.wait_for(running, 5)
    assert order == [
        "sources ended",
        "drained",
        "engine ended",
        "delivery asked to finish",
        "delivery ended",  # it did not end by itself within its grace: cancelled
    ]


async def test_a_task_that_ends_by_itself_is_not_restarted() -> None:
    stop = asyncio.Event()
    runs = 0

    async def replay() -> None:
        nonlocal runs
        runs += 1

    running = asyncio.create_task(
        run([Task("source:file", replay, group="sources")], [], stop, clock=FakeClock())
    )
    await eventually(lambda: runs == 1)
    stop.set()
    await asyncio.wait_for(running, 5)
    assert runs == 1
