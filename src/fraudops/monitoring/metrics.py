"""The Prometheus metrics of the decision service, each in a registry of its own.

One :class:`Metrics` holds one :class:`~prometheus_client.CollectorRegistry`, never the
process-wide default one, so tests and several apps in one process do not collide. Names
follow Prometheus conventions: base units (seconds), ``_total`` counters, and labels of low
cardinality only; a transaction or card id is never a label (it goes in logs and traces).
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from fraudops.types import Action

SLO_LATENCY_S = 0.010
"""The latency SLO threshold: 99 % of decisions within 10 ms; a latency bucket edge sits here."""
SLO_TARGET = 0.99
"""The share of decisions that must finish within :data:`SLO_LATENCY_S`."""

LATENCY_BUCKETS_S = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.0075,
    SLO_LATENCY_S,
    0.015,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)
"""Latency bucket edges in seconds, fine around the millisecond scale the SLO lives at."""
SCORE_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, 1.0)
"""Model score bucket edges: fine at both ends, where approve and decline thresholds sit."""

DECISION_SOURCES = ("model", "last_good", "rules", "static")
"""What answered a decision: the champion model, the previous model, rules, or a static
policy (a shed request is answered by rules or the static policy, and counted as shed in
``fraudops_shed_requests_total``)."""
STAGES = ("validate", "features", "score", "rules", "decide", "log")
"""The timed stages of the decision path."""
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
"""Circuit breaker states and the value ``fraudops_breaker_state`` takes for each."""
MODEL_ROLES = ("champion", "last_good", "challenger")
"""The roles a loaded model plays."""


class Metrics:
    """The decision service's metrics, registered in one registry of their own."""

    registry: CollectorRegistry

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Create every metric in ``registry`` (a fresh one when None)."""
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.decisions = Counter(
            "fraudops_decisions",
            "Decisions returned, by action and by what answered (model, last_good, rules, static).",
            ["action", "source"],
            registry=r,
        )
        self.decision_latency = Histogram(
            "fraudops_decision_latency_seconds",
            "Time the service took to decide a new transaction, from admission to decision,"
            " in seconds. Time a request waited before (in socket buffers, behind a busy"
            " event loop) is not in it: measure that at the client or the load balancer.",
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.stage_latency = Histogram(
            "fraudops_stage_latency_seconds",
            "Time spent in one stage of the decision path, in seconds.",
            ["stage"],
            buckets=LATENCY_BUCKETS_S,
            registry=r,
        )
        self.fallbacks = Counter(
            "fraudops_fallbacks",
            "Fallbacks taken, by the step that failed and why it failed.",
            ["step", "reason"],
            registry=r,
        )
        self.breaker_state = Gauge(
            "fraudops_breaker_state",
            "Circuit breaker state: 0 closed, 1 half_open, 2 open.",
            ["breaker"],
            registry=r,
        )
        self.breaker_transitions = Counter(
            "fraudops_breaker_transitions",
            "Circuit breaker state changes, by breaker and the state entered.",
            ["breaker", "state"],
            registry=r,
        )
        self.shed = Counter(
            "fraudops_shed_requests",
            "Requests refused by load shedding because the service was at its concurrency limit.",
            registry=r,
        )
        self.repeated = Counter(
            "fraudops_repeated_transactions",
            "Transactions seen again (retries, replays), by what answered them: memory (this"
            " replica's first decision), replica (another replica's, through Redis),"
            " replica_pending (the static policy: another replica was still deciding at the"
            " deadline), state (decided again on the state as it first was).",
            ["answered_from"],
            registry=r,
        )
        self.in_flight = Gauge(
            "fraudops_in_flight_requests",
            "Decision requests being processed right now.",
            registry=r,
        )
        self.scores = Histogram(
            "fraudops_model_score",
            "Fraud probabilities returned by a model (not by rules or static fallbacks).",
            buckets=SCORE_BUCKETS,
            registry=r,
        )
        self.model_info = Gauge(
            "fraudops_model_info",
            "The model version loaded in each role (champion, last_good, and the challenger"
            " scored in shadow); always 1.",
            ["role", "version"],
            registry=r,
        )
        self.model_swaps = Counter(
            "fraudops_model_swaps",
            "Models the service tried to swap in because the registry alias it follows moved,"
            " by role and outcome (swapped; failed: the old model goes on serving).",
            ["role", "outcome"],
            registry=r,
        )
        self.labels_received = Counter(
            "fraudops_labels_received",
            "Fraud labels received (analyst verdicts, chargebacks, datasets), by source.",
            ["source"],
            registry=r,
        )
        self.decision_log_depth = Gauge(
            "fraudops_decision_log_buffer_depth",
            "Decisions waiting in the in-memory buffer to be written to the decision log.",
            registry=r,
        )
        self.decision_log_spilled = Counter(
            "fraudops_decision_log_spilled",
            "Decisions spilled to disk because the decision log buffer was full.",
            registry=r,
        )
        self.decision_log_written = Counter(
            "fraudops_decision_log_written",
            "Decisions written to the decision log store.",
            registry=r,
        )
        self.decision_log_errors = Counter(
            "fraudops_decision_log_write_errors",
            "Failed attempts to write a batch to the decision log store.",
            registry=r,
        )
        self.dead_letters = Counter(
            "fraudops_dead_letter_records",
            "Records or requests rejected to the dead-letter store, by stage and reason.",
            ["stage", "reason"],
            registry=r,
        )
        self.gc_pause = Histogram(
            "fraudops_gc_pause_seconds",
            "How long each garbage collection stopped the process, by generation.",
            ["generation"],
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )
        self.ready = Gauge(
            "fraudops_ready",
            "1 when the model is loaded and warmed and the stores are reachable, else 0.",
            registry=r,
        )
        self._breaker_states: dict[str, str] = {}
        self._model_versions: dict[str, str] = {}
        # Series that exist from the start: a counter that appears only at its first
        # increment hides that increment from rate() and increase(), and the fallback-rate
        # alert must see a zero rather than nothing.
        for action in Action:
            for source in DECISION_SOURCES:
                self.decisions.labels(action=action.value, source=source)
        for stage in STAGES:
            self.stage_latency.labels(stage=stage)

    def set_breaker_state(self, breaker: str, state: str) -> None:
        """Record that ``breaker`` is now in ``state`` (closed, half_open or open).

        The gauge always takes the state; the transition counter counts changes only. A
        breaker not seen before counts as closed, so registering it closed is no transition.
        """
        value = BREAKER_STATES.get(state)
        if value is None:
            raise ValueError(f"unknown breaker state {state!r}; expected one of {BREAKER_STATES}")
        previous = self._breaker_states.get(breaker)
        if previous is None:
            # Every transition series starts at zero, so the first open is a visible increase.
            for name in BREAKER_STATES:
                self.breaker_transitions.labels(breaker=breaker, state=name)
            previous = "closed"
        self._breaker_states[breaker] = state
        self.breaker_state.labels(breaker=breaker).set(value)
        if state != previous:
            self.breaker_transitions.labels(breaker=breaker, state=state).inc()

    def set_model(self, role: str, version: str) -> None:
        """Record that ``role`` now holds model ``version``; the old version's series goes."""
        if role not in MODEL_ROLES:
            raise ValueError(f"unknown model role {role!r}; expected one of {MODEL_ROLES}")
        previous = self._model_versions.get(role)
        if previous is not None and previous != version:
            self.model_info.remove(role, previous)
        self._model_versions[role] = version
        self.model_info.labels(role=role, version=version).set(1)

    def render(self) -> tuple[bytes, str]:
        """The registry in the Prometheus text exposition format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_PLAIN_0_0_4
