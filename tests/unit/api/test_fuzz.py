"""The API fuzzed from its own OpenAPI schema: never a 5xx, and every 4xx names the problem.

Schemathesis turns the schema into Hypothesis strategies of requests, both ones the schema
allows (positive) and ones it forbids (negative); each is sent with a valid API key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.core import NotSet
from schemathesis.openapi import from_dict

from fraudops.api import Runtime
from tests.conftest import TrainedLake
from tests.unit.api.conftest import HEADERS, running_service, service_settings

OPERATIONS = [
    ("/v1/transactions", "POST"),
    ("/v1/transactions:batch", "POST"),
    ("/v1/labels", "POST"),
    ("/v1/decisions/{transaction_id}", "GET"),
]


@pytest.fixture(scope="module")
def fuzzed_service(
    tmp_path_factory: pytest.TempPathFactory, trained_lake: TrainedLake
) -> Iterator[tuple[TestClient, Runtime]]:
    """One service for all fuzzing examples."""
    settings = service_settings(tmp_path_factory.mktemp("fuzz"), trained_lake.model_dir)
    with running_service(settings) as running:
        yield running


def _check(response: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        body = response.json()
        assert body["detail"], body
        if response.status_code == 422:
            assert body["errors"], body
            assert all(problem["field"] for problem in body["errors"]), body


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_no_request_gets_a_5xx_and_every_4xx_says_why(
    fuzzed_service: tuple[TestClient, Runtime], path: str, method: str
) -> None:
    """Positive and negative requests of each operation: < 500, 422s name their fields."""
    client, _ = fuzzed_service
    schema = from_dict(client.get("/openapi.json").json())
    operation = schema[path][method]
    cases = st.one_of(
        operation.as_strategy(generation_mode=GenerationMode.POSITIVE),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    )

    @given(cases)
    @settings(
        max_examples=60,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
    def check(case: Any) -> None:
        kwargs: dict[str, Any] = {"headers": {**(case.headers or {}), **HEADERS}}
        body = None if isinstance(case.body, NotSet) else case.body
        if body is not None and not isinstance(body, bytes | str):
            kwargs["json"] = body
        elif body is not None:
            kwargs["content"] = body
            kwargs["headers"]["content-type"] = case.media_type or "application/json"
        response = client.request(method, case.formatted_path, **kwargs)
        _check(response)

    check()


def test_fuzzing_reaches_the_decision_path(fuzzed_service: tuple[TestClient, Runtime]) -> None:
    """Positive examples are real transactions: some are decided, not all rejected."""
    _, runtime = fuzzed_service
    assert len(runtime.service.recent) > 0
