"""Tick streams for the tests that publish to a broker: pure builders, no I/O."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping

from service.models import Rule, Tick
from service.processing.engine_task import TickProcessor
from service.rules import RuleEngine
from service.streams.rejections import Rejections
from service.streams.simulator import RandomWalk
from service.timestamps import format_timestamp
from tests.builders import at, level_rule, tick

# The rules of the MQTT tests, as alerts.toml writes them in RULES_TOML.
RULES: tuple[Rule, ...] = (
    level_rule(255.0, rule_id="below", hysteresis=0.5),
    level_rule(265.0, "above", rule_id="above", hysteresis=0.5),
)
RULES_TOML = """
[[rules]]
id = "below"
symbol = "IWM"
level = 255.0
direction = "below"
hysteresis = 0.5

[[rules]]
id = "above"
symbol = "IWM"
level = 265.0
direction = "above"
hysteresis = 0.5
"""


def payload(t: Tick) -> str:
    """The JSON message of ``t``, as a feed handler publishes it."""
    return json.dumps(
        {"symbol": t.symbol, "price": t.price, "ts": format_timestamp(t.ts_ns), "volume": t.volume}
    )


def walk(count: int, *, seed: int, every_s: float = 1.0) -> list[Tick]:
    """IWM wandering across 255 and 265, one tick every ``every_s`` seconds."""
    steps = RandomWalk([("IWM", 260.0)], volatility=0.004, seed=seed)
    return [steps.step(at(i * every_s)) for i in range(count)]


def alerts_of_uninterrupted_run(ticks: list[Tick], rules: tuple[Rule, ...] = RULES) -> list[str]:
    """The alert ids one run of the engine over ``ticks`` fires, with nothing in between."""
    processor = TickProcessor(RuleEngine(rules), Rejections())
    return [alert.id for alert in processor.process(ticks)]


def wandering(centres: Mapping[str, float], count: int, *, seed: int) -> list[Tick]:
    """``count`` ticks of the symbols of ``centres`` in turn, one a second each in tick time,
    each pulled back to its centre while it wanders across the levels around it."""
    rng = random.Random(seed)
    names = list(centres)
    price = dict(centres)
    ticks = []
    for index in range(count):
        symbol = names[index % len(names)]
        pull = 0.01 * (centres[symbol] - price[symbol])
        price[symbol] = round(price[symbol] + pull + rng.gauss(0.0, centres[symbol] / 650), 2)
        volume = 100.0 + 50.0 * (index % 7)
        ticks.append(tick(price[symbol], index // len(names), symbol=symbol, volume=volume))
    return ticks
