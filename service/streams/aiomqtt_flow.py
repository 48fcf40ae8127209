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
# Messages taken at once from those read, before the loop runs the others (the engine).
TAKEN_AT_ONCE = 256
# The aiomqtt series whose internals this module relies on.
AIOMQTT_SERIES = (2, 5)


class DeliveredMessage(aiomqtt.Message):
    """aiomqtt's message, with the DUP flag it drops: set when the broker sends it again."""

    def __init__(self, message: paho.MQTTMessage) -> None:
        super().__init__(
            message.topic,
            bytes(message.payload),
            message.qos,
            message.retain,
            message.mid,
            getattr(message, "properties", None),
        )
        self.dup = bool(message.dup)


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
        self._taken_at_once = 0
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

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        # As aiomqtt's, unbounded (reading stops at BACKLOG_HIGH instead), keeping DUP.
        self._queue.put_nowait(DeliveredMessage(message))

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

    async def next_message(self) -> DeliveredMessage:
        """The next message: one already read is taken at once, else as aiomqtt's iterator does.

        aiomqtt's iterator makes a task and an ``asyncio.wait`` per message. Taking
        those already read without them lets the reader hand the engine every
        message of a socket read at once (a batch), instead of one per loop turn.
        A message only waits here while none is read; a link that dropped is
        told by the iterator, which raises.
        """
        queue = self._queue
        if (
            self._taken_at_once < TAKEN_AT_ONCE
            and not queue.empty()
            and not self._disconnected.done()
        ):
            self._taken_at_once += 1
            message = queue.get_nowait()
            assert isinstance(message, DeliveredMessage)
            return message
        self._taken_at_once = 0  # the loop runs others now and then: at most this many first
        read = await anext(self.messages)
        assert isinstance(read, DeliveredMessage)
        return read

    def resume_reading_if_drained(self) -> None:
        client = self._paused_socket
        if client is None or len(self.messages) > BACKLOG_LOW:
            return
        self._paused_socket = None
        self.last_read = time.monotonic()  # the pause was ours, not the broker's silence
        sock = client.socket()
        if sock is not None:
            self._loop.add_reader(sock.fileno(), self._read, client)
