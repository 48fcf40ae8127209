"""Waiting for a condition in a test, with a deadline that fails the test."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(
    condition: Callable[[], bool], *, within: float = 10.0, what: str = ""
) -> None:
    """Wait until ``condition()`` holds, checking every 10 ms; fail after ``within`` seconds."""
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {within} s: {what or condition}")
        await asyncio.sleep(0.01)


def wait_until(condition: Callable[[], bool], *, within: float = 10.0, what: str = "") -> None:
    """:func:`eventually` for a test outside an event loop (one that drives processes)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what or condition}")
        time.sleep(0.01)
