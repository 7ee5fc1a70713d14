"""A real Prometheus server scrapes Metrics.render() and evaluates the deployed rules."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest

from fraudops.monitoring.metrics import Metrics
from tests.unit.monitoring.prometheus_server import (
    RULES_FILE,
    running_prometheus,
    values,
    wait_for_result,
)


class _QuietHandler(WSGIRequestHandler):
    """A request handler that does not print each scrape."""

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def exporter() -> Iterator[tuple[Metrics, str]]:
    """Metrics served at /metrics on a loopback port: the metrics and the ``host:port``."""
    metrics = Metrics()

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        body, content_type = metrics.render()
        start_response("200 OK", [("Content-Type", content_type)])
        return [body]

    server = make_server("127.0.0.1", 0, app, WSGIServer, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield metrics, f"127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_prometheus_scrapes_the_metrics_and_evaluates_the_rules(
    tmp_path: Path, exporter: tuple[Metrics, str]
) -> None:
    """Counts made in the service reach Prometheus, and the rules run over them."""
    metrics, target = exporter
    metrics.decisions.labels(action="approve", source="model").inc(3)
    metrics.decisions.labels(action="review", source="rules").inc()
    metrics.set_breaker_state("model", "open")
    with running_prometheus(tmp_path, [target], rule_files=[RULES_FILE]) as base_url:
        counted = wait_for_result(
            base_url,
            'fraudops_decisions_total{job="fraudops",action="approve",source="model"}',
            lambda result: values(result) == [3.0],
        )
        assert [3.0] == values(counted)
        metrics.decisions.labels(action="approve", source="model").inc(2)
        wait_for_result(
            base_url,
            'sum(fraudops_decisions_total{job="fraudops"})',
            lambda result: values(result) == [6.0],
        )
        # The recording rules match the exposed names and labels: a series appears.
        wait_for_result(base_url, 'fraudops:decisions:rate5m{job="fraudops"}')
        # The breaker alert is evaluated: pending now, firing only after its minute.
        pending = wait_for_result(
            base_url,
            'ALERTS{alertname="FraudopsCircuitBreakerOpen",alertstate="pending"}',
        )
        assert ["model"] == [series["metric"]["breaker"] for series in pending]
