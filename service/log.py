"""The one place where logging is configured.

structlog renders readable, coloured lines on a terminal and JSON lines
otherwise (a file, a pipe, journald, a container runtime). Logs go to stderr:
stdout belongs to command output such as ``replay``'s alerts.
"""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


def configure_logging(
    *,
    level: str = "info",
    fmt: Literal["auto", "console", "json"] = "auto",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog for the whole process; call once at start-up."""
    out = stream if stream is not None else sys.stderr
    on_terminal = out.isatty()
    as_json = fmt == "json" or (fmt == "auto" and not on_terminal)
    processors: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if as_json:
        processors += [structlog.processors.dict_tracebacks, structlog.processors.JSONRenderer()]
    else:
        processors.append(
            structlog.dev.ConsoleRenderer(
                colors=on_terminal,
                # Keys in the order the code gives them: the headline of an alert first.
                sort_keys=False,
                # Locals can hold secrets read from the environment.
                exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False),
            )
        )
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
