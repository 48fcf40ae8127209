"""The import layers of pyproject.toml cover the whole service: no module escapes them."""

from __future__ import annotations

import tomllib
from pathlib import Path

import service

PACKAGE = Path(service.__file__).resolve().parent
PYPROJECT = PACKAGE.parent / "pyproject.toml"


def _layered() -> set[str]:
    config = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]
    [layers] = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    names: set[str] = set()
    for layer in layers:
        for part in layer.replace("|", ":").split(":"):
            names.add(part.strip())
    return names


def test_every_top_level_module_of_the_service_is_in_a_layer() -> None:
    modules = {
        f"service.{path.stem}" for path in PACKAGE.glob("*.py") if path.stem != "__init__"
    } | {f"service.{path.parent.name}" for path in PACKAGE.glob("*/__init__.py")}
    assert modules - _layered() == set(), "add each new module to a layer in pyproject.toml"
    assert _layered() - modules == set(), "a layer names a module that no longer exists"
