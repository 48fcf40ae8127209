"""The rule engine: pure, synchronous, no I/O, no clock. Time comes from the ticks."""

from service.rules.engine import RuleEngine
from service.rules.window import Bar, WindowStats

__all__ = ["Bar", "RuleEngine", "WindowStats"]
