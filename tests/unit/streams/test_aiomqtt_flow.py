"""The flow-controlled client leans on aiomqtt's internals: only for the series it knows."""

from __future__ import annotations

from importlib.metadata import version

import aiomqtt

from service.streams.aiomqtt_flow import AIOMQTT_SERIES, FlowControlledClient


def test_the_installed_aiomqtt_is_the_series_the_flow_control_was_written_for() -> None:
    installed = tuple(int(part) for part in version("aiomqtt").split(".")[:2])
    assert installed == AIOMQTT_SERIES, (
        f"aiomqtt {version('aiomqtt')} is installed; service/streams/aiomqtt_flow.py reads "
        f"the internals of {AIOMQTT_SERIES[0]}.{AIOMQTT_SERIES[1]}.x: check them and update it"
    )


async def test_the_internals_it_replaces_are_there() -> None:
    # The socket-open hook it overrides, and the private parts it reads.
    assert callable(aiomqtt.Client._on_socket_open)
    client = FlowControlledClient("127.0.0.1", 1)
    for name in ("_loop", "_disconnected", "_client"):
        assert hasattr(client, name), name
