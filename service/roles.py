"""What one process of the service runs.

``all`` (the default) is the whole service in one process. The others are
parts of a cluster that shares a PostgreSQL journal: ``engine`` (sources,
rules, the journal stage, the hub and the API) and ``delivery`` (the
channels' workers, as many processes as wanted: they claim the rows they send).
"""

from __future__ import annotations

from typing import Literal

Role = Literal["all", "engine", "delivery"]
ROLES: tuple[Role, ...] = ("all", "engine", "delivery")
