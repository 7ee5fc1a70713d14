"""The decision service's core: every transaction answered within its deadline, safely.

One decision runs under a ``Deadline``:

1. **features** — the online state (memory, or Redis under its socket timeout) behind the
   store's breaker; the transaction joins the card's history here. With the state in Redis
   the replica also claims the transaction here (``decide.claims``): one that another
   replica claimed first gets that replica's decision, and is not decided again;
2. **score** — the fallback chain: champion model → last known good model → rules →
   static policy. Each model runs under its own timeout, breaker and score guard. Rules
   answer only when they could judge the transaction (a rule needing a feature the store
   could not give leaves them unsure), and the static policy always answers;
3. **rules** marked ``always`` run beside the model and may escalate its action;
4. **log** — the decision and the features served go to the buffered decision log, which
   never blocks.

Above ``max_in_flight`` concurrent decisions, or while the event loop runs later than
``max_loop_lag_s`` (work is queueing where no counter sees it), the service sheds: it
answers at once from rules on the transaction alone (or the static policy), without
touching the state, rather than queueing into the deadline. Every fallback, shed request
and breaker transition is a metric and a log event, and a decision that did not come from
the champion says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import structlog
from opentelemetry.trace import get_current_span

from fraudops.decide.claims import Claim, DecisionClaims
from fraudops.decide.log import DecisionRecord
from fraudops.decide.models import Scored, ServedModel
from fraudops.decide.recent import Content, RecentDecisions, conflict, content_of
from fraudops.errors import ConflictingDuplicateError, FieldError, FraudopsError
from fraudops.features.online import LabelEffect
from fraudops.monitoring.tracing import current_trace_id
from fraudops.resilience import (
    Attempt,
    CircuitBreaker,
    Deadline,
    FallbackChain,
    LoadShedder,
    LoopLag,
    reason_of,
)
from fraudops.types import Action, Decision, Label, Reason, Transaction

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

    from fraudops.clock import Clock
    from fraudops.decide.log_buffer import BufferedDecisionLog
    from fraudops.decide.policy import Policy
    from fraudops.decide.rules import RuleOutcome, RuleSet
    from fraudops.decide.shadow import ShadowScorer
    from fraudops.decide.static import StaticPolicy
    from fraudops.features.online import OnlineFeatures, Served
    from fraudops.monitoring.metrics import Metrics

_log = structlog.get_logger("fraudops.decide")
_SEVERITY = {Action.APPROVE: 0, Action.REVIEW: 1, Action.DECLINE: 2}

PENDING_ELSEWHERE = "replica:pending"
"""``degraded_reason`` of the static answer given while another replica, which claimed the
transaction, was still deciding it at the deadline; that replica's decision is the one logged."""


@dataclass(frozen=True, slots=True)
class Limits:
    """The time and concurrency limits every decision runs under."""

    deadline_s: float = 0.050
    model_timeout_s: float = 0.020
    store_timeout_s: float = 0.020
    max_in_flight: int = 64
    max_loop_lag_s: float = 0.025
    max_future_s: float = 300.0
    top_reasons: int = 3
    explain: frozenset[Action] = frozenset({Action.REVIEW, Action.DECLINE})


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one step of the fallback chain decided."""

    action: Action
    score: float
    source: str
    model_version: str
    reasons: tuple[Reason, ...] = ()
    rule_hits: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Decided:
    """What an admitted (or shed) transaction was decided on, and how it came to this replica."""

    answer: _Answer
    features: dict[str, float] | None
    failures: tuple[Attempt, ...]
    claimed: bool = False
    """This replica claimed the transaction (``decide.claims``) and stores its decision."""
    seen_before: bool = False
    """The online state already held the transaction: decided again, as it first was."""


@dataclass(frozen=True, slots=True)
class LabelOutcome:
    """What became of one label: stored for training, and applied to the online state."""

    stored: bool
    applied: bool
    reason: str | None = None


class DecisionService:
    """Decides transactions and takes labels; owns no I/O set-up (see ``api.wiring``)."""

    def __init__(
        self,
        *,
        features: OnlineFeatures,
        models: Sequence[ServedModel],
        policy: Policy,
        rules: RuleSet,
        static: StaticPolicy,
        log: BufferedDecisionLog,
        metrics: Metrics,
        tracer: Tracer,
        clock: Clock,
        store_breaker: CircuitBreaker,
        limits: Limits = Limits(),
        recent_capacity: int = 100_000,
        on_decision: Callable[[Decision, str | None], None] | None = None,
        shadow: ShadowScorer | None = None,
        claims: DecisionClaims | None = None,
    ) -> None:
        self.features = features
        self.models = tuple(models)
        self._model_roles = frozenset(model.role for model in self.models)
        self.policy = policy
        self.rules = rules
        self._always_actions = {
            rule.name: Action(rule.action) for rule in rules.rules if rule.applies == "always"
        }
        self.static = static
        self.log = log
        self.metrics = metrics
        self.tracer = tracer
        self.clock = clock
        self.store_breaker = store_breaker
        self.limits = limits
        self.recent = RecentDecisions(recent_capacity)
        self.loop_lag = LoopLag(limit_s=limits.max_loop_lag_s)
        self.shedder = LoadShedder(
            "decisions",
            limits.max_in_flight,
            on_shed=self._on_shed,
            pressure=self.loop_lag.overloaded,
        )
        self._chain: FallbackChain[_Answer] = FallbackChain(
            "decision", on_fallback=self._on_fallback
        )
        self._feature_names = tuple(f.name for f in features.definition.features)
        # The online state runs on the event loop. Memory is ~0.1 ms of computation, done
        # at once. Redis is one round trip on a pipelined connection (the read, carrying
        # the deferred writes), awaited under ``store_timeout_s`` while the loop serves
        # other requests; the engine locks the card and terminal from read to write, and
        # the store's breaker takes Redis out of the path after failures. (A thread per
        # call, and redis.asyncio, were measured first: each cost more than the whole
        # decision; see ``features.redis_state``.)
        self._on_decision = on_decision
        # The challenger in shadow: handed the served features after the decision, never
        # waited for (a full queue drops), its scores logged and never acted on.
        self.shadow = shadow
        # Replicas sharing the state in Redis: which of them decides a transaction.
        self.claims = claims
        self._repeat_counters = {
            where: metrics.repeated.labels(answered_from=where)
            for where in ("memory", "replica", "replica_pending", "state")
        }
        # Labelled metric children looked up once: ``labels()`` costs microseconds a call.
        self._decision_counters: dict[tuple[str, str], Any] = {}
        self.stage_latency = {
            stage: metrics.stage_latency.labels(stage=stage)
            for stage in ("validate", "features", "score", "rules", "decide", "log")
        }

    # ---------------------------------------------------------------- transactions

    async def decide(self, tx: Transaction) -> tuple[Decision, bool]:
        """The decision for ``tx`` and whether it is a retry's (first) answer.

        ``ConflictingDuplicateError`` if ``tx`` repeats the id of a transaction decided (or
        being decided) on other content: its decision is not this payment's. ``FieldError``
        if its time is further ahead of the clock than ``Limits.max_future_s``.
        """
        self._check_not_ahead("timestamp", tx.timestamp)
        tx_id = tx.transaction_id
        content = content_of(tx)
        done = self.recent.get(tx_id)
        pending = None if done is not None else self.recent.pending(tx_id)
        if done is not None or pending is not None:
            if (error := conflict(tx_id, self.recent.content(tx_id), content)) is not None:
                raise error
            self._repeat_counters["memory"].inc()
            if done is None:
                assert pending is not None
                done = await asyncio.shield(pending)
            return done, True
        self.recent.claim(tx_id, content)
        try:
            decision, repeated = await self._decide_new(tx, content)
        except ConflictingDuplicateError as exc:
            self.recent.abandon(tx_id, exc)
            raise
        except Exception as exc:
            # The last line of "never a 5xx": a bug in this path must not drop a payment.
            decision, repeated = self._decide_after_error(tx, exc), False
        except BaseException as exc:
            self.recent.abandon(tx_id, exc)
            raise
        # A stand-in for a decision another replica is still making is not the answer.
        final = decision.degraded_reason != PENDING_ELSEWHERE
        self.recent.finish(tx_id, decision, remember=final)
        return decision, repeated

    def _check_not_ahead(self, field: str, moment: datetime) -> None:
        """``FieldError`` if ``moment`` is further ahead of the clock than allowed."""
        ahead_s = (moment - self.clock.now()).total_seconds()
        if ahead_s > self.limits.max_future_s:
            raise FieldError(
                field,
                f"is {ahead_s:,.0f} s ahead of the service's clock; at most"
                f" {self.limits.max_future_s:g} s is allowed (service.max_future_s)",
            )

    def _decide_after_error(self, tx: Transaction, error: Exception) -> Decision:
        """The static policy's decision, logged and counted, when the path itself failed."""
        _log.exception("decision_path_failed", transaction_id=tx.transaction_id)
        decision = self._static_decision(tx, f"service:{reason_of(error)}", latency_ms=0.0)
        self._on_fallback("decision", Attempt("service", reason_of(error)))
        self._record(tx, decision, None, 0.0)
        return decision

    async def _decide_new(self, tx: Transaction, content: Content) -> tuple[Decision, bool]:
        """The decision for ``tx`` and whether it repeats a transaction decided before."""
        started = time.perf_counter()
        deadline = Deadline(self.limits.deadline_s)
        with self.shedder.slot() as admitted:
            self.metrics.in_flight.set(self.shedder.in_flight)
            if admitted:
                decided = await self._decide_admitted(tx, content, deadline)
            else:
                shed = await self._decide_shed(tx)
                decided = _Decided(shed, None, (Attempt("admission", "shed"),))
        self.metrics.in_flight.set(self.shedder.in_flight)
        if isinstance(decided, Decision):  # decided by another replica
            return decided, True
        answer, features, failures = decided.answer, decided.features, decided.failures
        latency_s = time.perf_counter() - started
        decision = Decision(
            transaction_id=tx.transaction_id,
            action=answer.action,
            score=answer.score,
            reasons=answer.reasons,
            model_version=answer.model_version,
            latency_ms=latency_s * 1000.0,
            degraded=bool(failures),
            degraded_reason=(
                ",".join(f"{a.step}:{a.reason}" for a in failures) if failures else None
            ),
            rule_hits=answer.rule_hits,
            source=answer.source,
        )
        self._record(tx, decision, features, latency_s)
        if decided.claimed and self.claims is not None:
            self.claims.settle(decision, content)
        if decided.seen_before:
            self._repeat_counters["state"].inc()
        return decision, decided.seen_before

    async def _decide_admitted(
        self, tx: Transaction, content: Content, deadline: Deadline
    ) -> _Decided | Decision:
        """What the fallback chain decided, or the decision another replica made."""
        failures: list[Attempt] = []
        row: np.ndarray | None = None
        claim: Claim | None = None
        with self.stage("features"):
            try:
                served, claim = await self.store_breaker.call(lambda: self._features_of(tx))
                row = served.values
            except Exception as exc:
                attempt = Attempt("features", reason_of(exc))
                failures.append(attempt)
                self._on_fallback("decision", attempt)
        if claim is not None and not claim.ours:
            return await self._decided_elsewhere(tx, content, claim, deadline)
        if row is not None and served.conflict:  # the state knows the id as another payment
            if claim is not None and self.claims is not None:
                self.claims.release(tx.transaction_id)
            raise ConflictingDuplicateError(tx.transaction_id, list(served.conflict))
        feature_map = None
        rule_inputs = None
        if row is not None:
            feature_map = dict(zip(self._feature_names, row.tolist(), strict=True))
            # The rules see the state's signals too; the log and the models only the features.
            rule_inputs = feature_map | served.signals

        if "champion" not in self._model_roles:
            failures.append(Attempt("champion", "not_loaded"))
        steps: list[tuple[str, Callable[[], Awaitable[_Answer]]]] = []
        if row is not None:
            for model in self.models:
                steps.append((model.role, self._model_step(model, row, deadline)))
        steps.append(("rules", self._rules_step(tx, rule_inputs)))
        steps.append(("static", self._static_step(tx)))
        with self.stage("decide"):
            result = await self._chain.run(steps)
        failures.extend(result.failures)
        answer = result.value
        if result.step in self._model_roles:
            answer = self._with_always_rules(tx, rule_inputs, answer)
        return _Decided(
            answer,
            feature_map,
            tuple(failures),
            claimed=claim is not None,
            seen_before=row is not None and served.seen_before,
        )

    async def _decided_elsewhere(
        self, tx: Transaction, content: Content, claim: Claim, deadline: Deadline
    ) -> Decision:
        """The decision of the replica that claimed ``tx`` (waited for until ``deadline``),
        else the static policy's, flagged: that replica's decision is the one logged.
        ``ConflictingDuplicateError`` if that replica decided other content."""
        assert self.claims is not None  # a claim comes from them
        stored = claim.stored or await self.claims.wait(tx.transaction_id, deadline)
        if stored is not None:
            if (error := conflict(tx.transaction_id, stored.content, content)) is not None:
                raise error
            self._repeat_counters["replica"].inc()
            return stored.decision
        self._repeat_counters["replica_pending"].inc()
        return self._static_decision(tx, PENDING_ELSEWHERE, deadline.elapsed() * 1000.0)

    def _static_decision(
        self, tx: Transaction, degraded_reason: str, latency_ms: float
    ) -> Decision:
        """The static policy's answer for ``tx``, flagged degraded for ``degraded_reason``."""
        action, score = self.static.decide(tx)
        return Decision(
            transaction_id=tx.transaction_id,
            action=action,
            score=score,
            reasons=(),
            model_version="static",
            latency_ms=latency_ms,
            degraded=True,
            degraded_reason=degraded_reason,
            source="static",
        )

    async def _decide_shed(self, tx: Transaction) -> _Answer:
        result = await self._chain.run(
            [("rules", self._rules_step(tx, None)), ("static", self._static_step(tx))]
        )
        return result.value

    def _model_step(
        self, model: ServedModel, row: np.ndarray, deadline: Deadline
    ) -> Callable[[], Awaitable[_Answer]]:
        async def step() -> _Answer:
            with self.stage("score"):
                scored: Scored = await model.score(
                    row,
                    deadline,
                    policy=self.policy,
                    explain=self.limits.explain,
                    top=self.limits.top_reasons,
                    timeout_s=self.limits.model_timeout_s,
                )
            self.metrics.scores.observe(scored.score)
            # Only the champion is "model"; anything else answering is a fallback.
            source = "model" if model.role == "champion" else model.role
            return _Answer(
                scored.action, scored.score, source, scored.model_version, scored.reasons
            )

        return step

    def _rules_step(
        self, tx: Transaction, feature_map: Mapping[str, float] | None
    ) -> Callable[[], Awaitable[_Answer]]:
        async def step() -> _Answer:
            with self.stage("rules"):
                outcome = self.rules.evaluate(tx, feature_map)
            if outcome.action is None and outcome.unevaluated:
                raise _RulesUnsureError(outcome.unevaluated)
            action = outcome.action or Action.APPROVE
            return _Answer(action, outcome.score, "rules", "rules", rule_hits=outcome.hits)

        return step

    def _static_step(self, tx: Transaction) -> Callable[[], Awaitable[_Answer]]:
        async def step() -> _Answer:
            action, score = self.static.decide(tx)
            return _Answer(action, score, "static", "static")

        return step

    def _with_always_rules(
        self, tx: Transaction, feature_map: Mapping[str, float] | None, answer: _Answer
    ) -> _Answer:
        # Every rule's hits are recorded beside the model; only "always" rules may escalate.
        with self.stage("rules"):
            outcome: RuleOutcome = self.rules.evaluate(tx, feature_map)
        if not outcome.hits:
            return answer
        action = answer.action
        for hit in outcome.hits:
            escalation = self._always_actions.get(hit)
            if escalation is not None and _SEVERITY[escalation] > _SEVERITY[action]:
                action = escalation
        return replace(answer, action=action, rule_hits=outcome.hits)

    def _record(
        self,
        tx: Transaction,
        decision: Decision,
        features: Mapping[str, float] | None,
        latency_s: float,
    ) -> None:
        trace_id = current_trace_id()
        with self.stage("log"):
            # The record keeps its own copy, with NaN (unknown) stored as None.
            self.log.append(
                DecisionRecord(
                    decision=decision,
                    transaction=tx,
                    features=features,
                    decided_at=self.clock.now(),
                    trace_id=trace_id,
                )
            )
        key = (decision.action, decision.source)
        counter = self._decision_counters.get(key)
        if counter is None:
            counter = self.metrics.decisions.labels(action=key[0], source=key[1])
            self._decision_counters[key] = counter
        counter.inc()
        self.metrics.decision_latency.observe(latency_s)
        if self._on_decision is not None:
            self._on_decision(decision, trace_id)
        if self.shadow is not None and features is not None:
            self.shadow.submit(tx.transaction_id, features)

    # ---------------------------------------------------------------- labels

    async def learn(self, label: Label) -> LabelOutcome:
        """Store ``label`` for training and apply it to the online state (terminal risk and
        card); a label the state does not take is still stored, with the reason why.
        ``FieldError`` if it claims to be known further ahead of the clock than allowed."""
        self._check_not_ahead("known_at", label.known_at)
        self.log.append_label(label)
        self.metrics.labels_received.labels(source=label.source).inc()
        try:
            effect = await self.store_breaker.call(lambda: self.features.observe_label_async(label))
        except Exception as exc:
            return LabelOutcome(stored=True, applied=False, reason=reason_of(exc))
        if effect is not LabelEffect.APPLIED:
            return LabelOutcome(stored=True, applied=False, reason=effect.value)
        return LabelOutcome(stored=True, applied=True)

    async def _features_of(self, tx: Transaction) -> tuple[Served, Claim | None]:
        """The features and signals of ``tx``, which joins the state, and this replica's
        claim on it (None without claims); bounded, so run on the loop (a remote store is
        awaited, not blocked on).

        The claim goes in the round trip that reads the card; a failure of either fails the
        step (and counts once with the breaker).
        """
        if self.claims is None:
            return await self.features.serve_async(tx), None
        claiming = self.claims.claim(tx.transaction_id)
        served = await self.features.serve_async(tx)
        return served, await claiming

    # ---------------------------------------------------------------- lookups

    async def lookup(self, transaction_id: str) -> Decision | None:
        """A past decision: recent ones from memory (this replica's, then those the replicas
        share through claims), older ones from the log."""
        decision = self.recent.get(transaction_id)
        if decision is not None:
            return decision
        if self.claims is not None:
            stored = None
            with contextlib.suppress(FraudopsError):  # Redis down: the log still answers
                stored = await self.claims.decision(transaction_id)
            if stored is not None:
                return stored.decision
        record = await asyncio.to_thread(self.log.get, transaction_id)
        return None if record is None else record.decision

    # ---------------------------------------------------------------- lifecycle

    def warm_up(self, rows: int) -> None:
        """Score and explain ``rows`` synthetic rows on every model, touching no state."""
        for model in self.models:
            self.warm_up_model(model, rows)

    def warm_up_model(self, model: ServedModel, rows: int) -> None:
        """Score and explain ``rows`` synthetic rows on ``model``'s own threads (before it
        serves, so its first decisions are fast); a model that fails raises."""
        if rows <= 0:
            return
        generator = np.random.default_rng(0)
        sample = np.abs(generator.normal(1.0, 1.0, size=(rows, len(self._feature_names))))
        model.warm_up(sample, policy=self.policy, explain=self.limits.explain)

    def version_of(self, role: str) -> str | None:
        """The version of the model in ``role`` (``champion``, ``last_good``, or
        ``challenger``: the one scored in shadow); None when the role is empty."""
        if role == "challenger":
            return None if self.shadow is None else self.shadow.version
        return next((m.version for m in self.models if m.role == role), None)

    def replace_model(self, model: ServedModel) -> ServedModel | None:
        """Serve ``model`` in its role from the next decision on; the model it replaces.

        Call on the event loop: decisions already past their model step keep the model they
        started with, so the caller closes the replaced one only once they are done (after
        the deadline). A champion added where there was none goes first in the chain.
        """
        replaced = next((m for m in self.models if m.role == model.role), None)
        if replaced is not None:
            self.models = tuple(model if m.role == model.role else m for m in self.models)
        elif model.role == "champion":
            self.models = (model, *self.models)
        else:
            self.models = (*self.models, model)
        self._model_roles = frozenset(m.role for m in self.models)
        return replaced

    def close(self) -> None:
        """Stop the models' threads; the caller closes the log and stores."""
        for model in self.models:
            model.close()

    # ---------------------------------------------------------------- observability

    def stage(self, stage: str) -> AbstractContextManager[Any]:
        """A span and a latency observation around one stage of a decision."""
        return _StageTimer(self, stage)

    def _on_fallback(self, chain: str, attempt: Attempt) -> None:
        self.metrics.fallbacks.labels(step=attempt.step, reason=attempt.reason).inc()

    def _on_shed(self, name: str) -> None:
        self.metrics.shed.inc()


class _RulesUnsureError(FraudopsError):
    """No rule hit, but some could not be judged for lack of features."""

    reason = "rules_unsure"

    def __init__(self, unevaluated: Sequence[str]) -> None:
        super().__init__(f"rules without their features: {', '.join(unevaluated)}")


class _StageTimer:
    """A span and a latency observation for one stage of a decision."""

    __slots__ = ("_service", "_span", "_stage", "_started")

    def __init__(self, service: DecisionService, stage: str) -> None:
        self._service = service
        self._stage = stage

    def __enter__(self) -> None:
        # A stage is a span only inside a recorded (sampled, exported) trace. Unrecorded,
        # it would add nothing (the trace id the logs carry is the enclosing span's) and
        # cost the event loop ~10 µs: six a decision were a fifth of its instructions.
        if get_current_span().is_recording():
            self._span: AbstractContextManager[Any] | None = (
                self._service.tracer.start_as_current_span(self._stage)
            )
            self._span.__enter__()
        else:
            self._span = None
        self._started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        elapsed = time.perf_counter() - self._started
        self._service.stage_latency[self._stage].observe(elapsed)
        if self._span is not None:
            self._span.__exit__(*exc)  # type: ignore[arg-type]
