"""deploy/: every file parses, and every command it runs is one the CLI accepts."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import sys
from pathlib import Path
from typing import Any

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


def cluster_compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.cluster.yml").read_text())
    return compose


def test_cluster_compose_runs_every_role_with_standbys_on_postgresql_and_mosquitto() -> None:
    services = cluster_compose()["services"]
    assert {"postgres", "mosquitto", "mailcatcher"} <= set(services)
    roles: list[tuple[str, str | None]] = []
    for name, service in services.items():
        command = service.get("command")
        if command is None or command[0] != "strykr-alerts":
            continue
        accepted_by_cli(command)
        args = _parser().parse_args(command[1:])
        if args.command == "feed":
            assert args.to == "mqtt://mosquitto:1883"
            continue
        roles.append((args.role, None if args.shard is None else args.shard.label))
        # Every process reads the cluster's config, and finds the servers it names.
        assert "./alerts.cluster.toml:/app/alerts.toml:ro" in service["volumes"], name
        assert {"postgres", "mosquitto"} <= set(service["depends_on"]), name
    assert sorted(roles, key=str) == sorted(
        [("engine", "0/2")] * 2
        + [("engine", "1/2")] * 2
        + [("delivery", None)] * 2
        + [("gateway", None)] * 2
        + [("api", None)],
        key=str,
    )
    for service in services.values():
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{port}: publish on the host's loopback only"


def test_the_clusters_config_is_valid_and_names_the_compose_servers() -> None:
    text = (DEPLOY / "alerts.cluster.toml").read_text()
    config = parse_config(text, base_dir=REPO, env={"STRYKR_ADMIN_TOKEN": "x" * 24})
    assert config.service.journal == "postgresql://strykr@postgres:5432/strykr"
    assert config.sources[0].url == "mqtt://mosquitto:1883"  # type: ignore[union-attr]
    assert config.email is not None
    assert config.email.host == "mailcatcher"
    # No password in the file: PGPASSWORD, from the compose file's environment.
    env = cluster_compose()["x-strykr"]["environment"]
    assert "PGPASSWORD" in env


def test_the_local_cluster_makes_every_compose_host_this_machines() -> None:
    spec = importlib.util.spec_from_file_location(
        "local_cluster", REPO / "scripts/local_cluster.py"
    )
    assert spec is not None
    assert spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script  # its dataclass looks itself up there
    spec.loader.exec_module(script)
    text = script.local_config(
        (DEPLOY / "alerts.cluster.toml").read_text(),
        journal="postgresql://postgres@127.0.0.1:5999/journal_1",
        broker="mqtt://127.0.0.1:1999",
        smtp_port=2525,
    )
    config = parse_config(text, env={"STRYKR_ADMIN_TOKEN": "x" * 24})
    assert config.service.journal == "postgresql://postgres@127.0.0.1:5999/journal_1"
    assert config.sources[0].url == "mqtt://127.0.0.1:1999"  # type: ignore[union-attr]
    assert config.email is not None
    assert (config.email.host, config.email.port) == ("127.0.0.1", 2525)
    assert config.http is not None
    assert config.websocket is not None
    assert config.http.host == config.websocket.host == "127.0.0.1"
    assert config.articles.dir == REPO / "articles"
