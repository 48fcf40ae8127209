"""A publisher of a deterministic tick stream: QoS 1, at a steady rate, in a thread (paho)."""

from __future__ import annotations

import threading
import time

import paho.mqtt.client as paho

from service.models import Tick
from tests.feeds import payload
from tests.mosquitto import Mosquitto


class Publisher:
    """Publishes the ticks with QoS 1 at a steady rate in a thread; :attr:`sent` says how far."""

    def __init__(
        self,
        broker: Mosquitto,
        ticks: list[Tick],
        per_second: float,
        *,
        client_id: str = "tick-feed",
    ) -> None:
        self._client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()
        self._ticks = ticks
        self._every_s = 1 / per_second
        self.sent = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._publish, daemon=True)
        self._thread.start()

    def _publish(self) -> None:
        try:
            started = time.monotonic()
            for index, tick in enumerate(self._ticks):
                if self._stop.is_set():
                    return
                delay = started + index * self._every_s - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                info = self._client.publish(f"ticks/{tick.symbol}", payload(tick), qos=1)
                info.wait_for_publish(timeout=10)
                self.sent = index + 1
        except BaseException as error:  # the test reports it
            self.error = error

    def wait(self, timeout: float) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"published {self.sent} of {len(self._ticks)}"
        assert self.error is None, f"the publisher failed: {self.error!r}"

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._client.loop_stop()
        self._client.disconnect()
