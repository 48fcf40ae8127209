"""alerts.toml: every value checked, every problem named by its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.app import build
from service.config import load_config, parse_config
from service.errors import ConfigError
from service.models import ConditionRule, LevelRule, RangeRule
from service.rules.settings import unused_settings
from service.timestamps import parse_timestamp

REPO = Path(__file__).resolve().parents[2]

RULE = """
[[rules]]
id = "iwm-below-255"
symbol = "IWM"
level = 255
direction = "below"
"""


def problems(text: str, **kwargs: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, **kwargs)  # type: ignore[arg-type]
    return list(caught.value.problems)


def test_shipped_alerts_toml_watches_the_seed_levels() -> None:
    config = load_config(REPO / "alerts.toml")
    levels = {
        (rule.symbol, rule.level, rule.direction)
        for rule in config.rules
        if isinstance(rule, LevelRule)
    }
    assert {("IWM", 255.0, "below"), ("IWM", 250.0, "below"), ("IWM", 265.0, "above")} <= levels
    assert config.sources == ()  # `make run` replays the bundled sample day


def test_minimal_rule_gets_the_documented_defaults() -> None:
    (rule,) = parse_config(RULE).rules
    assert rule == LevelRule(
        id="iwm-below-255",
        symbol="IWM",
        level=255.0,
        direction="below",
        confirm_ticks=1,
        confirm_seconds=0.0,
        hysteresis=0.0,
        cooldown_seconds=0.0,
        trigger="tick",
        bar=None,
    )


def test_full_config_is_read_into_typed_values(tmp_path: Path) -> None:
    (tmp_path / "day.csv").write_text("ts,symbol,price\n")
    text = """
[service]
log_level = "debug"
log_format = "json"
[engine]
windows = ["1m", "5m"]
bars = ["1m"]
queue_size = 500
[[sources]]
kind = "replay"
name = "day"
path = "day.csv"
speed = 0
[[rules]]
id = "spx-range"
type = "range"
symbol = "spx"
low = 4800
high = 4900.5
confirm_ticks = 2
confirm_seconds = 1.5
hysteresis = 2
cooldown_seconds = 60
[[rules]]
id = "rut-1900"
symbol = "RUT"
level = 1900
direction = "below"
trigger = "bar_close"
"""
    config = parse_config(text, base_dir=tmp_path)
    assert (config.service.log_level, config.service.log_format) == ("debug", "json")
    assert (config.engine.windows, config.engine.bars, config.engine.queue_size) == (
        ("1m", "5m"),
        ("1m",),
        500,
    )
    (source,) = config.sources
    assert (source.name, source.path, source.speed) == ("day", tmp_path / "day.csv", 0.0)
    spx, rut = config.rules
    assert spx == RangeRule(
        id="spx-range",
        symbol="SPX",
        low=4800.0,
        high=4900.5,
        confirm_ticks=2,
        confirm_seconds=1.5,
        hysteresis=2.0,
        cooldown_seconds=60.0,
    )
    assert isinstance(rut, LevelRule)
    assert (rut.trigger, rut.bar) == ("bar_close", "1m")  # bar defaults to one minute


def test_env_value_reads_the_environment_variable(tmp_path: Path) -> None:
    (tmp_path / "ticks.csv").write_text("ts,symbol,price\n")
    text = '[[sources]]\nkind = "replay"\npath = "env:TICKS"\n'
    config = parse_config(text, env={"TICKS": str(tmp_path / "ticks.csv")})
    assert config.sources[0].path == tmp_path / "ticks.csv"


def test_env_value_when_variable_unset_names_it() -> None:
    text = '[[sources]]\nkind = "replay"\npath = "env:STRYKR_TEST_UNSET"\n'
    assert problems(text, env={}) == [
        "sources[0].path: environment variable STRYKR_TEST_UNSET is not set"
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ('direction = "down"', 'rules[0].direction: expected "below" or "above", got "down"'),
        ("direction = 1", 'rules[0].direction: expected "below" or "above", got 1'),
        ("level = -1", "rules[0].level: expected a number > 0, got -1"),
        ("level = 0", "rules[0].level: expected a number > 0, got 0"),
        (
            'level = "255"',
            'rules[0].level: expected a number or an indicator such as sma(20, "5m")',
        ),
        ("level = nan", "rules[0].level: expected a finite number, got nan"),
        ("level = inf", "rules[0].level: expected a finite number, got inf"),
        ("level = true", "rules[0].level: expected a number or an indicator, got true"),
        ("confirm_ticks = 0", "rules[0].confirm_ticks: expected an integer >= 1, got 0"),
        ("confirm_ticks = 1.5", "rules[0].confirm_ticks: expected an integer, got 1.5"),
        ("confirm_seconds = -1", "rules[0].confirm_seconds: expected a number >= 0, got -1"),
        ("hysteresis = -0.5", "rules[0].hysteresis: expected a number >= 0, got -0.5"),
        ("cooldown_seconds = -5", "rules[0].cooldown_seconds: expected a number >= 0, got -5"),
        ('trigger = "close"', 'rules[0].trigger: expected "tick" or "bar_close", got "close"'),
        ('type = "band"', 'rules[0].type: expected "level" or "range", got "band"'),
        ('symbol = "IW M"', "rules[0].symbol: expected a symbol of up to 32 letters"),
        ('symbol = ""', "rules[0].symbol: expected a symbol, got an empty string"),
        ('id = "has space"', 'rules[0].id: expected letters, digits and . _ : -, got "has space"'),
        ('directon = "below"', 'rules[0].directon: unknown key; did you mean "direction"?'),
        ('bar = "1m"', 'rules[0].bar: is only used with frequency = "once_per_bar" or "once_per'),
        ("cooldown = 5", 'rules[0].cooldown: unknown key; did you mean "cooldown_seconds"?'),
    ],
)
def test_rule_value_when_bad_names_table_key_and_expectation(change: str, expected: str) -> None:
    key = change.split(" = ")[0]
    lines = [line for line in RULE.strip().splitlines() if not line.startswith(f"{key} =")]
    (problem,) = problems("\n".join([*lines, change]))
    assert problem.startswith(expected), problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[rules]]\nid = "r"\nsymbol = "IWM"\ndirection = "below"',
            ["rules[0].level: missing; this key is required"],
        ),
        (
            '[[rules]]\nsymbol = "IWM"\nlevel = 1\ndirection = "below"',
            ["rules[0].id: missing; this key is required"],
        ),
        (
            RULE + RULE,
            ['rules[1].id: duplicate rule id "iwm-below-255" (also rules[0])'],
        ),
        (
            '[[rules]]\nid = "r"\ntype = "range"\nsymbol = "IWM"\nlow = 265\nhigh = 255',
            ["rules[0].high: expected a price above low (265), got 255"],
        ),
        (
            '[[rules]]\nid = "r"\ntype = "range"\nsymbol = "IWM"\nlow = 255\nhigh = 265\n'
            "hysteresis = 300",
            ["rules[0].hysteresis: expected less than high (265), got 300"],
        ),
        (
            '[[rules]]\nid = "r"\nsymbol = "IWM"\nlevel = 10\ndirection = "above"\nhysteresis = 10',
            ["rules[0].hysteresis: expected less than the level (10) for an above rule, got 10"],
        ),
        (
            '[[rules]]\nid = "r"\ntype = "range"\nsymbol = "IWM"\nlow = 1\nhigh = 2\n'
            'direction = "below"',
            [
                "rules[0].direction: unknown key (known keys: confirm_seconds, confirm_ticks, "
                "cooldown_seconds, frequency, high, hysteresis, id, low, paused, session, "
                "symbol, trigger, type)"
            ],
        ),
        (
            '[[rules]]\nid = "r"\nsymbol = "IWM"\nlevel = 1\ndirection = "below"\n'
            'trigger = "bar_close"\nbar = "1 minute"',
            ['rules[0].bar: expected a duration such as "30s", "1m" or "1h", got "1 minute"'],
        ),
        (
            '[[rules]]\nid = 5\nsymbol = "IWM"\nlevel = 1\ndirection = "below"',
            ["rules[0].id: expected a string, got 5"],
        ),
        (
            '[[rules]]\nid = "r"\nsymbol = 5\nlevel = 1\ndirection = "below"',
            ["rules[0].symbol: expected a symbol string, got int"],
        ),
        (
            '[[rules]]\nid = "r"\nsymbol = "IWM"\nlevel = 1\ndirection = "below"\n'
            'trigger = "bar_close"\nbar = "0s"',
            ['rules[0].bar: expected a duration longer than zero, got "0s"'],
        ),
        ("rules = 5", ["rules: expected an array of tables ([[rules]]), got 5"]),
        ('rules = ["a"]', ["rules: expected an array of tables ([[rules]]), got an array"]),
        ("[engine]\nqueue_size = 0", ["engine.queue_size: expected an integer >= 1, got 0"]),
        (
            '[engine]\nwindows = ["1m", "soon", "1m"]',
            [
                'engine.windows[1]: expected a duration such as "30s", "1m" or "1h", got "soon"',
                'engine.windows[2]: duplicate "1m"',
            ],
        ),
        ('[engine]\nbars = "1m"', ['engine.bars: expected an array of durations, got "1m"']),
        (
            '[engine]\nsame_time = "last"',
            ['engine.same_time: expected "reject" or "accept", got "last"'],
        ),
        (
            "[engine]\nprice_band_percent = 100",
            [
                "engine.price_band_percent: expected a percentage below 100 "
                "(0 turns the band off), got 100"
            ],
        ),
        (
            "[engine]\nprice_band_rebase_ticks = 1",
            ["engine.price_band_rebase_ticks: expected an integer >= 2, got 1"],
        ),
        (
            "[engine]\ncommit_every_ticks = 0",
            ["engine.commit_every_ticks: expected an integer >= 1, got 0"],
        ),
        (
            '[engine]\ncommit_within_ms = "soon"',
            ['engine.commit_within_ms: expected a number, got "soon"'],
        ),
        (
            "[engine]\nwindows = [60]",
            ['engine.windows[0]: expected a duration such as "1m", got 60'],
        ),
        (
            '[engine]\nbars = ["0s"]',
            ['engine.bars[0]: expected a duration longer than zero, got "0s"'],
        ),
        (
            '[service]\nlog_level = "loud"',
            ['service.log_level: expected "debug", "info", "warning" or "error", got "loud"'],
        ),
        (
            '[service]\nlog_format = "xml"',
            ['service.log_format: expected "auto", "console" or "json", got "xml"'],
        ),
        ("service = 1", ["service: expected a table, got 1"]),
        ("[servce]", ['servce: unknown key; did you mean "service"?']),
        (
            '[[sources]]\nkind = "kafka"',
            ['sources[0].kind: expected "replay", "mqtt", "websocket" or "simulator", got "kafka"'],
        ),
        ("[[sources]]\npath = 'x.csv'", ["sources[0].kind: missing; this key is required"]),
        ('[[sources]]\nkind = "replay"', ["sources[0].path: missing; this key is required"]),
        (
            '[[sources]]\nkind = "replay"\npath = "nowhere.csv"',
            ["sources[0].path: no such file: /cfg/nowhere.csv"],
        ),
    ],
)
def test_config_when_bad_lists_every_problem_by_path(text: str, expected: list[str]) -> None:
    assert problems(text, base_dir=Path("/cfg")) == expected


def test_source_with_bad_speed_and_duplicate_name(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("ts,symbol,price\n")
    text = (
        '[[sources]]\nkind = "replay"\nname = "a"\npath = "a.csv"\nspeed = -1\n'
        '[[sources]]\nkind = "replay"\nname = "a"\npath = "a.csv"\n'
    )
    assert problems(text, base_dir=tmp_path) == [
        "sources[0].speed: expected a number >= 0, got -1",
        'sources[1].name: duplicate source name "a" (also sources[0])',
    ]


def test_config_with_several_bad_rules_reports_all_of_them() -> None:
    text = RULE.replace('"below"', '"down"') + RULE.replace("iwm-below-255", "two").replace(
        "255", "-2"
    )
    assert problems(text) == [
        'rules[0].direction: expected "below" or "above", got "down"',
        "rules[1].level: expected a number > 0, got -2",
    ]


def test_invalid_toml_says_where() -> None:
    (problem,) = problems("[[rules]]\nid = \n")
    assert problem.startswith("invalid TOML:")
    assert "line 2" in problem


def test_load_config_when_file_missing_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert caught.value.problems == ("file not found; pass --config PATH",)


def test_load_config_when_file_is_not_utf8_says_so(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(b"# caf\xe9\n")
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(path)


def test_load_config_when_path_is_a_directory_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)


def test_load_config_resolves_paths_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "t.csv").write_text("ts,symbol,price\n")
    (tmp_path / "conf" / "a.toml").write_text('[[sources]]\nkind = "replay"\npath = "t.csv"\n')
    config = load_config(tmp_path / "conf" / "a.toml")
    assert config.sources[0].path == tmp_path / "conf" / "t.csv"


def test_config_error_message_counts_and_lists_problems() -> None:
    error = ConfigError("alerts.toml", ["a: x", "b: y"])
    assert str(error) == "alerts.toml: 2 problems:\n  a: x\n  b: y"


def test_shipped_alerts_toml_reads_the_seed_articles_with_auto_levels() -> None:
    config = load_config(REPO / "alerts.toml")
    assert config.articles.dir == REPO / "articles"
    assert config.articles.auto_levels
    assert config.articles.rule_defaults.confirm_ticks == 3


def test_articles_defaults_when_the_table_is_absent() -> None:
    config = parse_config("")
    assert config.articles.dir is None
    assert config.articles.feed_url is None
    assert not config.articles.auto_levels
    assert config.aliases["S&P 500"] == "SPX"


def test_articles_and_aliases_are_read_into_typed_values(tmp_path: Path) -> None:
    (tmp_path / "news").mkdir()
    config = parse_config(
        """
        [articles]
        dir = "news"
        dir_poll_seconds = 0.5
        feed_url = "https://strykr.example/feed.json"
        feed_poll_seconds = 30
        max_bytes = 2000
        auto_levels = true
        [articles.rule_defaults]
        confirm_ticks = 2
        confirm_seconds = 1.5
        hysteresis = 0.25
        cooldown_seconds = 600
        [aliases]
        "Gold" = "xau"
        "S&P 500" = "SPY"
        """,
        base_dir=tmp_path,
    )
    articles = config.articles
    assert articles.dir == tmp_path / "news"
    assert (articles.dir_poll_seconds, articles.feed_poll_seconds) == (0.5, 30.0)
    assert articles.feed_url == "https://strykr.example/feed.json"
    assert (articles.max_bytes, articles.auto_levels) == (2000, True)
    defaults = articles.rule_defaults
    assert (defaults.confirm_ticks, defaults.confirm_seconds) == (2, 1.5)
    assert (defaults.hysteresis, defaults.cooldown_seconds) == (0.25, 600.0)
    assert config.aliases["Gold"] == "XAU"
    assert config.aliases["S&P 500"] == "SPY"  # a default pointed elsewhere
    assert config.aliases["Bitcoin"] == "BTC"  # the other defaults stay


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[articles]\ndir = "no/such/dir"', "articles.dir: no such directory:"),
        ('[articles]\nfeed_url = "ftp://x.example/feed"', "articles.feed_url: expected an http"),
        ('[articles]\nfeed_url = "https://"', "articles.feed_url: expected an http"),
        ("[articles]\nauto_levels = 1", "articles.auto_levels: expected true or false, got 1"),
        ("[articles]\ndir_poll_seconds = 0", "articles.dir_poll_seconds: expected a number > 0"),
        ("[articles]\nmax_bytes = 0", "articles.max_bytes: expected an integer >= 1, got 0"),
        ("[articles]\nauto_level = true", 'articles.auto_level: unknown key; did you mean "auto_'),
        (
            "[articles.rule_defaults]\nconfirm_ticks = 0",
            "articles.rule_defaults.confirm_ticks: expected an integer >= 1, got 0",
        ),
        ("[articles.rule_defaults]\nlevel = 3", "articles.rule_defaults.level: unknown key"),
        ('[aliases]\nGold = "x y"', "aliases.Gold: expected a symbol"),
        ("[aliases]\nGold = 3", "aliases.Gold: expected a symbol string, got int"),
    ],
)
def test_articles_and_aliases_when_bad_name_the_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    (found,) = problems(text, base_dir=tmp_path)
    assert found.startswith(expected), found


def test_engine_tick_policy_defaults_and_settings() -> None:
    default = parse_config("").engine
    assert (default.same_time, default.price_band_percent, default.price_band_rebase_ticks) == (
        "reject",
        20.0,
        3,
    )
    engine = parse_config(
        '[engine]\nsame_time = "accept"\nprice_band_percent = 0\nprice_band_rebase_ticks = 5'
    ).engine
    assert (engine.same_time, engine.price_band_percent, engine.price_band_rebase_ticks) == (
        "accept",
        0.0,
        5,
    )


def test_engine_commit_settings_defaults_and_the_service_commits_by_them() -> None:
    default = parse_config("").engine
    assert (default.commit_every_ticks, default.commit_within_ms) == (1_000, 20.0)
    config = parse_config("[engine]\ncommit_every_ticks = 50\ncommit_within_ms = 5")
    assert (config.engine.commit_every_ticks, config.engine.commit_within_ms) == (50, 5.0)
    policy = build(config).recorder.policy
    assert (policy.every_ticks, policy.within_s) == (50, 0.005)


def test_engine_windows_and_bars_are_read_but_named_as_unused() -> None:
    config = parse_config('[engine]\nwindows = ["5m"]\nbars = ["1m"]\n')
    warnings = unused_settings(config.engine)
    assert [w.split(":")[0] for w in warnings] == ["[engine] windows", "[engine] bars"]
    assert unused_settings(parse_config("").engine) == []


CONDITION_RULE = '[[rules]]\nid = "r"\nsymbol = "IWM"\n'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('condition = "above"\nlevel = 1', 'rules[0].condition: expected "cross_below", '),
        (
            'condition = "cross_below"\ntype = "level"\nlevel = 1',
            "rules[0].type: is not used with condition; remove it",
        ),
        (
            'condition = "cross_below"\ndirection = "below"\nlevel = 1',
            "rules[0].direction: is not used with condition; remove it",
        ),
        ('condition = "moving_up"\nwindow = "15m"', "rules[0].percent: moving_up needs one of"),
        (
            'condition = "moving_down"\nwindow = "15m"\npercent = 1\namount = 2',
            "rules[0].percent: moving_down needs one of",
        ),
        ('condition = "moving_up"\npercent = 2', "rules[0].window: missing; this key is required"),
        (
            'condition = "moving_up"\nwindow = "15m"\npercent = 2\nlevel = 3',
            'rules[0].level: is not used by condition "moving_up"; remove it',
        ),
        (
            'condition = "cross_above"\nlevel = 3\nwindow = "1m"',
            'rules[0].window: is not used by condition "cross_above"; remove it',
        ),
        (
            'condition = "cross_above"\nlevel = \'sma(0, "5m")\'',
            'rules[0].level: sma: expected a number of bars from 1 to 1000, got "0"',
        ),
        (
            'condition = "cross_above"\nlevel = \'macd(3, "5m")\'',
            'rules[0].level: unknown indicator "macd": expected one of ema, rsi, sma, vwap',
        ),
        (
            'condition = "cross_above"\nlevel = \'vwap("5x")\'',
            'rules[0].level: expected a duration such as "30s"',
        ),
        (
            'condition = "inside_channel"\nlow = 260\nhigh = 250',
            "rules[0].high: expected a price above low (260), got 250",
        ),
        ('condition = "enter_channel"\nlow = 250', "rules[0].high: missing; this key is required"),
        (
            'condition = "cross_below"\nlevel = 1\nexpires = "next friday"',
            'rules[0].expires: expected a time such as "2026-03-01T21:00:00Z"',
        ),
        (
            'condition = "cross_below"\nlevel = 1\nsession = "overnight"',
            'rules[0].session: expected "any", "regular" or "extended", got "overnight"',
        ),
        (
            'condition = "cross_below"\nlevel = 1\nfrequency = "twice"',
            'rules[0].frequency: expected "every_time", "once", "once_per_bar" or',
        ),
        (
            'condition = "cross_below"\nlevel = 1\nfrequency = "once"\ntrigger = "bar_close"',
            'rules[0].trigger: is frequency = "once_per_bar_close" now; keep one of the two',
        ),
        (
            "condition = \"cross_below\"\nlevel = 1\nconfirm_volume = 'volume > 2'",
            'rules[0].confirm_volume: expected volume("1m") > 2 * sma_volume(20, "1m")',
        ),
        (
            'condition = "cross_below"\nlevel = 1\n'
            'confirm_volume = \'volume("1m") > 2 * sma_volume(20, "5m")\'',
            "rules[0].confirm_volume: the volume and its average must be of the same bar",
        ),
        (
            'condition = "moving_up"\nwindow = "1m"\npercent = 1\nsource = \'rsi(14, "1m")\'',
            "rules[0].source: moving_up measures the price's move; remove source",
        ),
        ('condition = "cross_below"\nlevel = 1\npaused = "yes"', "rules[0].paused: expected true"),
    ],
)
def test_condition_rule_when_bad_names_key_and_expectation(body: str, expected: str) -> None:
    (problem,) = problems(CONDITION_RULE + body)
    assert problem.startswith(expected), problem


def test_condition_rules_read_into_the_simplest_rule_that_says_it() -> None:
    rules = parse_config(
        CONDITION_RULE.replace('"r"', '"a"')
        + 'condition = "cross_above"\nlevel = 260\n'
        + CONDITION_RULE.replace('"r"', '"b"')
        + 'condition = "exit_channel"\nlow = 1\nhigh = 2\n'
        + CONDITION_RULE.replace('"r"', '"c"')
        + 'condition = "cross_above"\nlevel = \'ema(9, "5m")\'\n'
        + CONDITION_RULE.replace('"r"', '"d"')
        + 'condition = "greater_than"\nlevel = 70\nsource = \'rsi(14, "5m")\'\n'
        + 'expires = 2026-03-01T21:00:00Z\nsession = "regular"\npaused = true\n'
    ).rules
    assert [type(rule).__name__ for rule in rules] == [
        "LevelRule",
        "RangeRule",
        "ConditionRule",
        "ConditionRule",
    ]
    last = rules[-1]
    assert isinstance(last, ConditionRule)
    assert (str(last.source), last.level, last.frequency, last.session, last.paused) == (
        'rsi(14, "5m")',
        70.0,
        "once",
        "regular",
        True,
    )
    assert last.expires_ns == parse_timestamp("2026-03-01T21:00:00Z")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[markets]\ncalendar = "NOPE"', 'markets.calendar: unknown exchange calendar "NOPE"'),
        (
            '[markets]\n[[markets.groups]]\ncalendar = "24/7"\nsymbols = ["BTC-USD"]\n'
            '[[markets.groups]]\ncalendar = "XNYS"\nsymbols = ["btc-usd"]',
            'markets.groups[1].symbols[0]: "BTC-USD" is already in a group (24/7)',
        ),
        ('[markets]\nstale_session = "night"', 'markets.stale_session: expected "regular"'),
    ],
)
def test_markets_when_bad_names_key_and_expectation(body: str, expected: str) -> None:
    (problem,) = problems(body)
    assert problem.startswith(expected), problem


def test_markets_give_each_symbol_its_calendar() -> None:
    markets = parse_config(
        '[markets]\ncalendar = "XNYS"\n[[markets.groups]]\ncalendar = "24/7"\nsymbols = ["BTC-USD"]'
    ).markets
    assert (markets.calendar_of("IWM"), markets.calendar_of("BTC-USD")) == ("XNYS", "24/7")
    assert parse_config("").markets.calendar_of("IWM") == "24/7"
