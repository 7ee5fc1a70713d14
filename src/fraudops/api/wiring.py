"""Assembling the decision service from settings: the one place its parts are chosen.

``build_runtime`` reads ``Settings`` and returns plain objects; nothing below it reads
configuration. Tests build a runtime the same way and swap a part (a scorer that hangs, a
store behind a cut proxy) before handing it to ``create_app``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from fraudops.api.champion import ChampionFollower
from fraudops.clock import Clock, SystemClock
from fraudops.decide.ensemble_scorer import load_scorer
from fraudops.decide.guard import ScoreGuard
from fraudops.decide.log import SqlDecisionStore
from fraudops.decide.log_buffer import BufferedDecisionLog
from fraudops.decide.models import ServedModel
from fraudops.decide.policy import Policy
from fraudops.decide.rules import RuleSet
from fraudops.decide.scorer import Scorer
from fraudops.decide.service import DecisionService, Limits
from fraudops.decide.shadow import ShadowScorer
from fraudops.decide.static import StaticPolicy
from fraudops.errors import FraudopsError, ModelError
from fraudops.features.definition import FeatureDefinition, feature_definition
from fraudops.features.online import SIGNALS, OnlineFeatures
from fraudops.features.state import FeatureState, InMemoryFeatureState
from fraudops.monitoring.metrics import Metrics
from fraudops.monitoring.tracing import tracer_provider
from fraudops.resilience import BreakerState, CircuitBreaker

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from fraudops.decide.log import DecisionStore
    from fraudops.learn.registry import MlflowRegistry
    from fraudops.settings import Settings
    from fraudops.types import Decision

log = structlog.get_logger("fraudops.service")


@dataclass
class Runtime:
    """Everything a running service holds, so it can be started, probed and closed."""

    service: DecisionService
    metrics: Metrics
    provider: TracerProvider
    state: FeatureState
    store: DecisionStore
    log: BufferedDecisionLog
    models_wanted: tuple[str, ...]
    warmup_rows: int
    started: bool = False
    notes: list[str] = field(default_factory=list)
    shadow: ShadowScorer | None = None
    follower: ChampionFollower | None = None
    """Swaps in the model the registry's alias names when it moves (``service.model_alias``)."""

    def start(self) -> None:
        """Warm up, start the log's flusher and mark the service ready.

        The latest decisions are read back from the log first, so a retry that arrives
        after a restart still gets its first answer (if the log's database is down, retries
        of decisions made before the restart are decided afresh; that is logged).
        """
        self.log.start()
        if self.shadow is not None:
            self.shadow.start()
        self._remember_recent()
        self.service.warm_up(self.warmup_rows)
        self.started = True
        self.metrics.ready.set_function(lambda: 1.0 if self.ready else 0.0)
        log.info(
            "service_started",
            models=[f"{m.role}={m.version}" for m in self.service.models],
            notes=self.notes,
            ready=self.ready,
        )

    @property
    def ready(self) -> bool:
        """Started, and some model serves (a champion the follower swaps in later counts)."""
        return self.started and bool(self.service.models)

    def _remember_recent(self) -> None:
        capacity = self.service.recent.capacity
        if capacity <= 0:
            return
        try:
            records = self.store.recent(capacity)
        except FraudopsError as exc:
            log.error("recent_decisions_not_loaded", error=str(exc))
            return
        for record in reversed(records):
            self.service.recent.remember(record.decision)
        log.info("recent_decisions_loaded", decisions=len(records))

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop taking work, write every decision, release every resource."""
        self.started = False
        self.service.close()
        if self.shadow is not None:
            self.shadow.close(timeout_s)
        self.log.close(timeout_s)
        self.store.close()
        if self.follower is not None:
            self.follower.close()
        closer = getattr(self.state, "close", None)
        if callable(closer):
            try:
                closer()
            except FraudopsError as exc:
                # Deferred state writes (Redis) that could not be written; decisions are safe.
                log.error("feature_state_writes_lost", error=str(exc))
        self.provider.shutdown()
        log.info("service_stopped", spilled=self.log.spilled)

    async def probe_state(self, timeout_s: float) -> tuple[bool, str]:
        """Whether the feature store answers within ``timeout_s``."""
        ping = getattr(self.state, "ping", None)
        if not callable(ping):
            return True, "in memory"
        try:
            await asyncio.wait_for(asyncio.to_thread(ping), timeout_s)
        except (FraudopsError, TimeoutError) as exc:
            return False, f"unreachable: {exc}"
        return True, "reachable"

    async def probe_log(self, timeout_s: float) -> tuple[bool, str]:
        """Whether the decision log's database answers within ``timeout_s``."""
        try:
            await asyncio.wait_for(asyncio.to_thread(self.store.ping), timeout_s)
        except (FraudopsError, TimeoutError) as exc:
            return False, f"unreachable, buffering ({self.log.depth} waiting): {exc}"
        return True, f"reachable, {self.log.depth} waiting"


def _state(settings: Settings) -> FeatureState:
    if settings.state.backend == "redis":
        from fraudops.features.redis_state import RedisFeatureState

        return RedisFeatureState.from_url(
            settings.state.redis_url,
            prefix=settings.state.key_prefix,
            timeout_s=settings.service.store_timeout_ms / 1000.0,
            write_delay_s=settings.state.write_delay_ms / 1000.0,
        )
    return InMemoryFeatureState()


def load_scorers(
    settings: Settings, definition: FeatureDefinition, champion_dir: Path | None
) -> list[tuple[str, Scorer]]:
    """The champion (from ``champion_dir``; None: none) and the last known good model that
    load; a failure is logged, not fatal."""
    wanted = [] if champion_dir is None else [("champion", champion_dir)]
    if settings.service.fallback_model_dir is not None:
        wanted.append(("last_good", settings.service.fallback_model_dir))
    scorers: list[tuple[str, Scorer]] = []
    for role, path in wanted:
        try:
            scorer = load_scorer(path, definition_hash=definition.definition_hash())
        except ModelError as exc:
            log.error("model_not_loaded", role=role, path=str(path), error=str(exc))
            continue
        scorers.append((role, scorer))
    return scorers


def build_runtime(
    settings: Settings,
    *,
    scorers: list[tuple[str, Scorer]] | None = None,
    state: FeatureState | None = None,
    store: DecisionStore | None = None,
    span_exporter: SpanExporter | None = None,
    clock: Clock | None = None,
    challenger: Scorer | None = None,
) -> Runtime:
    """The service's parts, from ``settings``; any part may be passed in instead."""
    metrics = Metrics()
    provider = tracer_provider(
        settings.observability.service_name,
        otlp_endpoint=settings.observability.otlp_endpoint,
        exporter=span_exporter,
        sample_ratio=settings.observability.trace_sample_ratio,
    )
    definition = feature_definition(settings.features.label_delay_days)
    notes: list[str] = []
    registry, started_on = None, None
    champion_dir: Path | None = settings.model_dir
    alias = settings.service.model_alias
    if alias is not None:
        registry, started_on, champion_dir = _registry_champion(settings, alias, notes)
    if scorers is None:
        scorers = load_scorers(settings, definition, champion_dir)
    if not scorers:
        notes.append("no model loaded: rules and the static policy decide")
    elif scorers[0][0] != "champion":
        notes.append("champion not loaded: serving the last known good model")

    def on_state_change(name: str, old: BreakerState, new: BreakerState) -> None:
        metrics.set_breaker_state(name, new.value)
        event = log.warning if new is not BreakerState.CLOSED else log.info
        event("breaker_state_changed", breaker=name, old=old.value, new=new.value)

    def breaker(name: str) -> CircuitBreaker:
        made = CircuitBreaker(
            name,
            failure_threshold=settings.breaker.failure_threshold,
            reset_timeout_s=settings.breaker.reset_timeout_s,
            on_state_change=on_state_change,
        )
        metrics.set_breaker_state(name, made.state.value)
        return made

    def served(role: str, scorer: Scorer) -> ServedModel:
        return ServedModel(
            role,
            scorer,
            definition.names,
            breaker=breaker(role),
            guard=ScoreGuard(settings.score_guard.constant_run),
            inline=(
                getattr(scorer, "latency_bounded", False) and not settings.service.isolate_models
            ),
        )

    models = [served(role, scorer) for role, scorer in scorers]
    for model in models:
        metrics.set_model(model.role, model.version)

    state = state if state is not None else _state(settings)

    if store is None:
        store = SqlDecisionStore(settings.decision_log.url, now=(clock or SystemClock()).now)
    settings.decision_log.spill_dir.mkdir(parents=True, exist_ok=True)
    decision_log = BufferedDecisionLog(
        store,
        buffer_size=settings.decision_log.buffer_size,
        batch_size=settings.decision_log.batch_size,
        flush_interval_s=settings.decision_log.flush_interval_ms / 1000.0,
        spill_dir=settings.decision_log.spill_dir,
        on_depth=metrics.decision_log_depth.set,
        on_spill=_on_spill(metrics),
        on_flush_error=_on_flush_error(metrics),
        on_written=metrics.decision_log_written.inc,
    )
    service_settings = settings.service
    shadow = _shadow(settings, definition, metrics, challenger, clock, notes)
    service = DecisionService(
        features=OnlineFeatures(definition, state),
        models=models,
        policy=Policy.from_settings(settings.policy),
        rules=RuleSet.load(
            service_settings.rules_file, known_features=(*definition.names, *SIGNALS)
        ),
        static=StaticPolicy(service_settings.static_review_amount),
        log=decision_log,
        metrics=metrics,
        tracer=provider.get_tracer("fraudops.decide"),
        clock=clock or SystemClock(),
        store_breaker=breaker("feature_store"),
        limits=Limits(
            deadline_s=service_settings.deadline_ms / 1000.0,
            model_timeout_s=service_settings.model_timeout_ms / 1000.0,
            store_timeout_s=service_settings.store_timeout_ms / 1000.0,
            max_in_flight=service_settings.max_in_flight,
            max_loop_lag_s=service_settings.max_loop_lag_ms / 1000.0,
        ),
        recent_capacity=service_settings.recent_decisions,
        on_decision=DecisionLines(),
        shadow=shadow,
    )
    follower = None
    if registry is not None and alias is not None:
        follower = _follower(
            settings, alias, registry, started_on, service, served, definition, metrics, clock
        )
    return Runtime(
        service=service,
        metrics=metrics,
        provider=provider,
        state=state,
        store=store,
        log=decision_log,
        models_wanted=tuple(role for role, _ in scorers),
        warmup_rows=service_settings.warmup_rows,
        notes=notes,
        shadow=shadow,
        follower=follower,
    )


def _registry_champion(
    settings: Settings, alias: str, notes: list[str]
) -> tuple[MlflowRegistry, int | None, Path | None]:
    """The registry the service follows, and the version and model directory ``alias``
    names now (None, with a note, when the registry cannot say: the follower loads it
    once it can)."""
    from fraudops.learn.registry import open_registry

    registry = open_registry(settings.service.registry_dir or settings.data_dir / "registry")
    try:
        found = registry.get(alias)
        return registry, found.version, registry.load_dir(found.version)
    except FraudopsError as exc:
        log.error("champion_alias_unresolved", alias=alias, error=str(exc))
        notes.append(f"the registry's {alias} is not loaded yet: {exc}")
        return registry, None, None


def _follower(
    settings: Settings,
    alias: str,
    registry: MlflowRegistry,
    started_on: int | None,
    service: DecisionService,
    served: Callable[[str, Scorer], ServedModel],
    definition: FeatureDefinition,
    metrics: Metrics,
    clock: Clock | None,
) -> ChampionFollower:
    """What swaps in the model the registry's alias names whenever it moves."""
    from fraudops.review.database import ReviewDatabase

    service_settings = settings.service
    warmup_rows = service_settings.warmup_rows

    def make_model(path: Path) -> ServedModel:
        model = served("champion", load_scorer(path, definition_hash=definition.definition_hash()))
        try:
            service.warm_up_model(model, warmup_rows)
        except Exception as exc:
            model.close()
            raise ModelError(f"model {model.version} failed its warm-up: {exc}") from exc
        return model

    return ChampionFollower(
        registry,
        alias,
        started_on=started_on,
        service=service,
        make_model=make_model,
        audit_database=ReviewDatabase(settings.review.database_url(settings.data_dir)),
        metrics=metrics,
        clock=clock or SystemClock(),
        poll_s=service_settings.alias_poll_s,
        grace_s=2 * service_settings.deadline_ms / 1000.0,
    )


def _shadow(
    settings: Settings,
    definition: FeatureDefinition,
    metrics: Metrics,
    challenger: Scorer | None,
    clock: Clock | None,
    notes: list[str],
) -> ShadowScorer | None:
    """The challenger in shadow, if one is configured and loads; a failure is a note."""
    path = settings.service.challenger_model_dir
    if challenger is None and path is not None:
        try:
            challenger = load_scorer(path, definition_hash=definition.definition_hash())
        except ModelError as exc:
            log.error("model_not_loaded", role="challenger", path=str(path), error=str(exc))
            notes.append(f"challenger not loaded, no shadow scores: {exc}")
    if challenger is None:
        return None
    from prometheus_client import Counter

    outcomes = Counter(
        "fraudops_shadow_scores",
        "Decided transactions handed to the shadow challenger, by outcome (scored and"
        " written, dropped on a full queue, failed to score or write).",
        ["outcome"],
        registry=metrics.registry,
    )
    scored, dropped, failed = (outcomes.labels(outcome=o) for o in ("scored", "dropped", "failed"))
    try:
        return ShadowScorer(
            challenger,
            definition.names,
            settings.decision_log.url,
            capacity=settings.service.shadow_queue_size,
            clock=clock,
            on_scored=scored.inc,
            on_dropped=dropped.inc,
            on_failed=failed.inc,
        )
    except FraudopsError as exc:
        log.error("shadow_not_started", error=str(exc))
        notes.append(f"challenger not shadowed: {exc}")
        return None


class DecisionLines:
    """Decision log lines, with degraded ones capped at ``per_second`` (the rest counted).

    Every decision is counted in metrics; the lines are for people. Under a fault every
    decision is degraded, and a warning line per decision at hundreds a second is load on
    the service that is already struggling, so past the cap the lines are dropped and the
    next one says how many were.
    """

    def __init__(self, per_second: int = 50, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_second
        self._clock = clock
        self._window = -1
        self._written = 0
        self.suppressed = 0

    def __call__(self, decision: Decision, trace_id: str | None) -> None:
        if not decision.degraded and not log.is_enabled_for(logging.INFO):
            return  # the usual case in production: no line, so no fields to build either
        fields: dict[str, object] = {
            "transaction_id": decision.transaction_id,
            "action": decision.action.value,
            "source": decision.source,
            "score": round(decision.score, 6),
            "model_version": decision.model_version,
            "latency_ms": round(decision.latency_ms, 3),
        }
        if not decision.degraded:
            log.info("decision", **fields)
            return
        window = int(self._clock())
        if window != self._window:
            self._window, self._written = window, 0
        if self._written >= self.per_second:
            self.suppressed += 1
            return
        self._written += 1
        if self.suppressed:
            fields["suppressed_since_last"] = self.suppressed
            self.suppressed = 0
        log.warning("decision_degraded", degraded_reason=decision.degraded_reason, **fields)


def _on_spill(metrics: Metrics) -> Callable[[int], None]:
    def on_spill(count: int) -> None:
        metrics.decision_log_spilled.inc(count)
        log.error("decision_log_spilled", records=count)

    return on_spill


def _on_flush_error(metrics: Metrics) -> Callable[[Exception], None]:
    def on_flush_error(error: Exception) -> None:
        metrics.decision_log_errors.inc()
        log.error("decision_log_write_failed", error=str(error))

    return on_flush_error
