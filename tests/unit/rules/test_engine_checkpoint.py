"""Snapshot and restore: an engine restored from a checkpoint fires what the original would.

The snapshot goes through JSON, as the journal keeps it. Any rules (bar-close
ones too), any ticks (out of order, outliers, same-time prints), any split.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.errors import TickError
from service.models import LevelRule, Rule, Tick
from service.rules import RuleEngine
from tests.builders import level_rule, tick
from tests.unit.rules.test_engine_properties import Admission, admissions, rules, tick_streams


@st.composite
def rules_with_bars(draw: st.DrawFn) -> list[Rule]:
    """Rules of the engine's property tests, some of them closing on 1 s or 2 s bars."""
    made = draw(rules())
    for index, rule in enumerate(made):
        if isinstance(rule, LevelRule) and draw(st.booleans()):
            bar = draw(st.sampled_from(("1s", "2s")))
            made[index] = LevelRule(
                **{**_fields(rule), "trigger": "bar_close", "bar": bar}  # type: ignore[arg-type]
            )
    return made


def _fields(rule: LevelRule) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in LevelRule.__dataclass_fields__}


def run(engine: RuleEngine, ticks: list[Tick]) -> tuple[list[str], list[str]]:
    """The alert ids and the rejections' reasons of ``ticks``, in order."""
    rejected: list[TickError] = []
    alerts = engine.on_ticks(ticks, on_reject=lambda _tick, error: rejected.append(error))
    return [alert.id for alert in alerts], [error.reason for error in rejected]


def through_json(engine: RuleEngine) -> dict[str, Any]:
    snapshot: dict[str, Any] = json.loads(json.dumps(engine.snapshot(engine.symbols())))
    return snapshot


@settings(max_examples=300, deadline=None)
@given(
    rule_list=rules_with_bars(),
    ticks=tick_streams(allow_out_of_order=True),
    admission=admissions,
    split=st.integers(0, 120),
)
def test_an_engine_restored_from_a_snapshot_fires_what_the_original_would(
    rule_list: list[Rule], ticks: list[Tick], admission: Admission, split: int
) -> None:
    split = min(split, len(ticks))
    original = admission.engine(rule_list)
    run(original, ticks[:split])
    restored = admission.engine(rule_list)
    restored.restore(through_json(original))
    assert run(restored, ticks[split:]) == run(original, ticks[split:])


@settings(max_examples=200, deadline=None)
@given(
    before=rules_with_bars(),
    after=rules_with_bars(),
    ticks=tick_streams(),
    admission=admissions,
    split=st.integers(0, 120),
)
def test_rules_changed_while_down_keep_the_state_of_those_that_stay(
    before: list[Rule], after: list[Rule], ticks: list[Tick], admission: Admission, split: int
) -> None:
    # As set_rules does live: the rules that stay keep their state, the others start afresh.
    split = min(split, len(ticks))
    live = admission.engine(before)
    run(live, ticks[:split])
    restored = admission.engine(after)
    restored.restore(through_json(live))
    live.set_rules(after)
    assert run(restored, ticks[split:]) == run(live, ticks[split:])


def test_a_rule_read_after_the_restore_takes_its_state_back() -> None:
    # An article's rule: the article is read after start-up, the checkpoint before.
    below, article = level_rule(255.0, rule_id="hand"), level_rule(250.0, rule_id="article:1")
    original = RuleEngine([below, article])
    original.on_ticks([tick(256.0, 0), tick(249.0, 1), tick(251.0, 2)])  # article's re-armed
    restored = RuleEngine([below])
    restored.restore(through_json(original))
    restored.set_rules([below, article])
    (alert,) = restored.on_ticks([tick(249.5, 3)])
    assert alert.rule == "article:1"


def test_a_snapshot_is_of_the_symbols_asked_that_the_engine_knows() -> None:
    engine = RuleEngine([level_rule()])
    engine.on_ticks([tick(256.0, 0), tick(4900.0, 0, "SPX")])
    assert sorted(engine.snapshot(["IWM", "SPX", "RUT"])) == ["IWM", "SPX"]
