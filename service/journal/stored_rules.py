"""The stored rules of the rules API, read into the rules the engine watches."""

from __future__ import annotations

from collections.abc import Iterable

from service.errors import RequestError
from service.journal.records import StoredRule
from service.models import Rule
from service.rules.definitions import read_definition


def rules_of(stored: Iterable[StoredRule]) -> tuple[list[Rule], list[tuple[str, str]]]:
    """The rules of ``stored``, and (id, why) for each that no longer reads.

    A stored rule was valid when it was stored; one this version reads
    differently is left out, and said, rather than stopping the service.
    """
    rules: list[Rule] = []
    unreadable: list[tuple[str, str]] = []
    for entry in stored:
        try:
            rules.append(read_definition(entry.definition, rule_id=entry.id, owner=entry.owner))
        except RequestError as error:
            unreadable.append((entry.id, str(error)))
    return rules, unreadable
