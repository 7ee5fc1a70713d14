"""Tracing: a provider per app whose spans reach the exporter it was given."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fraudops.monitoring.tracing import current_span_id, current_trace_id, tracer_provider


def test_spans_reach_the_exporter_with_names_attributes_and_parents() -> None:
    """Nested spans are exported with their names, attributes, parent and service name."""
    exporter = InMemorySpanExporter()
    provider = tracer_provider("fraudops-test", exporter=exporter)
    tracer = provider.get_tracer("test")
    with (
        tracer.start_as_current_span("decide", attributes={"fraudops.source": "model"}),
        tracer.start_as_current_span("score") as score,
    ):
        score.set_attribute("fraudops.score", 0.25)
    finished = {span.name: span for span in exporter.get_finished_spans()}
    assert {"decide", "score"} == set(finished)
    decide, score_span = finished["decide"], finished["score"]
    assert {"fraudops.source": "model"} == dict(decide.attributes or {})
    assert {"fraudops.score": 0.25} == dict(score_span.attributes or {})
    assert score_span.parent is not None
    assert decide.context is not None
    assert score_span.context is not None
    assert decide.context.span_id == score_span.parent.span_id
    assert decide.context.trace_id == score_span.context.trace_id
    assert "fraudops-test" == decide.resource.attributes["service.name"]
    provider.shutdown()


def test_provider_is_not_made_global() -> None:
    """Building a provider leaves OpenTelemetry's global provider alone."""
    before = trace.get_tracer_provider()
    provider = tracer_provider("fraudops-test")
    assert before is trace.get_tracer_provider()
    assert provider is not trace.get_tracer_provider()
    provider.shutdown()


def test_current_ids_are_the_active_spans() -> None:
    """Inside a span the ids are its own in lowercase hex; outside there are none."""
    provider = tracer_provider("fraudops-test")
    assert (None, None) == (current_trace_id(), current_span_id())
    with provider.get_tracer("test").start_as_current_span("decide") as span:
        context = span.get_span_context()
        expected = (f"{context.trace_id:032x}", f"{context.span_id:016x}")
        assert expected == (current_trace_id(), current_span_id())
    assert None is current_trace_id()
    provider.shutdown()


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP endpoint that records the path and content type of each POST."""

    received: list[tuple[str, str]]

    def do_POST(self) -> None:
        """Record the request and answer 200 as a collector does."""
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self.received.append((self.path, self.headers.get("Content-Type", "")))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """A loopback OTLP/HTTP collector: its traces URL and the requests it received."""
    received: list[tuple[str, str]] = []
    handler = type("Handler", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    server.shutdown()
    server.server_close()
    thread.join()


def test_otlp_endpoint_receives_spans_in_batches(
    collector: tuple[str, list[tuple[str, str]]],
) -> None:
    """With an OTLP endpoint, a flush posts the finished spans there as protobuf."""
    url, received = collector
    provider = tracer_provider("fraudops-test", otlp_endpoint=url)
    with provider.get_tracer("test").start_as_current_span("decide"):
        pass
    assert [] == received  # batched: nothing is sent on the request path
    assert provider.force_flush(timeout_millis=10_000)
    assert [("/v1/traces", "application/x-protobuf")] == received
    provider.shutdown()
