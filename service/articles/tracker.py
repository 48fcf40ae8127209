"""The articles in effect: which one an alert carries, which levels become rules.

Live, the latest article known for a symbol is in effect. In replay
(``as_of_tick_time``) the latest one published at or before the tick is, so
a replay of a past day sees the articles as readers saw them that day.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from service.articles.settings import ArticlesConfig, RuleDefaults
from service.articles.store import ArticleStore
from service.models import DIRECTION_OF_SIDE, AlertEvent, LevelRule, RangeRule, Rule

AUTO_RULE_PREFIX = "article:"


class ArticleTracker:
    """Holds the article store and derives the alert attachment and the article rules.

    ``hand_rules`` are the rules of alerts.toml: never changed, and an article
    level they already watch (same symbol, direction and price) makes no
    second rule. ``rule_defaults`` is ``None`` when article levels do not
    become rules (``auto_levels = false``).
    """

    def __init__(
        self,
        store: ArticleStore | None = None,
        *,
        hand_rules: Sequence[Rule] = (),
        rule_defaults: RuleDefaults | None = None,
        as_of_tick_time: bool = False,
    ) -> None:
        self.store = store if store is not None else ArticleStore()
        self.hand_rules = tuple(hand_rules)
        self.rule_defaults = rule_defaults
        self.as_of_tick_time = as_of_tick_time
        self._hand_levels = {
            (side.symbol, side.direction, side.level)
            for rule in self.hand_rules
            for side in (rule.sides() if isinstance(rule, RangeRule) else (rule,))
            if isinstance(side, LevelRule)
        }

    @classmethod
    def for_settings(
        cls, rules: Sequence[Rule], articles: ArticlesConfig, *, as_of_tick_time: bool = False
    ) -> ArticleTracker:
        """The tracker of the hand-written ``rules`` and the ``[articles]`` settings."""
        return cls(
            hand_rules=rules,
            rule_defaults=articles.rule_defaults if articles.auto_levels else None,
            as_of_tick_time=as_of_tick_time,
        )

    @property
    def auto_levels(self) -> bool:
        return self.rule_defaults is not None

    def attach(self, alert: AlertEvent) -> AlertEvent:
        """``alert`` with the article in effect for its symbol (or ``None``) attached."""
        at_ns = alert.ts_ns if self.as_of_tick_time else None
        article = self.store.latest(alert.symbol, at_ns)
        if article is None:
            return alert
        return dataclasses.replace(alert, article=article.attachment(alert.symbol))

    def rules(self, at_ns: int | None = None) -> tuple[Rule, ...]:
        """The hand-written rules, then the rules of the articles in effect at ``at_ns``."""
        return self.hand_rules + tuple(self.article_rules(at_ns))

    def article_rules(self, at_ns: int | None = None) -> list[LevelRule]:
        """A level rule per level of each symbol's article in effect; none without auto levels."""
        defaults = self.rule_defaults
        if defaults is None:
            return []
        rules: list[LevelRule] = []
        for symbol in self.store.symbols():
            article = self.store.latest(symbol, at_ns)
            if article is None:
                continue
            for level in article.levels_of(symbol):
                direction = DIRECTION_OF_SIDE[level.side]
                if (symbol, direction, level.price) in self._hand_levels:
                    continue
                if direction == "above" and defaults.hysteresis >= level.price:
                    continue  # it could never re-arm
                rules.append(
                    LevelRule(
                        id=auto_rule_id(symbol, direction, level.price),
                        symbol=symbol,
                        level=level.price,
                        direction=direction,
                        confirm_ticks=defaults.confirm_ticks,
                        confirm_seconds=defaults.confirm_seconds,
                        hysteresis=defaults.hysteresis,
                        cooldown_seconds=defaults.cooldown_seconds,
                    )
                )
        return rules


def auto_rule_id(symbol: str, direction: str, price: float) -> str:
    """``article:IWM:below:255``: stable, so a newer article repeating a level keeps its state."""
    text = repr(price)
    return f"{AUTO_RULE_PREFIX}{symbol}:{direction}:{text.removesuffix('.0')}"
