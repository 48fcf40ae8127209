"""Every default is written once, in its dataclass: a key left out reads as that default."""

from __future__ import annotations

from pathlib import Path

from service.api.settings import HttpConfig
from service.articles.settings import ArticlesConfig
from service.config import DEFAULT_JOURNAL, ServiceConfig, parse_config
from service.delivery.settings import (
    DeliveryConfig,
    EmailConfig,
    MqttOutConfig,
    PushConfig,
    WebhookConfig,
)
from service.hub.settings import WebsocketHubConfig
from service.models import LevelRule
from service.rules.settings import EngineConfig
from service.streams.settings import (
    MqttSourceConfig,
    ReplaySourceConfig,
    SimulatorSourceConfig,
    WebsocketSourceConfig,
)

TICKS = Path(__file__).resolve().parents[1] / "data" / "iwm_day.csv"


def test_tables_left_out_read_as_their_dataclass_defaults(tmp_path: Path) -> None:
    config = parse_config("", base_dir=tmp_path)
    assert config.service == ServiceConfig(journal=tmp_path / DEFAULT_JOURNAL)
    assert config.engine == EngineConfig()
    assert config.articles == ArticlesConfig()
    assert config.delivery == DeliveryConfig()
    assert config.push == PushConfig()
    assert config.webhook == WebhookConfig()
    assert config.websocket == WebsocketHubConfig()
    assert config.http == HttpConfig()


def test_tables_with_only_their_required_keys_read_as_their_dataclass_defaults() -> None:
    config = parse_config(
        f"""
[email]
host = "smtp.example.com"
from = "alerts@example.com"

[mqtt_out]
url = "mqtt://broker.example.com"

[[sources]]
kind = "replay"
name = "file"
path = "{TICKS}"

[[sources]]
kind = "mqtt"
name = "broker"
url = "mqtt://broker.example.com"

[[sources]]
kind = "websocket"
name = "feed"
url = "wss://feed.example.com"

[[sources]]
kind = "simulator"
name = "sim"
prices = {{ IWM = 260.0 }}

[[rules]]
id = "r"
symbol = "IWM"
level = 255.0
direction = "below"
"""
    )
    assert config.email == EmailConfig(host="smtp.example.com", sender="alerts@example.com")
    assert config.mqtt_out == MqttOutConfig(host="broker.example.com")
    replay, mqtt, feed, simulator = config.sources
    assert replay == ReplaySourceConfig(name="file", path=TICKS)
    # The client id's default names the source: the one default a dataclass cannot hold.
    assert mqtt == MqttSourceConfig(
        name="broker", host="broker.example.com", client_id="strykr-alerts-broker"
    )
    assert feed == WebsocketSourceConfig(name="feed", url="wss://feed.example.com")
    assert simulator == SimulatorSourceConfig(name="sim", prices=(("IWM", 260.0),))
    assert config.rules == (LevelRule(id="r", symbol="IWM", level=255.0, direction="below"),)
