"""What every MQTT client of the service (ticks in, alerts out) connects with."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

# One connection attempt: the TCP connect, TLS and the CONNACK.
CONNECT_TIMEOUT_S = 10.0
# Nagle's algorithm holds small packets back for up to 40 ms: ticks and alerts are small.
NO_DELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


def tls_context(tls: bool, ca_file: Path | None) -> ssl.SSLContext | None:
    """The TLS context of an mqtts:// connection (``ca_file`` trusts a private CA), or ``None``."""
    if not tls:
        return None
    return ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
