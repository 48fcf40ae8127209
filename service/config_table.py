"""Reading one TOML table of the config: typed getters that name each problem's path.

:class:`Table` is shared by every part of the config (service, sources,
rules, delivery), so that each reports its mistakes the same way::

    rules[2].direction: expected "below" or "above", got "down"
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from service.text import quote
from service.timestamps import parse_duration

ENV_PREFIX = "env:"
MISSING: Any = object()
T = TypeVar("T")
_FIELD_PATH = re.compile(r"^[^.\s]+(\.[^.\s]+)*$")
# An MQTT client id every broker takes (MQTT 3.1.1 only promises 23 of [0-9a-zA-Z]).
MQTT_CLIENT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MQTT_CLIENT_ID_HINT = "1 to 64 letters, digits and . _ : -"


@functools.cache
def field_defaults(cls: type) -> Mapping[str, Any]:
    """The default of every field of the dataclass ``cls`` that has one: written once, there."""
    found: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):
        if spec.default is not dataclasses.MISSING:
            found[spec.name] = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            found[spec.name] = spec.default_factory()
    return found


def field_default(cls: type, name: str) -> Any:
    """The default of the field ``name`` of the dataclass ``cls``."""
    return field_defaults(cls)[name]


class Table:
    """One TOML table being read: typed getters that record problems by path.

    A getter that finds a bad value records a problem, marks the table not
    ``ok`` and returns a placeholder, so that one pass reports every problem.
    After :meth:`reads`, a key left out takes the default of the dataclass
    field of the same name, so that a default is written once, in the dataclass.
    """

    def __init__(
        self, data: Mapping[str, Any], path: str, problems: list[str], env: Mapping[str, str]
    ) -> None:
        self._data = data
        self.path = path
        self._problems = problems
        self._env = env
        self._read: set[str] = set()
        self._bad: set[str] = set()
        self._defaults: Mapping[str, Any] = {}
        self.ok = True

    def reads(self, cls: type) -> Table:
        """This table, each key defaulting to the field of the dataclass ``cls`` of its name."""
        self._defaults = field_defaults(cls)
        return self

    def _default(self, key: str, default: Any) -> Any:
        return self._defaults.get(key, MISSING) if default is MISSING else default

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def problem(self, key: str, message: str) -> None:
        where = f"{self.path}.{key}" if self.path else key
        self._problems.append(f"{where}: {message}")
        self._read.add(key.split("[", 1)[0])
        self._bad.add(key)
        self.ok = False

    def valid(self, *keys: str) -> bool:
        """Whether every one of ``keys`` was read without a problem."""
        return self._bad.isdisjoint(keys)

    def finish(self, *, ignore_unknown: bool = False) -> None:
        """Report every key nobody asked for."""
        if ignore_unknown:
            return
        known = sorted(self._read)
        for key in self._data:
            if key not in self._read:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f'; did you mean "{close[0]}"?' if close else ""
                if not close and known:
                    hint = f" (known keys: {', '.join(known)})"
                self.problem(key, f"unknown key{hint}")

    def _value(self, key: str, default: Any) -> Any:
        default = self._default(key, default)
        self._read.add(key)
        value = self._data.get(key, MISSING)
        if value is MISSING:
            if default is MISSING:
                self.problem(key, "missing; this key is required")
            return default
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX) :]
            if name not in self._env:
                self.problem(key, f"environment variable {name} is not set")
                return MISSING
            return self._env[name]
        return value

    def _typed(self, key: str, default: Any, check: Callable[[Any], bool], expected: str) -> Any:
        default = self._default(key, default)
        value = self._value(key, default)
        if value is MISSING:
            return None
        if value is default or check(value):
            return value
        self.problem(key, f"expected {expected}, got {show_value(value)}")
        return None

    def string(
        self,
        key: str,
        *,
        default: str = MISSING,
        pattern: re.Pattern[str] | None = None,
        pattern_hint: str = "",
    ) -> str:
        value = self._typed(key, default, lambda v: isinstance(v, str), "a string")
        if value is None:
            return ""
        if pattern is not None and not pattern.match(value):
            self.problem(key, f"expected {pattern_hint}, got {show_value(value)}")
            return ""
        return cast(str, value)

    def field_path(self, key: str, *, default: str = MISSING) -> str:
        return self.string(
            key, default=default, pattern=_FIELD_PATH, pattern_hint="a dotted path such as data.p"
        )

    def choice(self, key: str, choices: Sequence[str], *, default: str = MISSING) -> str:
        default = self._default(key, default)
        value = self._value(key, default)
        if value is MISSING:
            return ""
        if value not in choices:
            options = [f'"{choice}"' for choice in choices]
            listed = (
                options[0] if len(options) == 1 else ", ".join(options[:-1]) + f" or {options[-1]}"
            )
            self.problem(key, f"expected {listed}, got {show_value(value)}")
            return ""
        return cast(str, value)

    def number(
        self,
        key: str,
        *,
        default: float = MISSING,
        minimum: float | None = None,
        exclusive_minimum: float | None = None,
    ) -> float:
        value = self._typed(key, default, is_number, "a number")
        if value is None:
            return 0.0
        number = float(value)
        if number != number or number in (float("inf"), float("-inf")):
            self.problem(key, f"expected a finite number, got {show_value(value)}")
        elif minimum is not None and number < minimum:
            self.problem(key, f"expected a number >= {minimum:g}, got {show_value(value)}")
        elif exclusive_minimum is not None and number <= exclusive_minimum:
            self.problem(key, f"expected a number > {exclusive_minimum:g}, got {show_value(value)}")
        return number

    def integer(self, key: str, *, default: int = MISSING, minimum: int | None = None) -> int:
        value = self._typed(
            key, default, lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"
        )
        if value is None:
            return 0
        if minimum is not None and value < minimum:
            self.problem(key, f"expected an integer >= {minimum}, got {show_value(value)}")
        return cast(int, value)

    def convert(self, key: str, parse: Callable[[Any], T], *, default: Any = MISSING) -> T:
        """Read a value through ``parse``, which raises ``ValueError`` saying what it expected."""
        value = self._value(key, default)
        if value is MISSING:
            return cast(T, None)
        try:
            return parse(value)
        except ValueError as error:
            self.problem(key, str(error))
            return cast(T, None)

    def duration(self, key: str, *, default: str = MISSING) -> str:
        value = self.string(key, default=default)
        if value:
            try:
                parse_duration(value)
            except ValueError as error:
                self.problem(key, str(error))
                return ""
        return value

    def durations(self, key: str) -> tuple[str, ...]:
        value = self._typed(key, (), lambda v: isinstance(v, list), "an array of durations")
        if not value:
            return ()
        labels: list[str] = []
        for index, item in enumerate(value):
            try:
                if not isinstance(item, str):
                    raise ValueError(f'expected a duration such as "1m", got {show_value(item)}')
                parse_duration(item)
            except ValueError as error:
                self.problem(f"{key}[{index}]", str(error))
                continue
            if item in labels:
                self.problem(f"{key}[{index}]", f"duplicate {show_value(item)}")
                continue
            labels.append(item)
        return tuple(labels)

    def strings(self, key: str) -> tuple[str, ...]:
        """An array of non-empty strings (empty when absent); each may be ``"env:NAME"``."""
        value = self._typed(
            key,
            [],
            lambda v: isinstance(v, list) and all(isinstance(item, str) and item for item in v),
            "an array of non-empty strings",
        )
        items: list[str] = []
        for index, item in enumerate(value or []):
            if item.startswith(ENV_PREFIX):
                name = item[len(ENV_PREFIX) :]
                if name not in self._env:
                    self.problem(f"{key}[{index}]", f"environment variable {name} is not set")
                    continue
                item = self._env[name]
            items.append(item)
        return tuple(items)

    def free_keys(self) -> list[str]:
        """Every key of the table, each counted as read (for tables of free-form keys)."""
        self._read.update(self._data)
        return list(self._data)

    def boolean(self, key: str, *, default: bool = MISSING) -> bool:
        value = self._typed(key, default, lambda v: isinstance(v, bool), "true or false")
        return bool(value)

    def existing_dir(self, key: str, base_dir: Path) -> Path:
        path = self._path(key, base_dir)
        if path is not None and not path.is_dir():
            self.problem(key, f"no such directory: {path}")
        return path or Path()

    def _path(self, key: str, base_dir: Path) -> Path | None:
        value = self.string(key)
        if not value:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else base_dir / path

    def existing_file(self, key: str, base_dir: Path) -> Path:
        path = self._path(key, base_dir)
        if path is not None and not path.is_file():
            self.problem(key, f"no such file: {path}")
        return path or Path()

    def table(self, key: str) -> Table:
        value = self._typed(key, {}, lambda v: isinstance(v, dict), "a table")
        path = f"{self.path}.{key}" if self.path else key
        return Table(value or {}, path, self._problems, self._env)

    def tables(self, key: str) -> list[Table]:
        value = self._typed(
            key,
            [],
            lambda v: isinstance(v, list) and all(isinstance(item, dict) for item in v),
            f"an array of tables ([[{key}]])",
        )
        path = f"{self.path}.{key}" if self.path else key
        return [
            Table(item, f"{path}[{index}]", self._problems, self._env)
            for index, item in enumerate(value or [])
        ]


def read_port(table: Table) -> int:
    """The table's ``port``: 0 (any free port) to 65535."""
    port = table.integer("port", minimum=0)
    if port > 65535:
        table.problem("port", f"expected a port from 0 to 65535, got {port}")
    return port


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def show_value(value: object) -> str:
    """Show a found value as TOML would write it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value, limit=60)
    if isinstance(value, float) and value.is_integer():
        return repr(int(value))  # 255, as written, not 255.0
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def mqtt_url(value: object) -> tuple[bool, str, int]:
    if not isinstance(value, str):
        raise ValueError(
            f'expected an MQTT URL such as "mqtt://127.0.0.1:1883", got {show_value(value)}'
        )
    parts = urlsplit(value.strip())
    if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
        raise ValueError(
            'expected an mqtt:// or mqtts:// URL such as "mqtt://127.0.0.1:1883", '
            f"got {show_value(value)}"
        )
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            'credentials do not belong in the url; use username and password = "env:NAME"'
        )
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"expected no path or query after host:port, got {show_value(value)}")
    tls = parts.scheme == "mqtts"
    try:
        port = parts.port or (8883 if tls else 1883)
    except ValueError:
        raise ValueError(f"expected a port from 1 to 65535, got {show_value(value)}") from None
    return tls, parts.hostname, port


def http_url(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected an http(s) URL, got {show_value(value)}")
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http:// or https:// URL, got {show_value(value)}")
    return value.strip()
