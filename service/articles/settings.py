"""The ``[articles]`` and ``[aliases]`` tables of alerts.toml: where articles come from.

Defaults are written once, in the dataclasses; the readers record every
problem by path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from service.articles.instruments import DEFAULT_ALIASES
from service.articles.parse import MAX_ARTICLE_BYTES
from service.config_table import Table, http_url
from service.symbols import normalize_symbol


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleDefaults:
    """The settings of the level rules made from articles' levels."""

    confirm_ticks: int = 1
    confirm_seconds: float = 0.0
    hysteresis: float = 0.0
    cooldown_seconds: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class ArticlesConfig:
    """Where articles come from, and whether their levels become rules."""

    dir: Path | None = None
    dir_poll_seconds: float = 1.0
    feed_url: str | None = None
    feed_poll_seconds: float = 60.0
    max_bytes: int = MAX_ARTICLE_BYTES
    auto_levels: bool = False
    rule_defaults: RuleDefaults = field(default_factory=RuleDefaults)


def read_articles(table: Table, base_dir: Path) -> ArticlesConfig:
    table.reads(ArticlesConfig)
    directory = table.existing_dir("dir", base_dir) if "dir" in table else None
    feed_url = table.convert("feed_url", http_url) if "feed_url" in table else None
    defaults = table.table("rule_defaults").reads(RuleDefaults)
    rule_defaults = RuleDefaults(
        confirm_ticks=defaults.integer("confirm_ticks", minimum=1),
        confirm_seconds=defaults.number("confirm_seconds", minimum=0.0),
        hysteresis=defaults.number("hysteresis", minimum=0.0),
        cooldown_seconds=defaults.number("cooldown_seconds", minimum=0.0),
    )
    defaults.finish()
    config = ArticlesConfig(
        dir=directory,
        dir_poll_seconds=table.number("dir_poll_seconds", exclusive_minimum=0.0),
        feed_url=feed_url,
        feed_poll_seconds=table.number("feed_poll_seconds", exclusive_minimum=0.0),
        max_bytes=table.integer("max_bytes", minimum=1),
        auto_levels=table.boolean("auto_levels"),
        rule_defaults=rule_defaults,
    )
    table.finish()
    return config


def read_aliases(table: Table) -> Mapping[str, str]:
    """Instrument names in articles → symbols: the built-in names, then ``[aliases]``."""
    aliases = dict(DEFAULT_ALIASES)
    for name in table.free_keys():
        if not name.strip():
            table.problem(f'"{name}"', "expected an instrument name, got an empty key")
            continue
        symbol = table.convert(name, normalize_symbol)
        if symbol:
            aliases[name.strip()] = symbol
    return aliases
