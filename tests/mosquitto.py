"""A real Mosquitto broker for one test (or one benchmark): own port, own config, own files.

The port is chosen before start (``listener 0`` does not pick a free TCP
port), on 127.0.0.1 only. Persistence is on, in the broker's own directory,
so a broker stopped and started again keeps its sessions and queued messages,
as a production broker configured for it would.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

INSTALL_HINT = (
    "the MQTT tests start their own Mosquitto broker; install it with "
    "`sudo apt-get install mosquitto mosquitto-clients` (make test does this when it can)"
)


def find_program(name: str) -> str:
    """The path of a Mosquitto program, or an AssertionError saying how to install it."""
    found = shutil.which(name) or next(
        (
            str(path)
            for path in (Path("/usr/sbin") / name, Path("/usr/bin") / name)
            if path.exists()
        ),
        None,
    )
    if found is None:
        raise AssertionError(f"{name} not found: {INSTALL_HINT}")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mosquitto:
    """One broker process: :meth:`start`, :meth:`stop` (SIGTERM saves its state), again."""

    def __init__(
        self, directory: Path, *, port: int | None = None, max_inflight_messages: int = 20
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.process: subprocess.Popen[bytes] | None = None
        directory.mkdir(parents=True, exist_ok=True)
        self.config_path = directory / "mosquitto.conf"
        self.log_path = directory / "mosquitto.log"
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {directory}/",
            "autosave_interval 1",
            # Queue generously for offline and busy clients: the default (1000)
            # drops the rest silently.
            "max_queued_messages 1000000",
            # 0: no limit, as MQTT 5 brokers allow a client 65,535 by default.
            f"max_inflight_messages {max_inflight_messages}",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if os.geteuid() == 0:
            # Run as root it would switch to the mosquitto user, who cannot write here.
            lines.append("user root")
        self.config_path.write_text("\n".join(lines) + "\n")

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 5.0) -> None:
        assert self.process is None, "already running"
        self.process = subprocess.Popen(
            [find_program("mosquitto"), "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"mosquitto exited with status {self.process.returncode}: {self.log_tail()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise AssertionError(f"mosquitto did not listen on {self.port} within {timeout} s")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> None:
        """Stop the broker (SIGTERM: it saves its sessions first) and wait for it."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def publish(self, topic: str, *messages: str | bytes, qos: int = 1) -> None:
        """Publish each of ``messages`` with ``mosquitto_pub``, in order."""
        for message in messages:
            payload = message.encode() if isinstance(message, str) else message
            command = [
                find_program("mosquitto_pub"),
                "-h", self.host, "-p", str(self.port), "-t", topic, "-q", str(qos), "-s",
            ]  # fmt: skip
            subprocess.run(command, input=payload, check=True, timeout=10, capture_output=True)

    def publish_lines(self, topic: str, lines: list[str], *, qos: int = 1) -> None:
        """Publish one message per line with a single ``mosquitto_pub -l``."""
        command = [
            find_program("mosquitto_pub"),
            "-h", self.host, "-p", str(self.port), "-t", topic, "-q", str(qos), "-l",
        ]  # fmt: skip
        text = "".join(line + "\n" for line in lines)
        subprocess.run(command, input=text.encode(), check=True, timeout=60, capture_output=True)

    def log_tail(self, chars: int | None = 2000) -> str:
        """The end of the broker's log (``None``: all of it)."""
        try:
            text = self.log_path.read_text()
        except OSError:
            return "(no log)"
        return text if chars is None else text[-chars:]
