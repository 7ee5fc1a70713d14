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

from fraudops.api.aliases import AliasFollower, ChallengerSeat, ChampionSeat, Seat
from fraudops.clock import Clock, SystemClock
from fraudops.decide.ensemble_scorer import load_scorer
from fraudops.decide.guard import ScoreGuard
from fraudops.decide.log import SqlDecisionStore
from fraudops.decide.log_buffer import BufferedDecisionLog
from fraudops.decide.models import ServedModel
from fraudops.decide.policy import Policy
from fraudops.decide.recent import content_of
from fraudops.decide.rules import RuleSet
from fraudops.decide.scorer import Scorer
from fraudops.decide.service import DecisionService, Limits
from fraudops.decide.shadow import ShadowScorer
from fraudops.decide.static import StaticPolicy
from fraudops.errors import FraudopsError, ModelError, StoreError
from fraudops.features.definition import FeatureDefinition, feature_definition
from fraudops.features.online import SIGNALS, OnlineFeatures
from fraudops.features.state import FeatureState, InMemoryFeatureState
from fraudops.monitoring.metrics import Metrics
from fraudops.monitoring.tracing import tracer_provider
from fraudops.resilience import BreakerState, CircuitBreaker

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from fraudops.decide.claims import DecisionClaims
    from fraudops.decide.log import DecisionStore
    from fraudops.learn.registry import MlflowRegistry
    from fraudops.settings import ServiceSettings, Settings
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
    warmup_rows: int
    started: bool = False
    notes: list[str] = field(default_factory=list)
    followers: tuple[AliasFollower, ...] = ()
    """Seat the models the registry's aliases name when they move (``service.model_alias``,
    ``service.challenger_alias``)."""

    def start(self) -> None:
        """Warm up, start the log's flusher and mark the service ready.

        The latest decisions are read back from the log first, so a retry that arrives
        after a restart still gets its first answer (if the log's database is down, retries
        of decisions made before the restart are decided afresh; that is logged).
        """
        self.log.start()
        if self.service.shadow is not None:
            self.service.shadow.start()
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
            self.service.recent.remember(record.decision, content_of(record.transaction))
        log.info("recent_decisions_loaded", decisions=len(records))

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop taking work, write every decision, release every resource."""
        self.started = False
        self.service.close()
        if self.service.shadow is not None:
            self.service.shadow.close(timeout_s)
        self.log.close(timeout_s)
        self.store.close()
        for follower in self.followers:
            follower.close()
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


def _claims(state: FeatureState, service_settings: ServiceSettings) -> DecisionClaims | None:
    """Claims in Redis when replicas share the state there; None in memory (one process,
    whose recent decisions suffice) or when ``replica_recent_s`` is 0."""
    from fraudops.features.redis_state import RedisFeatureState

    if not isinstance(state, RedisFeatureState) or service_settings.replica_recent_s <= 0:
        return None
    from fraudops.decide.claims import RedisClaims

    claims = RedisClaims(
        state,
        decided_ttl_s=service_settings.replica_recent_s,
        # A replica that dies holding a claim blocks retries elsewhere this long at most.
        pending_ttl_s=max(1.0, 20 * service_settings.deadline_ms / 1000.0),
    )
    try:
        claims.check()  # a Redis too old for them is refused here, not on every decision
    except StoreError as exc:
        log.warning("replica_claims_unchecked", error=str(exc))
    return claims


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
            scorer = _scorer(path, definition)
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
    followed: list[tuple[str, str, MlflowRegistry, int | None]] = []
    champion_dir: Path | None = settings.model_dir
    if (alias := settings.service.model_alias) is not None:
        registry, started_on, champion_dir = _registry_model(settings, alias, notes)
        followed.append(("champion", alias, registry, started_on))
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
    make_shadow = _shadow_factory(settings, definition, metrics, clock)
    if challenger is None and (alias := settings.service.challenger_alias) is not None:
        registry, started_on, challenger_dir = _registry_model(settings, alias, notes)
        followed.append(("challenger", alias, registry, started_on))
        challenger = _challenger(challenger_dir, definition, notes)
    elif challenger is None:
        challenger = _challenger(settings.service.challenger_model_dir, definition, notes)
    shadow = _shadow(make_shadow, challenger, notes)
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
            max_future_s=service_settings.max_future_s,
        ),
        recent_capacity=service_settings.recent_decisions,
        on_decision=DecisionLines(),
        shadow=shadow,
        claims=_claims(state, service_settings),
    )
    seats: dict[str, Seat] = {
        "champion": ChampionSeat(
            service,
            _model_maker(service, served, definition, service_settings.warmup_rows),
            grace_s=2 * service_settings.deadline_ms / 1000.0,
        ),
        "challenger": ChallengerSeat(service, lambda path: _scorer(path, definition), make_shadow),
    }
    followers = tuple(
        _follower(settings, alias, registry, started_on, seats[role], metrics, clock)
        for role, alias, registry, started_on in followed
    )
    return Runtime(
        service=service,
        metrics=metrics,
        provider=provider,
        state=state,
        store=store,
        log=decision_log,
        warmup_rows=service_settings.warmup_rows,
        notes=notes,
        followers=followers,
    )


def _registry_model(
    settings: Settings, alias: str, notes: list[str]
) -> tuple[MlflowRegistry, int | None, Path | None]:
    """The registry a follower reads, and the version and model directory ``alias`` names
    now (None, with a note, when the registry cannot say: the follower seats it once it
    can)."""
    from fraudops.learn.registry import open_registry, registry_dir

    registry = open_registry(registry_dir(settings))
    try:
        found = registry.get(alias)
        return registry, found.version, registry.load_dir(found.version)
    except FraudopsError as exc:
        log.error("alias_unresolved", alias=alias, error=str(exc))
        notes.append(f"the registry's {alias} is not loaded yet: {exc}")
        return registry, None, None


def _scorer(path: Path, definition: FeatureDefinition) -> Scorer:
    """The scorer of the model directory at ``path``, built on ``definition``'s features."""
    return load_scorer(path, definition_hash=definition.definition_hash())


def _model_maker(
    service: DecisionService,
    served: Callable[[str, Scorer], ServedModel],
    definition: FeatureDefinition,
    warmup_rows: int,
) -> Callable[[Path], ServedModel]:
    """Loads a model directory as a champion warmed on its own threads; ModelError if it
    will not load or fails its warm-up."""

    def make_model(path: Path) -> ServedModel:
        model = served("champion", _scorer(path, definition))
        try:
            service.warm_up_model(model, warmup_rows)
        except Exception as exc:
            model.close()
            raise ModelError(f"model {model.version} failed its warm-up: {exc}") from exc
        return model

    return make_model


def _follower(
    settings: Settings,
    alias: str,
    registry: MlflowRegistry,
    started_on: int | None,
    seat: Seat,
    metrics: Metrics,
    clock: Clock | None,
) -> AliasFollower:
    """What puts the model ``alias`` names in ``seat`` whenever the alias moves."""
    from fraudops.review.database import ReviewDatabase

    return AliasFollower(
        registry,
        alias,
        seat,
        started_on=started_on,
        audit_database=ReviewDatabase(settings.review.database_url(settings.data_dir)),
        metrics=metrics,
        clock=clock or SystemClock(),
        poll_s=settings.service.alias_poll_s,
    )


def _challenger(
    path: Path | None, definition: FeatureDefinition, notes: list[str]
) -> Scorer | None:
    """The challenger model at ``path`` (None: none), if it loads; a failure is a note."""
    if path is None:
        return None
    try:
        return _scorer(path, definition)
    except ModelError as exc:
        log.error("model_not_loaded", role="challenger", path=str(path), error=str(exc))
        notes.append(f"challenger not loaded, no shadow scores: {exc}")
        return None


def _shadow_factory(
    settings: Settings, definition: FeatureDefinition, metrics: Metrics, clock: Clock | None
) -> Callable[[Scorer], ShadowScorer]:
    """Makes the shadow scorer of a challenger (ModelError if it needs other features)."""
    from prometheus_client import Counter

    outcomes = Counter(
        "fraudops_shadow_scores",
        "Decided transactions handed to the shadow challenger, by outcome (scored and"
        " written, dropped on a full queue, failed to score or write).",
        ["outcome"],
        registry=metrics.registry,
    )
    scored, dropped, failed = (outcomes.labels(outcome=o) for o in ("scored", "dropped", "failed"))

    def make_shadow(challenger: Scorer) -> ShadowScorer:
        shadow = ShadowScorer(
            challenger,
            definition.names,
            settings.decision_log.url,
            capacity=settings.service.shadow_queue_size,
            clock=clock,
            on_scored=scored.inc,
            on_dropped=dropped.inc,
            on_failed=failed.inc,
        )
        metrics.set_model("challenger", shadow.version)
        return shadow

    return make_shadow


def _shadow(
    make_shadow: Callable[[Scorer], ShadowScorer], challenger: Scorer | None, notes: list[str]
) -> ShadowScorer | None:
    """The challenger in shadow, if there is one; a failure is a note."""
    if challenger is None:
        return None
    try:
        return make_shadow(challenger)
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
