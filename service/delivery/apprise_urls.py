"""Whether apprise can use a push URL: for config validation and sign-up, with no channel.

apprise is imported on first use: ``strykr-alerts check`` and ``replay`` never pay for it.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def push_url_problem(url: str) -> str | None:
    """Why apprise cannot use ``url`` (``None``: it can). The message never repeats the URL."""
    import apprise  # half a second of imports: only when a URL is checked

    if apprise.Apprise.instantiate(url) is None:
        scheme = urlsplit(url).scheme or "(none)"
        return (
            f"not a push URL apprise understands (scheme {scheme}); "
            "see https://github.com/caronc/apprise/wiki for ntfy://, tgram://, json://, …"
        )
    return None
