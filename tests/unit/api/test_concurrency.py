"""The decision service under concurrency: shedding, retries in flight; and its traces."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import format_trace_id

from fraudops.api import Runtime, build_runtime
from fraudops.decide.recent import Content
from fraudops.features.state import CardState
from fraudops.types import Decision, Transaction
from tests.conftest import TrainedLake
from tests.unit.api.conftest import FaultyScorer, service_settings


@pytest.fixture
def slow_runtime(
    tmp_path: Path, trained_lake: TrainedLake, faulty: FaultyScorer
) -> Iterator[tuple[Runtime, FaultyScorer]]:
    """A started runtime whose champion can be slowed down, admitting two decisions at once."""
    settings = service_settings(tmp_path, trained_lake.model_dir, max_in_flight=2)
    runtime = build_runtime(settings, scorers=[("champion", faulty)])
    runtime.start()
    try:
        yield runtime, faulty
    finally:
        runtime.close()


async def _decide_all(runtime: Runtime, txs: list[Transaction]) -> list[tuple[Decision, bool]]:
    return list(await asyncio.gather(*(runtime.service.decide(tx) for tx in txs)))


def test_work_above_the_in_flight_bound_is_shed_at_once(
    slow_runtime: tuple[Runtime, FaultyScorer], transactions: list[Transaction]
) -> None:
    """Ten at once with room for two: eight answered from the cheap fallback, and counted."""
    runtime, faulty = slow_runtime
    faulty.mode, faulty.hang_s = "hang", 0.01
    decided = asyncio.run(_decide_all(runtime, transactions[:10]))
    shed = [d for d, _ in decided if d.degraded_reason == "admission:shed"]
    admitted = [d for d, _ in decided if d.degraded_reason != "admission:shed"]
    assert (8, 2) == (len(shed), len(admitted))
    assert {"model"} == {d.source for d in admitted}
    assert {"rules", "static"} >= {d.source for d in shed}
    assert 8.0 == runtime.metrics.shed._value.get()
    # A shed transaction never touches the online state.
    shed_ids = {d.transaction_id for d in shed}
    in_state = {
        tx_id
        for tx in transactions[:10]
        for tx_id in (runtime.state.get_card(tx.customer_id) or CardState()).transaction_ids
    }
    assert set() == shed_ids & in_state


def test_a_retry_while_the_first_is_in_flight_waits_for_it(
    slow_runtime: tuple[Runtime, FaultyScorer], transactions: list[Transaction]
) -> None:
    """The same id twice at once: one decision, shared, and one entry in the card's history."""
    runtime, faulty = slow_runtime
    faulty.mode, faulty.hang_s = "hang", 0.005
    tx = transactions[0]
    calls_before = faulty.calls
    (first, first_retry), (second, second_retry) = asyncio.run(_decide_all(runtime, [tx, tx]))
    card = runtime.state.get_card(tx.customer_id)
    assert first == second
    assert (False, True) == (first_retry, second_retry)
    assert card is not None
    assert [tx.transaction_id] == card.transaction_ids
    assert 1 == faulty.calls - calls_before


def test_each_stage_of_a_decision_is_a_span(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """features, score, decide, rules and log spans share the decision's trace."""
    exporter = InMemorySpanExporter()
    settings = service_settings(tmp_path, trained_lake.model_dir)
    runtime = build_runtime(settings, span_exporter=exporter)
    runtime.start()
    try:
        tracer = runtime.service.tracer

        async def decide_in_a_span() -> None:
            with tracer.start_as_current_span("transaction"):
                await runtime.service.decide(transactions[0])

        asyncio.run(decide_in_a_span())
    finally:
        runtime.close()
    spans = exporter.get_finished_spans()
    names = {span.name for span in spans}
    traces = {span.context.trace_id for span in spans}
    assert {"transaction", "features", "score", "decide", "rules", "log"} == names
    assert 1 == len(traces)


def test_unrecorded_decisions_open_no_stage_spans_and_keep_the_trace_id(
    tmp_path: Path,
    trained_lake: TrainedLake,
    transactions: list[Transaction],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not exporting: no stage opens a span, and the record carries the request's trace id."""
    runtime = build_runtime(service_settings(tmp_path, trained_lake.model_dir))
    runtime.start()
    tracer = runtime.service.tracer
    opened: list[str] = []

    class CountingTracer:
        def start_as_current_span(self, name: str) -> Any:
            opened.append(name)
            return tracer.start_as_current_span(name)

    async def decide_in_a_span() -> str:
        with tracer.start_as_current_span("transaction") as span:
            monkeypatch.setattr(runtime.service, "tracer", CountingTracer())
            await runtime.service.decide(transactions[0])
            return format_trace_id(span.get_span_context().trace_id)

    try:
        trace_id = asyncio.run(decide_in_a_span())
        record = runtime.log.get(transactions[0].transaction_id)
    finally:
        runtime.close()
    assert record is not None
    assert ([], trace_id) == (opened, record.trace_id)


def test_degraded_decision_lines_are_capped_per_second() -> None:
    """Past the cap, degraded lines are dropped and the next line says how many were."""
    from structlog.testing import capture_logs

    from fraudops.api.wiring import DecisionLines
    from fraudops.types import Action

    now = [100.0]
    lines = DecisionLines(per_second=2, clock=lambda: now[0])
    degraded = Decision("t", Action.APPROVE, 0.0, (), "static", 1.0, True, "champion:timeout")
    with capture_logs() as captured:
        for _ in range(5):
            lines(degraded, None)
        now[0] = 101.0
        lines(degraded, None)
    assert 3 == len(captured)
    assert 3 == captured[-1]["suppressed_since_last"]


def test_a_bug_in_the_decision_path_still_gets_a_logged_static_answer(
    slow_runtime: tuple[Runtime, FaultyScorer], transactions: list[Transaction]
) -> None:
    """If the path itself raises, the static policy answers, flagged, and it is logged."""
    runtime, _ = slow_runtime

    async def broken(tx: Transaction, content: Content) -> tuple[Decision, bool]:
        raise RuntimeError("a bug")

    runtime.service._decide_new = broken  # type: ignore[method-assign]
    tx = transactions[0]
    decision, retry = asyncio.run(runtime.service.decide(tx))
    runtime.log.flush()
    record = runtime.log.get(tx.transaction_id)
    assert ("static", "service:runtime_error", False) == (
        decision.source,
        decision.degraded_reason,
        retry,
    )
    assert record is not None
    assert decision == record.decision
