"""deploy/: every file parses, and every command it runs is one the CLI accepts."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
import yaml

from service.__main__ import _parser
from service.config import parse_config
from service.metrics import MetricsState, ServiceMetrics

DEPLOY = Path(__file__).resolve().parent.parent.parent / "deploy"
REPO = DEPLOY.parent


def accepted_by_cli(argv: list[str]) -> None:
    """``argv`` starts with the strykr-alerts executable; the parser must take the rest."""
    assert Path(argv[0]).name == "strykr-alerts", argv
    args = _parser().parse_args(argv[1:])
    assert callable(args.handler)


def dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1])
        for line in lines
        if line and not line.startswith("#")
    ]


def test_dockerfile_is_multi_stage_runs_as_a_user_and_checks_healthz() -> None:
    instructions = dockerfile()
    stages = [args for name, args in instructions if name == "FROM"]
    assert len(stages) >= 2
    users = [args for name, args in instructions if name == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    (healthcheck,) = [args for name, args in instructions if name == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    (command,) = [json.loads(args) for name, args in instructions if name == "CMD"]
    accepted_by_cli(command)
    for name, args in instructions:
        if name == "COPY" and "--from" not in args:
            for source in args.split()[:-1]:
                assert (REPO / source).exists(), f"COPY {source}: no such file in the repository"


def test_compose_file_runs_mosquitto_the_service_and_a_mail_catcher() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"mosquitto", "strykr-alerts", "mailcatcher"} <= set(services)
    accepted_by_cli(services["strykr-alerts"]["command"])
    assert (REPO / services["strykr-alerts"]["build"]["dockerfile"]).exists()
    conf = services["mosquitto"]["volumes"][0].split(":")[0]
    assert (DEPLOY / conf).exists()
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{port}: publish on the host's loopback only"


def test_the_containers_config_is_valid_and_reaches_the_compose_hosts() -> None:
    text = (DEPLOY / "alerts.docker.toml").read_text()
    config = parse_config(text, base_dir=REPO, env={"STRYKR_ADMIN_TOKEN": "x" * 24})
    assert config.sources[0].url == "mqtt://mosquitto:1883"  # type: ignore[union-attr]
    assert config.email is not None
    assert config.email.host == "mailcatcher"
    assert config.http is not None
    assert config.http.port == 8080


def test_mosquitto_conf_has_one_listener_and_persistence() -> None:
    options = [
        line.split(None, 1)
        for line in (DEPLOY / "mosquitto.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ["listener", "1883"] in options
    assert ["persistence", "true"] in options


def test_systemd_unit_runs_commands_the_cli_accepts() -> None:
    unit = (DEPLOY / "strykr-alerts.service").read_text()
    commands = re.findall(r"^Exec\w*=(.+)$", unit, flags=re.MULTILINE)
    assert len(commands) == 2
    for command in commands:
        accepted_by_cli(shlex.split(command))
    assert re.search(r"^User=(?!root)\w+", unit, flags=re.MULTILINE)


@pytest.fixture
def exported_metrics() -> set[str]:
    state = MetricsState(
        ticks_by_source={"s": 1},
        source_up={"s": True},
        rejected_by_reason={"r": 1},
        alerts_by={("IWM", "break_below"): 1},
        deliveries_by={("email", "sent"): 1},
        delivery_pending=0,
        last_tick_age_s={"IWM": 1.0},
        ws_clients=0,
        queue_depth=0,
        articles=0,
    )
    metrics = ServiceMetrics()
    metrics.watch(lambda: state)
    text = metrics.render().decode()
    return {line.split("{")[0].split()[0] for line in text.splitlines() if line[:1] != "#"}


def test_prometheus_rules_only_use_metrics_the_service_exports(
    exported_metrics: set[str],
) -> None:
    scrape = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["metrics_path"] == "/metrics"
    (rule_file,) = scrape["rule_files"]
    rules = yaml.safe_load((DEPLOY / rule_file).read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    used = {name for expr in expressions for name in re.findall(r"\bstrykr_\w+", expr)}
    assert used
    assert used <= exported_metrics
