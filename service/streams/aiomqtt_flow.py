"""aiomqtt 2.5's client, reading its socket only while its backlog has room.

aiomqtt 2.x documents ``max_queued_incoming_messages`` as "If the queue is
full, further incoming messages are discarded", which ticks cannot afford;
and it reads whenever the socket is readable. This client replaces its socket
reader (through aiomqtt's private ``_on_socket_open`` and loop) with one that
stops reading at :data:`BACKLOG_HIGH` waiting messages and resumes at
:data:`BACKLOG_LOW`, so TCP slows the broker instead. It leans on aiomqtt's
internals; ``tests/unit/streams/test_aiomqtt_flow.py`` fails as soon as the
installed aiomqtt is not the 2.5 series it was written against.
"""

from __future__ import annotations

import ssl
import time
from typing import Any

import aiomqtt
import paho.mqtt.client as paho

# Messages read from the broker and waiting for the source: reading stops at
# the high mark and resumes at the low one.
BACKLOG_HIGH = 1_000
BACKLOG_LOW = 100
# The aiomqtt series whose internals this module relies on.
AIOMQTT_SERIES = (2, 5)


def paho_of(client: aiomqtt.Client) -> paho.Client:
    # Private, but stable across the pinned aiomqtt 2.x: one paho client per aiomqtt client.
    return client._client


class FlowControlledClient(aiomqtt.Client):
    """aiomqtt's client that stops reading its socket while its backlog is full.

    aiomqtt 2.x reads whenever the socket is readable and queues without
    bound. This replaces its socket reader with one that does the same (paho's
    ``loop_read``, a broken socket ending the connection) and, past
    :data:`BACKLOG_HIGH` waiting messages, unregisters itself until
    :meth:`resume_reading_if_drained` finds the backlog at :data:`BACKLOG_LOW`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pauses = 0
        self.last_read = time.monotonic()  # when the socket last gave bytes (or opened)
        self._paused_socket: paho.Client | None = None

    @property
    def reading_paused(self) -> bool:
        return self._paused_socket is not None

    def _on_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        super()._on_socket_open(client, userdata, sock)
        self._paused_socket = None
        self.last_read = time.monotonic()
        # Runs after aiomqtt's own add_reader (same thread-safe queue): replaces its reader.
        self._loop.call_soon_threadsafe(self._loop.add_reader, sock.fileno(), self._read, client)

    def _read(self, client: paho.Client) -> None:
        self.last_read = time.monotonic()
        try:
            while True:
                client.loop_read()
                sock = client.socket()
                # An SSL socket can hold decoded bytes that select() does not report.
                if isinstance(sock, ssl.SSLSocket) and sock.pending() > 0:
                    continue
                break
        except Exception as error:  # as in aiomqtt: any read error ends the connection
            if not self._disconnected.done():
                self._disconnected.set_exception(error)
            return
        if len(self.messages) >= BACKLOG_HIGH:
            sock = client.socket()
            if sock is not None:
                self._loop.remove_reader(sock.fileno())
                self._paused_socket = client
                self.pauses += 1

    def resume_reading_if_drained(self) -> None:
        client = self._paused_socket
        if client is None or len(self.messages) > BACKLOG_LOW:
            return
        self._paused_socket = None
        self.last_read = time.monotonic()  # the pause was ours, not the broker's silence
        sock = client.socket()
        if sock is not None:
            self._loop.add_reader(sock.fileno(), self._read, client)
