"""What one process of the service runs.

``all`` (the default) is the whole service in one process. The others are
parts of a cluster that shares a PostgreSQL journal (docs/scaling.md):

- ``engine``: sources, rules and the journal stage, for the symbols of its
  shard (``[cluster]``, ``--shard i/N``); a second process of the same shard
  is its standby;
- ``delivery``: the channels' workers (as many processes as wanted: each
  claims the rows it sends);
- ``gateway``: the websocket hub, fed with the alerts the engines commit;
- ``api``: the HTTP API and the dashboard page.

Every role answers ``/healthz``, ``/readyz`` and ``/metrics`` on its ``[http]``
port; only ``all`` and ``api`` serve the rest of the HTTP API there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

Role = Literal["all", "engine", "delivery", "gateway", "api"]
ROLES: tuple[Role, ...] = ("all", "engine", "delivery", "gateway", "api")
# Roles that keep a read model of the rules and articles but run no engine.
FOLLOWERS: tuple[Role, ...] = ("gateway", "api")


def role_problem(role: Role, journal: Path | str | None, *, sharded: bool = False) -> str | None:
    """Why ``role`` cannot run on ``journal`` (``[service] journal``), if it cannot."""
    if sharded and role != "engine":
        return (
            f"--role {role}: [cluster] shards (or --shard) divides the engines' symbols; "
            "it applies to --role engine only"
        )
    if role == "all" or isinstance(journal, str):
        return None
    return (
        f"--role {role}: the processes of a cluster share a PostgreSQL journal; "
        'set [service] journal = "postgresql://…" (or run without --role)'
    )
