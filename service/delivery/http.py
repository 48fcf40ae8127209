"""What the HTTP channels (webhook, Web Push) share: one client session each, safe errors."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp


def redact_url(url: str) -> str:
    """``scheme://host`` of a URL: push and webhook URLs may carry tokens in every other part."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}"


class HttpSession:
    """One aiohttp session for a sender: opened on first use (inside the loop), closed at stop."""

    def __init__(self, timeout_seconds: float) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
