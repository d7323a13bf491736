"""A schema-driven fuzz of the running gateway: no generated request gets a 5xx.

Every operation in /openapi.json is called with examples that fit the schema
and examples that do not (bounded in number, no deadline), against the real
process with real models, Kafka and PostgreSQL behind it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings

from tests.gateway.server import RunningGateway, gateway_process, register_energy_models, sync_database

EXAMPLES_PER_MODE = 12


def api_operations() -> set[tuple[str, str]]:
    """The operations the app declares, built in-process (no server)."""
    app = create_app(GatewaySettings(kafka_bootstrap_servers="127.0.0.1:1", database_url="postgresql://x@127.0.0.1/x"))
    return {(method, path) for path, item in app.openapi()["paths"].items() for method in item}


@pytest.fixture(scope="module")
def running_gateway(
    kafka_bootstrap: str, postgres_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningGateway]:
    workdir = tmp_path_factory.mktemp("fuzz")
    with sync_database(postgres_dsn, "fuzz") as dsn:
        register_energy_models(dsn, workdir / "artifacts")
        with gateway_process(kafka_bootstrap, dsn, workdir, MAX_UPLOAD_BYTES="200000") as gateway:
            yield gateway


def test_no_generated_request_gets_a_server_error(running_gateway: RunningGateway) -> None:
    assert httpx.get(f"{running_gateway.url}/ready").json()["models"], "fuzz without models would miss scoring"
    schema = schemathesis.openapi.from_url(f"{running_gateway.url}/openapi.json")
    failures: list[str] = []
    calls: dict[str, int] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        calls[operation.label] = 0
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(max_examples=EXAMPLES_PER_MODE, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck))
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case: schemathesis.Case) -> None:
                response = case.call(base_url=running_gateway.url, timeout=30)
                calls[operation.label] += 1
                if response.status_code >= 500:
                    failures.append(f"{operation.label} {mode.value}: {response.status_code} for "
                                    f"{case.as_curl_command()}\n{response.text[:300]}")

            try:
                call()
            except Unsatisfiable:
                # No parameters or body to break (e.g. GET /health): nothing negative exists.
                assert mode is GenerationMode.NEGATIVE, operation.label
    # Every operation of the API really was exercised (none skipped by the loader).
    assert len(calls) == len(api_operations()) and all(calls.values()), calls
    assert sum(calls.values()) > 8 * EXAMPLES_PER_MODE, calls
    assert not failures, "\n\n".join(failures[:10])
    log = Path(running_gateway.log).read_text(errors="replace")
    assert "unhandled_error" not in log
