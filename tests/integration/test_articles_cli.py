"""Articles end to end: the `article` command, `replay --articles`, and a running service."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import DATA, REPO, StartService, run_cli

SEEDS = REPO / "articles"


def test_article_command_prints_one_json_object_per_article() -> None:
    result = run_cli("article", str(SEEDS / "000_99540e02251797ad.txt"), str(DATA / "articles"))
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [Path(str(item["source"])).name for item in printed] == [
        "000_99540e02251797ad.txt",
        "btc_plain.txt",
        "eth_page.txt",
        "ndx_page.txt",
        "nvda_plain.txt",
    ]
    seed = printed[0]
    assert (seed["published"], seed["pulse"], seed["threat_level"], seed["bias"]) == (
        "2026-02-02T03:45:00Z",
        40,
        3,
        "bearish",
    )
    assert seed["levels"] == [
        {"symbol": "IWM", "price": 255.0, "side": "support"},
        {"symbol": "IWM", "price": 265.0, "side": "resistance"},
        {"symbol": "IWM", "price": 250.0, "side": "support"},
    ]


def test_article_command_reports_bad_files_and_goes_on(tmp_path: Path) -> None:
    (tmp_path / "empty.txt").write_bytes(b"")
    (tmp_path / "binary.txt").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "huge.txt").write_bytes(b"IWM support at $255.\n" * 500_000)  # 10.5 MB
    (tmp_path / "no_watch.txt").write_text("Strykr Pulse 50/100. Quiet.")
    result = run_cli("article", str(tmp_path), str(tmp_path / "missing.txt"))
    assert result.returncode == 1
    (printed,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert printed["levels"] == []
    errors = result.stderr
    assert "empty.txt: is empty" in errors
    assert "binary.txt: is binary data, not text" in errors
    assert "huge.txt: is 10,500,000 bytes; articles are limited to 1,000,000" in errors
    assert 'no_watch.txt: warning: no "Strykr Watch" section' in errors
    assert "missing.txt: cannot be read" in errors
    assert "Traceback" not in errors


def test_article_command_uses_the_aliases_of_the_config(tmp_path: Path) -> None:
    (tmp_path / "alerts.toml").write_text('[aliases]\n"Gold" = "XAU"\n')
    (tmp_path / "gold.txt").write_text("Strykr Watch\nGold has support at $2,000.\n")
    result = run_cli("article", "gold.txt", cwd=tmp_path)
    assert json.loads(result.stdout)["levels"] == [
        {"symbol": "XAU", "price": 2000.0, "side": "support"}
    ]


def tick_file(path: Path, rows: list[tuple[str, float]]) -> Path:
    lines = ["ts,symbol,price"] + [f"{ts},IWM,{price}" for ts, price in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_replay_attaches_the_article_published_before_each_alert(tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    (articles / "seed.txt").write_bytes((SEEDS / "000_99540e02251797ad.txt").read_bytes())
    (tmp_path / "alerts.toml").write_text(
        '[[rules]]\nid = "iwm-below-255"\nsymbol = "IWM"\nlevel = 255\ndirection = "below"\n'
    )
    # The seed was published at 03:45: the first break comes before it, the second after.
    ticks = tick_file(
        tmp_path / "ticks.csv",
        [
            ("2026-02-02T03:00:00Z", 256.0),
            ("2026-02-02T03:01:00Z", 254.0),
            ("2026-02-02T04:00:00Z", 256.0),
            ("2026-02-02T04:01:00Z", 254.5),
        ],
    )
    result = run_cli("replay", "--ticks", str(ticks), "--articles", str(articles), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    before, after = [json.loads(line) for line in result.stdout.splitlines()]
    assert before["article"] is None
    assert after["article"]["published"] == "2026-02-02T03:45:00Z"
    assert after["article"]["pulse"] == 40
    assert after["article"]["take"].startswith("Small caps aren’t just underperforming.")
    assert [level["price"] for level in after["article"]["levels"]] == [255.0, 265.0, 250.0]


def test_running_service_reads_an_article_dropped_into_its_directory(
    start_service: StartService, tmp_path: Path
) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    # IWM swings across 255 every half second for four minutes, in real time.
    rows = [
        (
            f"2026-02-02T14:{30 + index // 120:02d}:{(index % 120) / 2:06.3f}Z",
            256.0 - 2 * (index % 2),
        )
        for index in range(480)
    ]
    tick_file(tmp_path / "ticks.csv", rows)
    (tmp_path / "alerts.toml").write_text(
        """
[service]
log_format = "json"
[websocket]
port = 0
[[sources]]
kind = "replay"
path = "ticks.csv"
speed = 1
[[rules]]
id = "iwm-below-255"
symbol = "IWM"
level = 255
direction = "below"
[articles]
dir = "articles"
dir_poll_seconds = 0.2
auto_levels = true
"""
    )
    service = start_service("run", "--config", "alerts.toml", cwd=tmp_path)
    (first,) = service.wait_for("alert_fired")
    assert first["article"] is None

    (articles / "iwm.txt").write_text(
        "IWM on the edge | Strykr\nStrykr Analysis\nBearishStrykr Pulse 30/100. Weak. "
        "Threat Level 4/5.\nStrykr Watch\nIWM support at $255; below that, $254.50 is the "
        "last floor.\nStrykr Take\nStay defensive.\ndatePublished: 2026-02-02 12:00 UTC\n"
    )
    (loaded,) = service.wait_for("article_loaded", timeout=10)
    assert loaded["levels"] == ["IWM 255.00 support", "IWM 254.50 support"]
    (changed,) = service.wait_for("rules_changed")
    assert changed["added"] == ["article:IWM:below:254.5"]  # 255 is hand-written already
    seen = len(service.wait_for("alert_fired"))
    alerts = service.wait_for("alert_fired", count=seen + 2, timeout=10)
    for alert in alerts[seen:]:
        assert alert["article"] == "IWM on the edge"
    assert {"iwm-below-255", "article:IWM:below:254.5"} <= {str(a["rule"]) for a in alerts[seen:]}
    assert service.stop() == 0
