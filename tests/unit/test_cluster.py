"""``[cluster]``, ``--shard`` and the symbols and topics of an engine shard."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.__main__ import _for_this_process, _parser
from service.cluster import ClusterConfig, parse_shard, shard_of, shard_topics
from service.config import parse_config
from service.errors import ConfigError
from service.streams.settings import MqttSourceConfig, ReplaySourceConfig
from service.streams.sources import for_shard

symbols = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-", min_size=1, max_size=12)


@given(symbol=symbols, shards=st.integers(min_value=1, max_value=64))
def test_every_symbol_belongs_to_exactly_one_shard_the_same_everywhere(
    symbol: str, shards: int
) -> None:
    owners = [i for i in range(shards) if ClusterConfig(shards=shards, shard=i).owns(symbol)]
    assert owners == [shard_of(symbol, shards)]
    # The documented hash, so another tool can tell where a symbol is watched.
    assert owners == [zlib.crc32(symbol.encode("utf-8")) % shards]


@given(names=st.lists(symbols, unique=True, max_size=30), shards=st.integers(1, 8))
def test_the_shards_split_the_symbols_between_them(names: list[str], shards: int) -> None:
    parts = [ClusterConfig(shards=shards, shard=i).owned(names) for i in range(shards)]
    assert sorted(s for part in parts for s in part) == sorted(names)


def test_one_shard_owns_every_symbol_and_has_no_label() -> None:
    single = ClusterConfig()
    assert single.owns("IWM")
    assert single.owns("QQQ")
    assert (single.sharded, single.label) == (False, "")
    assert ClusterConfig(shards=4, shard=3).label == "3/4"


def test_shard_argument_reads_i_of_n_and_says_what_is_wrong() -> None:
    assert parse_shard("1/2") == ClusterConfig(shards=2, shard=1)
    assert parse_shard(" 0/1 ") == ClusterConfig()
    with pytest.raises(ValueError, match="expected i/N, such as 0/2"):
        parse_shard("1 of 2")
    with pytest.raises(ValueError, match="i must be 0 to 1, got 2"):
        parse_shard("2/2")
    with pytest.raises(ValueError, match="N must be 1 to 1024, got 0"):
        parse_shard("0/0")


def test_cluster_table_is_read_and_checked() -> None:
    config = parse_config("[cluster]\nshards = 3\nshard = 2\nprices_topic = 'p/q/'\n")
    assert config.cluster == ClusterConfig(shards=3, shard=2, prices_topic="p/q")
    assert parse_config("").cluster == ClusterConfig()


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ("shards = 2\nshard = 2", "cluster.shard: expected 0 to 1 (shards = 2), got 2"),
        ("shards = 0", "cluster.shards: expected an integer"),
        ("shards = 5000", "cluster.shards: at most 1024"),
        ("shard = -1", "cluster.shard: expected an integer"),
        ("shrads = 2", 'cluster.shrads: unknown key; did you mean "shards"?'),
        ('prices_topic = "strykr/#"', "cluster.prices_topic: a topic, without wildcards (# +)"),
        ("prices_hz = 1000", "cluster.prices_hz: at most 100, got 1000"),
        ("prices_hz = 0", "cluster.prices_hz: expected a number"),
    ],
)
def test_cluster_table_when_bad_names_the_key(table: str, expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(f"[cluster]\n{table}\n")
    assert any(line.startswith(expected) for line in raised.value.problems), raised.value.problems


def test_a_shard_subscribes_to_its_symbols_topics_only() -> None:
    assert shard_topics(["ticks/#"], ["QQQ", "IWM"]) == ("ticks/IWM", "ticks/QQQ")
    assert shard_topics(["a/+", "b/#", "fixed/topic"], ["X"]) == ("a/X", "b/X", "fixed/topic")
    assert shard_topics(["#"], ["X"]) == ("#",)  # no prefix: kept, the engine drops the rest
    assert shard_topics(["ticks/#"], []) == ()


def test_a_shards_mqtt_source_has_a_session_of_its_own_and_its_topics() -> None:
    mqtt = MqttSourceConfig(name="feed", host="127.0.0.1", client_id="strykr-feed")
    replay = ReplaySourceConfig(name="file", path=Path("t.csv"))
    cluster = ClusterConfig(shards=2, shard=1)
    shard_mqtt, shard_replay = for_shard([mqtt, replay], cluster, ["IWM"])
    assert isinstance(shard_mqtt, MqttSourceConfig)
    assert shard_mqtt.topics == ("ticks/IWM",)
    assert shard_mqtt.client_id == "strykr-feed-shard1of2"
    assert shard_replay == replay
    # A shard with no symbol of its own hears nothing from the broker.
    assert for_shard([mqtt], cluster, []) == []
    assert for_shard([mqtt], ClusterConfig(), ["IWM"]) == [mqtt]


def test_the_command_line_sets_the_shard_and_the_ports_and_keeps_the_rest() -> None:
    config = parse_config(
        "[cluster]\nprices_hz = 2\n[http]\nport = 8080\n[websocket]\nport = 8765\n"
    )
    args = _parser().parse_args(
        ["run", "--role", "engine", "--shard", "1/4", "--http-port", "0", "--ws-port", "9000"]
    )
    changed = _for_this_process(config, args)
    assert changed.cluster == ClusterConfig(shards=4, shard=1, prices_hz=2.0)
    assert changed.http is not None
    assert changed.websocket is not None
    assert (changed.http.port, changed.websocket.port) == (0, 9000)
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "--shard", "4/4"])
