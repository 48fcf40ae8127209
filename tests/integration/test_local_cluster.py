"""``make cluster``: the whole cluster as local processes starts, reports each role, and stops."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
ROLES = [
    "engine-0",
    "engine-1",
    "delivery-1",
    "delivery-2",
    "gateway-1",
    "gateway-2",
    "api",
    "engine-0-standby",
    "engine-1-standby",
]


@pytest.mark.slow
def test_the_local_cluster_starts_every_role_and_stops_them_all() -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "scripts/local_cluster.py"), "--free-ports", "--seconds", "2"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    lines = {
        line.split()[0]: line for line in done.stdout.splitlines()[1:] if line.startswith("  ")
    }
    for role in ROLES:
        expected = "standby; another process runs it" if role.endswith("standby") else "ready"
        assert expected in lines[role], lines[role]
    assert "http://127.0.0.1:" in lines["api"]
    assert "ws://127.0.0.1:" in lines["gateway-1"]
    # Every process stopped at its SIGTERM, and cleanly.
    assert f"stopped: {dict.fromkeys(ROLES, 0)}" in done.stdout
