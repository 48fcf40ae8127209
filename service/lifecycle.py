"""Running the built service: its resources, its named tasks, their supervision, its shutdown.

Resources (the journal, the servers' sockets) are opened in order in one
``AsyncExitStack`` and always closed. Every long-running piece of work is a
named task in one ``TaskGroup``, supervised by its policy: a task that can
start over (a source, a channel's connection, a timer) is restarted with
capped, jittered backoff and a ``task_failed`` (or ``source_failed``) line
each time; one the service cannot run without (the engine) stops the service
with a clear error and exit status 1. No task is ever silently gone.

Stopping follows the steps it is given, in order (the service's are
:func:`service.running.shutdown`); each ends a group of tasks, politely
first, then by cancelling; all within a few seconds, well inside an
orchestrator's stop timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import structlog

from service.backoff import retry_delay
from service.clock import Clock
from service.errors import TaskFailedError

log = structlog.get_logger("service.lifecycle")

Policy = Literal["restart", "stop"]
# A task that fails again waits this long before its next start, doubling up to the cap.
RESTART_INITIAL_S = 1.0
RESTART_MAX_S = 60.0


@dataclass(frozen=True, slots=True)
class Task:
    """A long-running piece of work: its name, what to run, what to do when it fails."""

    name: str
    work: Callable[[], Coroutine[Any, Any, None]]
    group: str  # the shutdown step that stops it
    on_failure: Policy = "restart"
    failed_event: str = "task_failed"  # the log line of a failure
    context: Mapping[str, str] = field(default_factory=dict)  # more for that line


@dataclass(frozen=True, slots=True)
class Step:
    """One step of the shutdown: what it does first, then the group of tasks it ends.

    With ``wait`` the group's tasks get ``grace_s`` to end by themselves (after
    ``first`` asked them to); without it they are cancelled at once and those
    still running after ``grace_s`` are cancelled again.
    """

    name: str
    group: str | None = None
    grace_s: float = 0.0
    first: Callable[[], Awaitable[None]] | None = None
    wait: bool = False


async def run(
    tasks: Sequence[Task],
    shutdown: Sequence[Step],
    stop: asyncio.Event,
    *,
    clock: Clock,
) -> None:
    """Run ``tasks`` until ``stop`` is set (or a vital one fails), then shut down in order.

    Raises :class:`~service.errors.TaskFailedError` after the shutdown when a
    task with the ``stop`` policy failed.
    """
    failure: list[TaskFailedError] = []
    groups: dict[str, list[asyncio.Task[None]]] = {}
    async with asyncio.TaskGroup() as group:
        for task in tasks:
            groups.setdefault(task.group, []).append(
                group.create_task(_supervised(task, stop, failure, clock), name=task.name)
            )
        await stop.wait()
        log.info("service_stopping")
        for step in shutdown:
            if step.first is not None:
                await step.first()
            members = groups.get(step.group or "", [])
            if step.wait and members:
                _, unfinished = await asyncio.wait(members, timeout=step.grace_s)
                members = list(unfinished)
            await _cancel(members, grace=step.grace_s)
    if failure:
        raise failure[0]


async def _supervised(
    task: Task, stop: asyncio.Event, failure: list[TaskFailedError], clock: Clock
) -> None:
    attempt = 0
    while True:
        try:
            await task.work()
            return  # done (a replay that finished): nothing to restart
        except asyncio.CancelledError:
            raise
        except Exception as error:
            detail = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
            if task.on_failure == "stop":
                log.error(
                    task.failed_event,
                    task=task.name,
                    **task.context,
                    error=detail,
                    action="stopping the service",
                    exc_info=True,
                )
                failure.append(TaskFailedError(task.name, detail))
                stop.set()
                return
            attempt += 1
            delay = retry_delay(attempt, initial=RESTART_INITIAL_S, maximum=RESTART_MAX_S)
            log.error(
                task.failed_event,
                task=task.name,
                **task.context,
                error=str(error) or type(error).__name__,
                restart_in_s=round(delay, 2),
                exc_info=True,
            )
            await clock.sleep(delay)


async def _cancel(tasks: Sequence[asyncio.Task[None]], *, grace: float) -> None:
    """Cancel ``tasks``; cancel again those still running after ``grace`` seconds."""
    for task in tasks:
        task.cancel()
    if not tasks:
        return
    if grace > 0:
        _, pending = await asyncio.wait(tasks, timeout=grace)
        for task in pending:
            log.warning("task_slow_to_stop", task=task.get_name(), grace_s=grace)
            task.cancel()
    else:
        pending = {task for task in tasks if not task.done()}
    if pending:
        await asyncio.wait(pending)
