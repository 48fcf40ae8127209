"""What every tick source is to the rest of the service: a name, a run loop, and a snapshot."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from service.streams.queue import TickSink

SourceState = Literal[
    "starting",  # not yet connected, or not yet reading its file
    "connected",  # a live link is up and reading
    "disconnected",  # a live link is down; it is reconnecting
    "silent",  # connected, but the broker has sent nothing for longer than a live link allows
    "client_id_conflict",  # another connection keeps taking this MQTT client id over
    "replaying",  # a file is being replayed
    "finished",  # a replay is done: nothing more to send, and nothing wrong
    "running",  # a simulator runs
]
# States in which a source is doing its job (/readyz).
READY_STATES: frozenset[SourceState] = frozenset({"connected", "replaying", "finished", "running"})


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceSnapshot:
    """A source's state and counters at one moment: what readiness, metrics and stats read.

    A counter a source does not keep is ``None`` (a replay has no connections).
    """

    name: str
    state: SourceState
    problem: str | None = None  # why it is not ready, in words, beyond its state
    accepted: int = 0  # ticks it put into the queue
    received: int | None = None  # messages it read
    connections: int | None = None
    duplicates: int | None = None  # redeliveries dropped
    paused: int | None = None  # times it stopped reading (backpressure)

    @property
    def ready(self) -> bool:
        return self.problem is None and self.state in READY_STATES


class Source(Protocol):
    """A ``[[sources]]`` entry at work: it puts ticks into the queue until cancelled (or done)."""

    name: str
    description: str

    async def run(self, queue: TickSink) -> None: ...

    def snapshot(self) -> SourceSnapshot: ...
