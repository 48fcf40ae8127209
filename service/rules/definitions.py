"""A rule given as data (the rules API's JSON): read exactly as alerts.toml's ``[[rules]]`` are.

One reader for both, so a rule set from the chart means what the same keys
mean in the file, and is refused with the same messages, by key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from service.config_table import ENV_PREFIX, Table
from service.errors import RequestError
from service.models import Rule
from service.rules.settings import read_rules

MAX_PROBLEMS = 5


class DefinitionError(RequestError):
    """A definition the config's reader refused: every problem, each named by its key."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:MAX_PROBLEMS]
        more = len(problems) - len(shown)
        super().__init__("; ".join(shown) + (f" (and {more} more)" if more else ""))


def read_definition(definition: Mapping[str, Any], *, rule_id: str, owner: str | None) -> Rule:
    """The rule ``definition`` describes, with id ``rule_id``, owned by ``owner``.

    Raises :class:`DefinitionError` naming every problem by key, as
    ``strykr-alerts check`` names them in alerts.toml. No value is read from
    the environment: ``"env:NAME"`` is refused.
    """
    problems = [
        f"{key}: environment references are for alerts.toml; give the value itself"
        for key, value in definition.items()
        if isinstance(value, str) and value.startswith(ENV_PREFIX)
    ]
    if problems:
        raise DefinitionError(problems)
    table = Table({**definition, "id": rule_id}, "", problems, env={})
    rules = read_rules([table])
    if problems or len(rules) != 1:
        raise DefinitionError(problems or ["the rule could not be read"])
    return dataclasses.replace(rules[0], owner=owner)
