"""MQTT tick source, with aiomqtt (the maintained successor of asyncio-mqtt).

Each message is one tick as a JSON object, ``{"symbol": "IWM", "price":
254.6, "ts": "2026-02-02T14:30:14.000Z", "volume": 100}``; without a
``symbol`` the last topic level names it (``ticks/IWM``). A bad payload is
rejected like any bad tick: counted, its reason logged once, never fatal.

aiomqtt does not reconnect by itself, so :meth:`MqttSource.run` is the loop:
connect, subscribe, read until the connection drops, wait a capped, jittered
backoff, again. The client id is fixed and the session persistent
(``clean_session = false``), so the broker keeps the subscription and the QoS
1 ticks published while the service was away, and delivers them on return.

Failures it tells apart: a link gone silent (nothing read for longer than
:func:`silent_after` the keepalive: ``silent`` in ``/readyz``, then given up
by the client within twice the keepalive plus a second), and a client id that
another connection keeps taking over (``client_id_conflict``, see
:mod:`~service.streams.takeover`: one error line, then retries only every
``conflict_backoff_seconds``).

Flow control: while the engine's queue is full the reader waits, and once
:data:`BACKLOG_HIGH` messages wait in the client it stops reading its socket
until they are down to :data:`BACKLOG_LOW`. TCP then slows the broker, which
holds the rest (QoS 1 up to its ``max_queued_messages``). The broker's own
in-flight window is no bound to rely on: Mosquitto 2.0 sends about a window's
worth more after every acknowledgement.

Acknowledgement after commit: with QoS 1 a message is acknowledged only once
the journal transaction covering its tick (its alerts and the engine state
after it) has committed (:meth:`MqttSource.settle`), so a crash at any point
means redelivery, never loss. A redelivered message (DUP set) whose tick is
no newer than the symbol's latest is not evaluated again; after a restart the
engine's restored state recognises them instead (see
:mod:`service.processing.engine_task`).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from typing import Any

import aiomqtt
import structlog

from service.backoff import retry_delay
from service.errors import TickError
from service.models import Tick
from service.mqtt_common import CONNECT_TIMEOUT_S, NO_DELAY, tls_context
from service.reconnect import Link, reconnecting
from service.streams.aiomqtt_flow import FlowControlledClient, paho_of
from service.streams.decode import check_not_ahead, decode_json, parse_tick
from service.streams.queue import TickSink
from service.streams.rejections import Rejections
from service.streams.settings import MqttSourceConfig
from service.streams.source import SourceSnapshot, SourceState
from service.streams.takeover import TakeoverWatch
from service.timestamps import seconds_to_ns

# A QoS 1 message's receipt: its id (16 bits) and the connection it came on.
_MID_BITS = 16
log = structlog.get_logger("service.streams.mqtt")


def parse_payload(topic: str, payload: object, *, max_bytes: int) -> Tick:
    """One MQTT message → a tick, or :class:`TickError` saying what is wrong with it."""
    if not isinstance(payload, bytes | bytearray):
        raise TickError("not_json", f"expected a JSON payload, got {type(payload).__name__}")
    if len(payload) > max_bytes:
        raise TickError(
            "payload_too_large",
            f"payload of {len(payload):,} bytes is over max_payload_bytes ({max_bytes:,})",
        )
    message = decode_json(payload, what="payload")
    default_symbol = topic.rsplit("/", 1)[-1] or None
    return parse_tick(message, default_symbol=default_symbol)


class MqttSource:
    """A ``[[sources]] kind = "mqtt"``: ticks from topics on an MQTT broker."""

    def __init__(
        self,
        config: MqttSourceConfig,
        rejections: Rejections,
        *,
        clock_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self.name = config.name
        self.description = config.describe()
        self._rejections = rejections
        self._clock_ns = clock_ns
        self.received = 0  # messages read
        self.accepted = 0  # ticks put into the queue
        self.duplicates = 0  # redeliveries dropped
        self.link = Link.for_source(config, prefix="mqtt")
        self.takeover = TakeoverWatch()
        self.conflict = False  # another connection uses this client id (see takeover)
        self._last: dict[str, Tick] = {}
        # QoS 1: the messages of this connection not yet acknowledged, in arrival order:
        # [message id, whether it may be (a commit covers its tick, or it had none), tick].
        self._unacked: deque[list[Any]] = deque()
        # The ticks of the last connection's unacknowledged messages: the broker sends
        # those again first on the next one, and they were put into the queue already.
        self._resent: Counter[Tick] = Counter()
        self._connection = 0  # counts connections: a receipt of an older one is void
        self._client: FlowControlledClient | None = None
        self._logger = _client_logger(self.name)

    @property
    def connected(self) -> bool:
        return self.link.connected

    def snapshot(self) -> SourceSnapshot:
        return SourceSnapshot(
            name=self.name,
            state=self.state,
            problem=self.problem(),
            accepted=self.accepted,
            received=self.received,
            connections=self.connections,
            duplicates=self.duplicates,
            paused=self.paused,
        )

    @property
    def state(self) -> SourceState:
        """``client_id_conflict``, ``silent`` (connected, but nothing heard), or the link's."""
        if self.conflict:
            return "client_id_conflict"
        if self.link.connected and self.silent_for() is not None:
            return "silent"
        return self.link.state

    def problem(self) -> str | None:
        """What keeps this source from being ready, in words (``None``: nothing, or the state)."""
        if self.conflict:
            return (
                f"client id conflict: the broker closed {self.takeover.limit} connections in a "
                f"row within {self.takeover.window_s:g} s of accepting them; another client "
                f"connects as {self.config.client_id!r}"
            )
        silent = self.silent_for() if self.link.connected else None
        if silent is not None:
            return f"link silent for {silent:.1f} s (no answer to keepalive pings)"
        return None

    def silent_for(self) -> float | None:
        """Seconds since the broker last sent anything, once longer than a healthy link allows.

        Past ``keepalive_seconds`` of silence the client pings, and a live broker
        answers at once; the client gives the link up after twice the keepalive.
        While reading is paused (backpressure) nothing is read, and nothing is judged.
        """
        client = self._client
        if client is None or client.reading_paused:
            return None
        quiet = time.monotonic() - client.last_read
        return quiet if quiet > silent_after(self.config.keepalive_seconds) else None

    @property
    def connections(self) -> int:
        return self.link.connections

    @property
    def unacknowledged(self) -> int:
        """QoS 1 messages of this connection read but not yet acknowledged (no commit yet)."""
        return len(self._unacked)

    @property
    def backlog(self) -> int:
        """Messages the client has read from the broker that wait for this source."""
        return 0 if self._client is None else len(self._client.messages)

    @property
    def paused(self) -> int:
        """How many times reading stopped because the backlog reached :data:`BACKLOG_HIGH`."""
        return 0 if self._client is None else self._client.pauses

    async def run(self, queue: TickSink) -> None:
        """Consume ticks into ``queue`` until cancelled, reconnecting whenever the link drops.

        Connections taken over by another client with the same id (see
        :mod:`~service.streams.takeover`) are reported once, as an error, and
        retried only every ``conflict_backoff_seconds``, so that the other
        instance keeps the ticks instead of both fighting for them.
        """
        client = self._client = self._new_client()

        async def session() -> None:
            async with client:
                self.takeover.connected(time.monotonic())
                await self._session(client, queue)

        await reconnecting(
            self.link, session, retry_on=(aiomqtt.MqttError,), delay_after=self._after_failure
        )

    def _after_failure(self, error: str, delay: float) -> float:
        """The backoff, or a long one while another connection takes this client id over."""
        if self.takeover.ended(time.monotonic()):
            return self._taken_over(error)
        return delay

    def _taken_over(self, error: str) -> float:
        config = self.config
        backoff = config.conflict_backoff_seconds
        delay = retry_delay(1, initial=backoff, maximum=backoff) + backoff / 2  # 1 to 1.5 x
        if not self.conflict:
            self.conflict = True
            log.error(
                "mqtt_client_id_conflict",
                source=self.name,
                client_id=config.client_id,
                url=self.link.url,
                error=error,
                takeovers=self.takeover.short,
                within_s=self.takeover.window_s,
                retry_in_s=round(delay, 1),
                hint="another client connects with this client_id and the broker closes one "
                "of the two each time: give every instance its own [[sources]] client_id",
            )
        return delay

    async def _hold_conflict_clear(self) -> None:
        """A connection that outlasts the takeover window ends the conflict."""
        await asyncio.sleep(self.takeover.window_s)
        if self.conflict and self.takeover.holding(time.monotonic()):
            self.conflict = False
            log.info("mqtt_client_id_conflict_over", source=self.name)

    async def _session(self, client: FlowControlledClient, queue: TickSink) -> None:
        """One connection: read from the moment it is up, subscribe meanwhile.

        On a resumed session the broker re-sends every unacknowledged message
        right after CONNACK, before the SUBACK (thousands after a crash in a
        burst). Reading stops at :data:`BACKLOG_HIGH` until the backlog is
        consumed, so the SUBACK behind them is only read if consuming starts
        now, not once the subscription is confirmed.
        """
        config = self.config
        async with asyncio.TaskGroup() as session:
            session.create_task(self._consume(client, queue), name=f"mqtt[{self.name}].consume")
            await self._subscribe(client)
            self.link.up(topics=list(config.topics), qos=config.qos, client_id=config.client_id)
            if self.conflict:
                session.create_task(self._hold_conflict_clear())

    def _new_client(self) -> FlowControlledClient:
        config = self.config
        client = FlowControlledClient(
            config.host,
            config.port,
            identifier=config.client_id,
            username=config.username,
            password=config.password,
            clean_session=config.clean_session,
            keepalive=config.keepalive_seconds,
            timeout=CONNECT_TIMEOUT_S,
            tls_context=tls_context(config.tls, config.ca_file),
            logger=self._logger,
            socket_options=NO_DELAY,
        )
        if config.qos == 1:
            # aiomqtt 2.x has no public switch for paho's manual acknowledgements.
            paho_of(client).manual_ack_set(True)
        return client

    async def _subscribe(self, client: aiomqtt.Client) -> None:
        topics = self.config.topics
        requests: list[tuple[str, int]] = [(topic, self.config.qos) for topic in topics]
        # No timeout of its own: the SUBACK may wait behind a long redelivery, and a
        # dead link is told by the keepalive, which ends the session.
        granted = await client.subscribe(requests, timeout=math.inf)
        # MQTT 3.1.1 grants a QoS per filter, 0x80 meaning refused (MQTT 5: reason codes).
        refused = [
            topic
            for topic, code in zip(topics, granted, strict=False)
            if (code if isinstance(code, int) else getattr(code, "value", 0)) >= 0x80
        ]
        if refused:
            log.error(
                "mqtt_subscribe_refused",
                source=self.name,
                topics=refused,
                hint="the broker refused these topic filters; check its ACL for this user",
            )

    def settle(self, receipts: Sequence[int]) -> None:
        """A commit covers the ticks of ``receipts``: acknowledge what may now be, in order.

        MQTT wants acknowledgements in the order the messages came, so one waits
        for every message before it. Receipts of a connection that has ended are
        void: the broker sends those messages again, and the engine recognises them.
        """
        client = self._client
        if client is None or not self._unacked:
            return
        settled = {
            receipt & 0xFFFF for receipt in receipts if receipt >> _MID_BITS == self._connection
        }
        if not settled:
            return
        for entry in self._unacked:
            if entry[0] in settled:
                entry[1] = 1
        acknowledge = paho_of(client).ack
        while self._unacked and self._unacked[0][1]:
            acknowledge(self._unacked.popleft()[0], 1)

    def _seen(self, tick: Tick) -> bool:
        """Whether a tick this old was taken already: every tick queued is, at most, as new."""
        last = self._last.get(tick.symbol)
        return last is not None and tick.ts_ns <= last.ts_ns

    async def _consume(self, client: FlowControlledClient, queue: TickSink) -> None:
        max_bytes = self.config.max_payload_bytes
        max_ahead_ns = seconds_to_ns(self.config.max_future_seconds)
        qos1 = self.config.qos == 1
        self._connection += 1
        # Those of the last connection come again: their ticks are in the queue already.
        self._resent = Counter(entry[2] for entry in self._unacked if entry[2] is not None)
        self._unacked.clear()
        connection = self._connection << _MID_BITS
        unacked = self._unacked
        acknowledge = paho_of(client).ack

        def acknowledge_in_order(mid: int) -> None:
            """A message with nothing to evaluate: acknowledged once those before it are."""
            if unacked:
                unacked.append([mid, 1, None])
            else:
                acknowledge(mid, 1)

        while True:
            message = await client.next_message()
            self.received += 1
            topic = message.topic.value
            try:
                tick = check_not_ahead(
                    parse_payload(topic, message.payload, max_bytes=max_bytes),
                    received_ns=self._clock_ns(),
                    max_ahead_ns=max_ahead_ns,
                )
            except TickError as error:
                self._rejections.record(error, source=self.name, where=f"topic {topic}")
                tick = None
            qos = qos1 and message.qos > 0
            if message.dup and tick is not None and self._seen(tick):
                # Sent again (after a reconnect, or a PUBACK the broker never got): the
                # tick is evaluated or queued already. One queued but not yet covered by
                # a commit is acknowledged with its first copy's commit, never before.
                self.duplicates += 1
                if qos:
                    if self._resent[tick] > 0:
                        self._resent[tick] -= 1
                        unacked.append([message.mid, 0, None])
                        await queue.put_receipt(self.name, connection | message.mid)
                    else:
                        acknowledge_in_order(message.mid)
                client.resume_reading_if_drained()
                continue
            last = self._last.get(tick.symbol) if tick is not None else None
            if tick is not None and last != tick:
                if last is None or tick.ts_ns >= last.ts_ns:
                    self._last[tick.symbol] = tick  # the latest: what a redelivery repeats
                if qos:
                    # Acknowledged once a commit covers the tick (see settle).
                    unacked.append([message.mid, 0, tick])
                    await queue.put(tick, self.name, connection | message.mid)
                else:
                    await queue.put(tick, self.name)
                self.accepted += 1
            else:
                if tick is not None:
                    self.duplicates += 1
                if qos:
                    acknowledge_in_order(message.mid)
            client.resume_reading_if_drained()


def silent_after(keepalive_s: float) -> float:
    """How long a live link can be quiet: the keepalive, then the ping's answer, with margin.

    The client pings within a second (its housekeeping tick) of ``keepalive_s``
    without a byte; a live broker answers in milliseconds. Past this the link
    is reported silent; the client gives it up at twice the keepalive.
    """
    return keepalive_s + 2.0


class _ToStructlog(logging.Handler):
    """Hands aiomqtt's and paho's own messages to structlog, as debug lines.

    The source logs every state change itself (``mqtt_disconnected``…); the
    libraries' messages about the same events ("failed to receive on socket")
    are details for debugging, not news.
    """

    def __init__(self, source: str) -> None:
        super().__init__(logging.WARNING)
        self.source = source

    def emit(self, record: logging.LogRecord) -> None:
        log.debug("mqtt_client_log", source=self.source, message=record.getMessage())


def _client_logger(source: str) -> logging.Logger:
    logger = logging.getLogger(f"service.streams.mqtt.client.{source}")
    logger.propagate = False
    logger.setLevel(logging.WARNING)
    logger.handlers = [_ToStructlog(source)]
    return logger
