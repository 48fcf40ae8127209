"""What one process of the service runs.

``all`` (the default) is the whole service in one process. The others are
parts of a cluster that shares a PostgreSQL journal: ``engine`` (sources,
rules, the journal stage, the hub and the API) and ``delivery`` (the
channels' workers, as many processes as wanted: they claim the rows they send).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Role = Literal["all", "engine", "delivery"]
ROLES: tuple[Role, ...] = ("all", "engine", "delivery")


def role_problem(role: Role, journal: Path | str | None) -> str | None:
    """Why ``role`` cannot run on ``journal`` (``[service] journal``), if it cannot."""
    if role == "all" or isinstance(journal, str):
        return None
    return (
        f"--role {role}: the processes of a cluster share a PostgreSQL journal; "
        'set [service] journal = "postgresql://…" (or run without --role)'
    )
