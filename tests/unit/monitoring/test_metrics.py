"""The service's Prometheus metrics: names, labels, buckets and the helpers that set them."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from fraudops.monitoring.metrics import (
    BREAKER_STATES,
    DECISION_SOURCES,
    LATENCY_BUCKETS_S,
    SCORE_BUCKETS,
    SLO_LATENCY_S,
    STAGES,
    Metrics,
)
from fraudops.types import Action

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(metrics: Metrics) -> Samples:
    """Every sample ``render()`` exposes, keyed by name and label set."""
    body, _ = metrics.render()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def labels_of(all_samples: Samples, name: str) -> set[frozenset[str]]:
    """The label-name sets the samples called ``name`` carry."""
    return {frozenset(key for key, _ in labels) for sample, labels in all_samples if sample == name}


def exercise(metrics: Metrics) -> None:
    """Touch every metric once, the way the service will."""
    metrics.decisions.labels(action="approve", source="model").inc()
    metrics.decision_latency.observe(0.004)
    metrics.stage_latency.labels(stage="score").observe(0.001)
    metrics.fallbacks.labels(step="model", reason="timeout").inc()
    metrics.set_breaker_state("model", "open")
    metrics.shed.inc()
    metrics.in_flight.inc()
    metrics.scores.observe(0.3)
    metrics.set_model("champion", "2026-01-01.1")
    metrics.model_swaps.labels(role="champion", outcome="swapped").inc()
    metrics.labels_received.labels(source="analyst").inc()
    metrics.decision_log_depth.set(3)
    metrics.decision_log_spilled.inc()
    metrics.decision_log_written.inc(10)
    metrics.decision_log_errors.inc()
    metrics.dead_letters.labels(stage="ingest", reason="schema").inc()
    metrics.ready.set(1)


def test_every_metric_is_exposed_with_its_labels() -> None:
    """render() exposes each metric under its Prometheus name with exactly its labels."""
    metrics = Metrics()
    exercise(metrics)
    exposed = samples(metrics)
    expected = {
        "fraudops_decisions_total": {"action", "source"},
        "fraudops_decision_latency_seconds_count": set(),
        "fraudops_stage_latency_seconds_count": {"stage"},
        "fraudops_fallbacks_total": {"step", "reason"},
        "fraudops_breaker_state": {"breaker"},
        "fraudops_breaker_transitions_total": {"breaker", "state"},
        "fraudops_shed_requests_total": set(),
        "fraudops_in_flight_requests": set(),
        "fraudops_model_score_count": set(),
        "fraudops_model_info": {"role", "version"},
        "fraudops_model_swaps_total": {"role", "outcome"},
        "fraudops_labels_received_total": {"source"},
        "fraudops_decision_log_buffer_depth": set(),
        "fraudops_decision_log_spilled_total": set(),
        "fraudops_decision_log_written_total": set(),
        "fraudops_decision_log_write_errors_total": set(),
        "fraudops_dead_letter_records_total": {"stage", "reason"},
        "fraudops_ready": set(),
    }
    actual = {name: labels_of(exposed, name) for name in expected}
    assert {name: {frozenset(labels)} for name, labels in expected.items()} == actual


def test_every_metric_has_help_text() -> None:
    """Each fraudops metric family says what it counts."""
    body, _ = Metrics().render()
    families = list(text_string_to_metric_families(body.decode()))
    undocumented = [f.name for f in families if len(f.documentation) < 20]
    assert [] == undocumented
    assert all(f.name.startswith("fraudops_") for f in families)


def test_metrics_instances_do_not_share_a_registry() -> None:
    """Two Metrics live side by side, and neither touches the process-wide registry."""
    first, second = Metrics(), Metrics()
    first.shed.inc(2)
    assert 2.0 == samples(first)[("fraudops_shed_requests_total", frozenset())]
    assert 0.0 == samples(second)[("fraudops_shed_requests_total", frozenset())]
    assert None is REGISTRY.get_sample_value("fraudops_shed_requests_total")


def test_latency_histogram_has_an_edge_at_the_slo() -> None:
    """A decision of exactly 10 ms counts within the SLO bucket; a slower one does not."""
    metrics = Metrics()
    metrics.decision_latency.observe(SLO_LATENCY_S)
    metrics.decision_latency.observe(SLO_LATENCY_S * 1.01)
    exposed = samples(metrics)
    edges = {
        float(dict(labels)["le"]): value
        for (name, labels), value in exposed.items()
        if name == "fraudops_decision_latency_seconds_bucket"
    }
    assert [*LATENCY_BUCKETS_S, float("inf")] == sorted(edges)
    assert 1.0 == exposed[("fraudops_decision_latency_seconds_bucket", frozenset({("le", "0.01")}))]
    assert 2.0 == edges[float("inf")]


def test_score_histogram_has_the_documented_edges() -> None:
    """Model scores are bucketed at the documented edges, up to 1."""
    metrics = Metrics()
    metrics.scores.observe(0.5)
    edges = sorted(
        float(dict(labels)["le"])
        for name, labels in samples(metrics)
        if name == "fraudops_model_score_bucket"
    )
    assert [*SCORE_BUCKETS, float("inf")] == edges


def test_decision_and_stage_series_start_at_zero() -> None:
    """Every action and source, and every stage, is exposed before its first event."""
    exposed = samples(Metrics())
    decisions = {
        (dict(labels)["action"], dict(labels)["source"]): value
        for (name, labels), value in exposed.items()
        if name == "fraudops_decisions_total"
    }
    expected = {(action.value, source): 0.0 for action in Action for source in DECISION_SOURCES}
    assert expected == decisions
    stages = {
        dict(labels)["stage"]
        for name, labels in exposed
        if name == "fraudops_stage_latency_seconds_count"
    }
    assert set(STAGES) == stages


def breaker_samples(metrics: Metrics, breaker: str) -> tuple[float, dict[str, float]]:
    """The state gauge and the transition counts by state of one breaker."""
    exposed = samples(metrics)
    state = exposed[("fraudops_breaker_state", frozenset({("breaker", breaker)}))]
    transitions = {
        dict(labels)["state"]: value
        for (name, labels), value in exposed.items()
        if name == "fraudops_breaker_transitions_total" and dict(labels)["breaker"] == breaker
    }
    return state, transitions


def test_registering_a_closed_breaker_is_no_transition() -> None:
    """A breaker first seen closed shows state 0 and zero transitions in every state."""
    metrics = Metrics()
    metrics.set_breaker_state("model", "closed")
    assert (0.0, dict.fromkeys(BREAKER_STATES, 0.0)) == breaker_samples(metrics, "model")


def test_breaker_transitions_count_changes_only() -> None:
    """The gauge follows every call; the counter counts each change of state once."""
    metrics = Metrics()
    for state in ["closed", "open", "open", "half_open", "open", "half_open", "closed"]:
        metrics.set_breaker_state("model", state)
    metrics.set_breaker_state("feature_store", "open")
    assert (0.0, {"closed": 1.0, "open": 2.0, "half_open": 2.0}) == breaker_samples(
        metrics, "model"
    )
    assert (2.0, {"closed": 0.0, "open": 1.0, "half_open": 0.0}) == breaker_samples(
        metrics, "feature_store"
    )


def test_unknown_breaker_state_is_refused() -> None:
    """A state outside closed/half_open/open raises instead of exposing a wrong value."""
    metrics = Metrics()
    with pytest.raises(ValueError, match="half-open"):
        metrics.set_breaker_state("model", "half-open")


def model_info(metrics: Metrics) -> set[tuple[str, str, float]]:
    """The (role, version, value) series of fraudops_model_info."""
    return {
        (dict(labels)["role"], dict(labels)["version"], value)
        for (name, labels), value in samples(metrics).items()
        if name == "fraudops_model_info"
    }


def test_set_model_keeps_one_series_per_role() -> None:
    """A new version replaces the old one's series for that role and leaves the other role."""
    metrics = Metrics()
    metrics.set_model("champion", "v1")
    metrics.set_model("last_good", "v0")
    metrics.set_model("champion", "v2")
    metrics.set_model("champion", "v2")
    assert {("champion", "v2", 1.0), ("last_good", "v0", 1.0)} == model_info(metrics)


def test_unknown_model_role_is_refused() -> None:
    """Only champion and last_good are roles, which keeps the label's cardinality fixed."""
    with pytest.raises(ValueError, match="shadow"):
        Metrics().set_model("shadow", "v1")


def test_render_gives_the_text_format_content_type() -> None:
    """render() returns the exposition bytes with the text format's content type."""
    body, content_type = Metrics().render()
    assert content_type.startswith("text/plain; version=0.0.4")
    assert body.startswith(b"# HELP fraudops_")
