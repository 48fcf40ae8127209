"""The delivery part of the config: subscribers, channels, the hub, the journal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.config import parse_config
from service.delivery.settings import EmailConfig, MqttOutConfig
from service.errors import ConfigError
from service.hub.protocol import ClientMessageError, parse_subscribe
from service.hub.settings import WebsocketHubConfig
from service.journal.records import Subscriber

EMAIL = '[email]\nhost = "smtp.example.com"\nfrom = "alerts@example.com"\n'


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, env={"HOOK": "s3cret"})
    return list(caught.value.problems)


def test_defaults_journal_under_var_and_hub_on_loopback_8765(tmp_path: Path) -> None:
    config = parse_config("", base_dir=tmp_path)
    assert config.service.journal == tmp_path / "var" / "alerts.db"
    assert config.websocket == WebsocketHubConfig()
    assert (config.websocket.host, config.websocket.port, config.websocket.tick_hz) == (
        "127.0.0.1",
        8765,
        4.0,
    )
    assert config.email is None
    assert config.mqtt_out is None
    assert config.subscribers == ()


def test_hub_can_be_turned_off_and_journal_kept_in_memory() -> None:
    config = parse_config('[service]\njournal = ":memory:"\n[websocket]\nenabled = false\n')
    assert config.websocket is None
    assert config.service.journal is None


def test_secrets_in_arrays_come_from_the_environment() -> None:
    config = parse_config(
        '[websocket]\ntokens = ["env:WS_TOKEN", "plain"]\n'
        '[[subscribers]]\nid = "a"\npush = ["env:NTFY"]\nsymbols = ["*"]\n',
        env={"WS_TOKEN": "t0ken", "NTFY": "ntfy://ntfy.sh/secret-topic"},
    )
    assert config.websocket is not None
    assert config.websocket.tokens == ("t0ken", "plain")
    assert config.subscribers[0].push == ("ntfy://ntfy.sh/secret-topic",)
    assert problems('[websocket]\ntokens = ["env:NOPE"]') == [
        "websocket.tokens[0]: environment variable NOPE is not set"
    ]


def test_static_subscriber_with_every_channel_is_read_and_confirmed() -> None:
    config = parse_config(
        EMAIL
        + """
[mqtt_out]
url = "mqtt://127.0.0.1:1884"
[[subscribers]]
id = "desk"
email = "desk@example.com"
push = ["ntfy://ntfy.sh/strykr-desk", "json://127.0.0.1:9/push"]
webhook = "https://hooks.example.com/strykr"
webhook_secret = "env:HOOK"
symbols = ["iwm", "SPX"]
kinds = ["break_below"]
""",
        env={"HOOK": "s3cret"},
    )
    assert config.email == EmailConfig(host="smtp.example.com", sender="alerts@example.com")
    assert config.mqtt_out == MqttOutConfig(host="127.0.0.1", port=1884)
    assert config.mqtt_out.topic("IWM") == "alerts/IWM"
    assert config.subscribers == (
        Subscriber(
            id="desk",
            email="desk@example.com",
            push=("ntfy://ntfy.sh/strykr-desk", "json://127.0.0.1:9/push"),
            webhook="https://hooks.example.com/strykr",
            webhook_secret="s3cret",
            symbols=("IWM", "SPX"),
            kinds=("break_below",),
            confirmed=True,
        ),
    )
    assert "s3cret" not in repr(config.subscribers)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('id = "a"\nemail = "a@example.com"', "subscribers[0].symbols: missing"),
        (
            'id = "a"\nsymbols = ["IWM"]',
            "subscribers[0].id: no channel: give email, push or webhook",
        ),
        (
            'id = "a"\nemail = "not-an-address"\nsymbols = ["*"]',
            'subscribers[0].email: "not-an-address" is not an email address',
        ),
        (
            'id = "a"\nwebhook = "https://h"\nsymbols = ["*"]',
            "subscribers[0].webhook_secret: missing",
        ),
        (
            'id = "a"\npush = ["nope://x"]\nsymbols = ["*"]',
            "subscribers[0].push[0]: not a push URL apprise understands",
        ),
        (
            'id = "a"\nwebhook = "ftp://h"\nwebhook_secret = "x"\nsymbols = ["*"]',
            "subscribers[0].webhook: expected an http",
        ),
        (
            'id = "a"\nemail = "a@example.com"\nsymbols = []',
            "subscribers[0].symbols: expected at least one symbol",
        ),
        (
            'id = "a"\nemail = "a@example.com"\nsymbols = ["*"]\nkinds = ["crash"]',
            "subscribers[0].kinds: expected kinds among",
        ),
        (
            'id = "a b"\nemail = "a@example.com"\nsymbols = ["*"]',
            "subscribers[0].id: expected letters",
        ),
        (
            'id = "a"\nemial = "a@example.com"\nsymbols = ["*"]',
            'subscribers[0].emial: unknown key; did you mean "email"?',
        ),
    ],
)
def test_bad_subscriber_is_named_by_its_path(body: str, expected: str) -> None:
    found = problems(EMAIL + "[[subscribers]]\n" + body)
    assert any(problem.startswith(expected) for problem in found), found


def test_email_subscriber_without_an_email_server_is_refused() -> None:
    found = problems('[[subscribers]]\nid = "a"\nemail = "a@example.com"\nsymbols = ["*"]')
    assert found == ["subscribers[0].email: no [email] server is configured to send it through"]


def test_duplicate_subscriber_ids_are_refused() -> None:
    sub = (
        '[[subscribers]]\nid = "a"\nwebhook = "https://h"\nwebhook_secret = "x"\nsymbols = ["*"]\n'
    )
    assert problems(sub + sub) == [
        'subscribers[1].id: duplicate subscriber "a" (also subscribers[0])'
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[websocket]\nport = 70000", "websocket.port: expected a port from 0 to 65535"),
        ("[websocket]\ntick_hz = 0", "websocket.tick_hz: expected a number > 0"),
        ("[websocket]\ntokens = [1]", "websocket.tokens: expected an array of non-empty strings"),
        ("[delivery]\nmax_attempts = 0", "delivery.max_attempts: expected an integer >= 1"),
        ('[email]\nhost = "h"\nfrom = "x"', 'email.from: "x" is not an email address'),
        ('[email]\nfrom = "a@example.com"', "email.host: missing"),
        ('[mqtt_out]\nurl = "http://h"', "mqtt_out.url: expected an mqtt://"),
        ('[push]\nvapid_subject = "ops"', "push.vapid_subject: expected a mailto: or https: URL"),
        ('[service]\npublic_url = "ftp://x"', "service.public_url: expected an http"),
    ],
)
def test_bad_delivery_setting_is_named_by_its_path(text: str, expected: str) -> None:
    found = problems(text)
    assert any(problem.startswith(expected) for problem in found), found


# The websocket protocol's one client message.


def test_subscribe_message_reads_symbols_ticks_and_since() -> None:
    assert parse_subscribe('{"op": "subscribe", "symbols": ["iwm", "SPX"]}') == (
        frozenset({"IWM", "SPX"}),
        False,
        None,
        None,
    )
    assert parse_subscribe(
        '{"op": "subscribe", "symbols": ["*"], "ticks": true, "since": "abc"}'
    ) == (None, True, "abc", None)
    assert parse_subscribe('{"op": "subscribe", "symbols": ["*"], "manage": "t.k"}').manage == "t.k"
    with pytest.raises(ClientMessageError, match="manage: expected the token"):
        parse_subscribe('{"op": "subscribe", "symbols": ["*"], "manage": 7}')


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(
    st.one_of(
        st.text(max_size=200),
        st.binary(max_size=50),
        json_values.map(lambda value: json.dumps(value)),
        st.fixed_dictionaries(
            {"op": st.just("subscribe")},
            optional={
                "symbols": json_values,
                "ticks": json_values,
                "since": json_values,
                "manage": json_values,
            },
        ).map(lambda value: json.dumps(value)),
    )
)
def test_any_client_message_is_read_or_refused_with_a_message_never_crashes(
    message: str | bytes,
) -> None:
    try:
        symbols, ticks, since, manage = parse_subscribe(message)
    except ClientMessageError as error:
        message_text = str(error)
        assert message_text
    else:
        assert symbols is None or (0 < len(symbols) <= 256)
        assert isinstance(ticks, bool)
        assert since is None or isinstance(since, str)
        assert manage is None or 0 < len(manage) <= 512
