"""The OpenAPI document matches the endpoints: schemathesis against the running service."""

from __future__ import annotations

from pathlib import Path

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.conftest import StartService
from tests.integration.http_service import ADMIN_TOKEN, http_config

EXAMPLES_PER_OPERATION = 30


def test_every_operation_answers_as_the_openapi_document_says(
    tmp_path: Path, start_service: StartService
) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text(
        '[service]\nlog_format = "json"\n' + http_config(tmp_path).split("[service]")[1]
    )
    service = start_service("run", "--config", str(config))
    url = str(service.wait_for("http_listening")[0]["url"])
    service.wait_for("replay_finished")
    schema = schemathesis.openapi.from_url(url + "api/v1/openapi.json")
    session = requests.Session()
    checked: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        checked.append(f"{operation.method.upper()} {operation.path}")

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def conforms(case: schemathesis.Case) -> None:
            # Every documented status, content type and body schema; never a 5xx; data the
            # schema forbids is refused. (Data the schema allows may still be refused: a
            # symbol nobody watches, an address that is not one.)
            case.call_and_validate(
                base_url=url.rstrip("/"),
                session=session,
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                excluded_checks=[positive_data_acceptance],
            )

        conforms()
    assert "POST /api/v1/subscribers" in checked
    assert "GET /api/v1/alerts" in checked
    assert len(checked) == 21
    assert "POST /api/v1/rules/{rule}/pause" in checked
