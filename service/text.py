"""Showing untrusted input inside messages."""

from __future__ import annotations

import json
import re

# Inputs can be megabytes long; a message shows their start.
SHOWN_CHARS = 40


def quote(text: str, limit: int = SHOWN_CHARS) -> str:
    """``text`` in double quotes, escaped, cut to ``limit`` characters: ``"down"``."""
    return json.dumps(text if len(text) <= limit else text[:limit] + "…", ensure_ascii=False)


def first_line(error: BaseException, limit: int | None = None) -> str:
    """The first line of ``error``'s message (its type when it has none), up to ``limit`` chars."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text if limit is None else text[:limit]


# Characters that end or fold a header line, or hide text: C0 and C1 controls, DEL,
# and the Unicode line and paragraph separators.
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str, limit: int | None = None) -> str:
    """``text`` made safe for a header or a title: control characters become one space.

    ``=?`` becomes ``= ?``: it opens an RFC 2047 encoded word, which a mail
    library decodes, newlines included, when it parses the header it is in.
    """
    flat = " ".join(_BREAKS.sub(" ", text).split()).replace("=?", "= ?")
    if limit is not None and len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return flat
