"""The rules: pure, synchronous, no I/O, and no clock of their own.

The engine's time is the ticks' time. The stale-feed rule judges silence by
the service's receive time, which its caller passes in: it reads no clock
either.
"""

from service.rules.engine import RuleEngine
from service.rules.window import Bar

__all__ = ["Bar", "RuleEngine"]
