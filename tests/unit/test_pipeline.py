"""The engine task's bookkeeping: what it counts of each source's ticks, and what it rejects."""

from __future__ import annotations

from service.pipeline import TickProcessor
from service.rules import RuleEngine
from service.streams.rejections import Rejections
from tests.builders import level_rule, tick


def test_processor_counts_only_accepted_ticks_by_their_source() -> None:
    rejections = Rejections()
    processor = TickProcessor(RuleEngine([level_rule()], price_band=0.2), rejections)
    ticks = [tick(256.0, 1), tick(255.0, 0), tick(1.0, 2), tick(254.0, 3), tick(254.0, 3)]
    sources = ["broker", "feed", "feed", "broker", "replay"]
    alerts = processor.process(ticks, sources=sources)
    assert [alert.price for alert in alerts] == [254.0]
    assert dict(processor.ticks_by_source) == {"broker": 2, "feed": 0, "replay": 1}
    assert processor.ticks == 3
    assert dict(rejections.counts) == {"out_of_order": 1, "price_implausible": 1}
    assert rejections.first["out_of_order"].startswith("feed IWM at 2026-02-02T14:30:00.000Z: ")


def test_processor_without_sources_counts_every_tick_as_the_one_source() -> None:
    processor = TickProcessor(RuleEngine([level_rule()]), Rejections())
    processor.process([tick(256.0, 1), tick(254.0, 0)], source="file")
    assert dict(processor.ticks_by_source) == {"file": 1}
