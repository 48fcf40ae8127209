"""The engine task's state as a checkpoint: a tick log between states written in full.

Every commit must make the engine's state after its ticks durable (a QoS 1
message is acknowledged only then). Writing each changed symbol's state at
every commit would cost several microseconds a tick on a stream of many
symbols, so a commit appends the ticks evaluated since the last one to a
tick log instead (one compact JSON text, about a microsecond a tick), and
only about once a second (:data:`STATE_EVERY_S`, or every
:data:`LOG_LIMIT_TICKS` ticks, or when the rules change, or when a symbol
changes other than by its own tick) writes the state of every symbol that
changed, in full, and starts the log over.

A state is never written beside a log that holds ticks from before it: the
log is evaluated again on top of the states, and a tick at a symbol's last
time and price would count twice (a run one tick longer, a rule that fires).

A symbol's state is everything the engine keeps of it (time, price, band,
bars in progress, each rule's run and cooldown) and what the stale watch
keeps (last seen, last price): one JSON text per symbol, versioned. Restored
at start-up, before any tick, the states are taken back and the log is
evaluated again (its alerts were journaled with it), which gives an engine
that fires exactly what the one before the crash would have.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import structlog

from service.clock import SYSTEM_CLOCK, Clock
from service.models import Tick
from service.rules import RuleEngine
from service.rules.stale import StaleFeedWatch

# The layout of one symbol's state and of a tick log entry; a state of another
# version is not read (the symbol starts afresh, and the log says so).
STATE_VERSION = 1
# The states of the changed symbols are written in full this often...
STATE_EVERY_S = 1.0
# ...or once the log holds this many ticks (a restart evaluates them again).
LOG_LIMIT_TICKS = 100_000

log = structlog.get_logger("service.processing")


@dataclass(frozen=True, slots=True)
class StateChange:
    """What a commit stores of the engine: states of symbols, and entries for the tick log.

    ``reset_log``: the states are those of every symbol changed since the last
    such change, so they cover every tick logged so far, and the log starts over.
    """

    symbols: Mapping[str, str] = field(default_factory=dict)
    ticks: tuple[str, ...] = ()
    reset_log: bool = False

    def then(self, later: StateChange) -> StateChange:
        """This change followed by ``later``, as one (a commit refused, then tried again)."""
        symbols = {**self.symbols, **later.symbols}
        if later.reset_log:
            return StateChange(symbols, later.ticks, reset_log=True)
        return StateChange(symbols, (*self.ticks, *later.ticks), reset_log=self.reset_log)


class EngineCheckpoint:
    """What changed in the engine since the last commit: ticks to log, symbols to write."""

    def __init__(
        self,
        engine: RuleEngine,
        stale: StaleFeedWatch | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._engine = engine
        self._stale = stale
        self._monotonic = clock.monotonic
        self.dirty: set[str] = set()  # changed since the states were last written in full
        self._pending: list[Sequence[Tick]] = []  # evaluated since the last commit
        self._logged = 0  # ticks in the log since the states were last written in full
        self._full_at = self._monotonic()
        self._full_due = False

    def log(self, ticks: Sequence[Tick]) -> None:
        """These ticks were given to the engine, in this order (accepted or not)."""
        self._pending.append(ticks)
        self._logged += len(ticks)
        self.dirty.update(tick.symbol for tick in ticks)

    def mark(self, symbols: Iterable[str]) -> None:
        """These symbols changed other than by a tick: every state is written in full next.

        The stale watch fired, a bar the watermark closed, a rule paused: the
        log cannot replay such a change, so it starts over with the states.
        """
        self.dirty.update(symbols)
        self._full_due = True

    def mark_all(self) -> None:
        """The rules changed: every symbol's state is written in full at the next commit.

        The log never spans a change of rules, so it is evaluated again under
        the rules it was evaluated under.
        """
        self.dirty.update(self._engine.symbols())
        self._full_due = True

    def take(self) -> StateChange:
        """What the next commit stores: the new ticks for the log, or the states in full."""
        # Symbols changed other than by their own ticks (a bar the watermark closed, a
        # rule paused): the states go in full with this commit, as a stale watch's do.
        touched = self._engine.take_touched()
        if touched:
            self.mark(touched)
        now = self._monotonic()
        if (
            self._full_due
            or self._logged >= LOG_LIMIT_TICKS
            or now - self._full_at >= STATE_EVERY_S
        ):
            symbols, self.dirty = self.dirty, set()
            self._pending, self._logged = [], 0
            self._full_at, self._full_due = now, False
            return StateChange(self._states(symbols), reset_log=True)
        pending, self._pending = self._pending, []
        entries = (_log_entry(pending),) if pending else ()
        return StateChange({}, entries)

    def _states(self, symbols: Iterable[str]) -> dict[str, str]:
        stale = self._stale
        return {
            symbol: json.dumps(
                {
                    "v": STATE_VERSION,
                    "engine": state,
                    "stale": None if stale is None else stale.state(symbol),
                },
                separators=(",", ":"),
            )
            for symbol, state in self._engine.snapshot(symbols).items()
        }

    def restore(
        self, rows: Mapping[str, str], ticks: Sequence[str] = ()
    ) -> dict[str, tuple[int, float]]:
        """Take back the stored states, evaluate the log again; return each symbol's last tick.

        The last ticks tell a tick the broker sends again (it was evaluated, but
        its acknowledgement was lost in the crash) from a new one.
        """
        engine_states = {}
        skipped = []
        for symbol, text in rows.items():
            state = json.loads(text)
            if state.get("v") != STATE_VERSION:
                skipped.append(symbol)
                continue
            engine_states[symbol] = state["engine"]
            if self._stale is not None:
                self._stale.restore(symbol, state["stale"])
        if skipped:
            log.warning(
                "engine_state_skipped",
                symbols=sorted(skipped),
                hint=f"stored by another version (this one reads {STATE_VERSION}); "
                "they start afresh",
            )
        self._engine.restore(engine_states)
        logged = [tick for entry in ticks for tick in _read_log_entry(entry)]
        if logged:
            # Their alerts and rejections were journaled and counted the first time.
            self._engine.on_ticks(logged, on_reject=lambda _tick, _error: None)
        self._logged = len(logged)
        self.dirty.update(tick.symbol for tick in logged)
        last: dict[str, tuple[int, float]] = {}
        symbols = {*engine_states, *(tick.symbol for tick in logged)}
        for symbol, state in self._engine.snapshot(symbols).items():
            ts_ns, price = state[0], state[1]
            if ts_ns is not None and price is not None:
                last[symbol] = (ts_ns, price)
        return last


def _log_entry(batches: Sequence[Sequence[Tick]]) -> str:
    """Ticks as one log entry: ``[version, [symbol, ts_ns, price, volume], ...]``."""
    rows: list[object] = [STATE_VERSION]
    rows += [
        [tick.symbol, tick.ts_ns, tick.price, tick.volume] for batch in batches for tick in batch
    ]
    return json.dumps(rows, separators=(",", ":"))


def _read_log_entry(entry: str) -> list[Tick]:
    rows = json.loads(entry)
    if not rows or rows[0] != STATE_VERSION:
        log.warning(
            "tick_log_skipped", hint="written by another version; those ticks are not replayed"
        )
        return []
    return [
        Tick(symbol=symbol, price=price, ts_ns=ts_ns, volume=volume)
        for symbol, ts_ns, price, volume in rows[1:]
    ]
