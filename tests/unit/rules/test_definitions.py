"""A rule given as data (the rules API's JSON) is read exactly as alerts.toml's [[rules]]."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.config import parse_config
from service.errors import ConfigError
from service.rules.definitions import DefinitionError, read_definition

RULES = [
    {"symbol": "IWM", "condition": "cross_below", "level": 254.2, "frequency": "once"},
    {"symbol": "iwm", "direction": "above", "level": 265, "confirm_ticks": 3},
    {"symbol": "SPX", "condition": "exit_channel", "low": 4800, "high": 4900},
    {"symbol": "IWM", "condition": "cross_above", "level": 'sma(20, "5m")', "session": "regular"},
    {"symbol": "IWM", "condition": "moving_up", "percent": 2, "window": "15m"},
    {"symbol": "IWM", "condition": "greater_than", "source": 'rsi(14, "5m")', "level": 70},
]


def toml_value(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else str(value).lower()


@pytest.mark.parametrize("definition", RULES)
def test_a_definition_is_the_rule_the_same_keys_make_in_alerts_toml(
    definition: dict[str, Any],
) -> None:
    table = "".join(f"{key} = {toml_value(value)}\n" for key, value in definition.items())
    (from_file,) = parse_config(f'[[rules]]\nid = "r1"\n{table}').rules
    rule = read_definition(definition, rule_id="r1", owner="sub_ann")
    assert rule.owner == "sub_ann"
    assert rule == type(from_file)(**{**_fields(from_file), "owner": "sub_ann"})


def _fields(rule: Any) -> dict[str, Any]:
    return {name: getattr(rule, name) for name in rule.__dataclass_fields__}


@pytest.mark.parametrize(
    ("definition", "messages"),
    [
        ({"symbol": "IWM", "condition": "cross_below"}, ["level: missing; this key is required"]),
        (
            {"symbol": "IWM", "condition": "cross_below", "level": 0, "hysteresis": -1, "x": 1},
            ["level: expected a number > 0", "hysteresis: expected a number >= 0",
             'x: unknown key'],
        ),
        ({"symbol": "IWM", "condition": "cross_below", "level": "env:SECRET"},
         ["level: environment references are for alerts.toml"]),
    ],
)  # fmt: skip
def test_a_bad_definition_names_every_problem_by_key_as_check_does(
    definition: dict[str, Any], messages: list[str]
) -> None:
    with pytest.raises(DefinitionError) as raised:
        read_definition(definition, rule_id="r1", owner=None)
    for message in messages:
        assert any(problem.startswith(message) for problem in raised.value.problems), (
            message,
            raised.value.problems,
        )
    if "env:" not in str(definition):
        # The file says the same, under the rule's path.
        table = "".join(f"{key} = {toml_value(value)}\n" for key, value in definition.items())
        with pytest.raises(ConfigError) as in_file:
            parse_config(f'[[rules]]\nid = "r1"\n{table}')
        for message in messages:
            assert f"rules[0].{message}" in str(in_file.value)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6,
)  # fmt: skip
keys = st.sampled_from(
    ["symbol", "condition", "level", "low", "high", "source", "percent", "amount", "window",
     "frequency", "trigger", "bar", "expires", "paused", "session", "confirm_volume",
     "hysteresis", "confirm_ticks", "type", "direction", "unknown"]
)  # fmt: skip


@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(keys, json_values, max_size=7))
def test_any_json_object_is_read_or_refused_with_problems_never_an_error(
    definition: dict[str, Any],
) -> None:
    problems: list[str] = []
    try:
        rule = read_definition(definition, rule_id="r1", owner="sub_ann")
    except DefinitionError as error:
        problems = error.problems
        assert problems, "refused without a problem named"
    else:
        assert (rule.id, rule.owner) == ("r1", "sub_ann")
    assert all(":" in problem for problem in problems)
