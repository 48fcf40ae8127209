"""Showing untrusted input inside messages."""

from __future__ import annotations

import json

# Inputs can be megabytes long; a message shows their start.
SHOWN_CHARS = 40


def quote(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` in double quotes, escaped, cut to ``limit`` characters: ``"down"``."""
    return json.dumps(text if len(text) <= limit else text[:limit] + "…", ensure_ascii=False)


def first_line(error: BaseException, limit: int | None = None) -> str:
    """The first line of ``error``'s message (its type when it has none), up to ``limit`` chars."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if limit is None else text[:limit]
