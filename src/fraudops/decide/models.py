"""A model as the decision service runs it: scorer, own thread, breaker and score guard.

A model whose cost is bounded by construction (a tree ensemble scored natively: a fixed
number of trees of fixed depth, about 15 µs) runs on the event loop itself: handing it to a
thread and back costs ten times the score in CPU and, on a busy loop, milliseconds of
waiting. Its latency is still checked after each call, so a model that has grown slow counts
as timing out and opens its breaker. Any other model (one that may block: a remote model
server, a library that can hang) is isolated: it gets its own thread pool (a bulkhead), so a
champion that hangs ties up its own threads, never the last known good model's, and its
timeout is enforced while it runs. The model's thread both scores and, when the action needs
reasons, explains, so an isolated decision costs one hop off the event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fraudops.decide.guard import ScoreGuard
from fraudops.decide.policy import Policy
from fraudops.decide.scorer import Scorer
from fraudops.errors import InvalidScoreError, ModelError, StageTimeoutError
from fraudops.resilience import CircuitBreaker, Deadline
from fraudops.types import Action, Reason

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Scored:
    """A model's answer: the probability, the action it implies, and its reasons."""

    score: float
    action: Action
    reasons: tuple[Reason, ...]
    model_version: str


class ServedModel:
    """One model in the fallback chain (``champion`` or ``last_good``)."""

    def __init__(
        self,
        role: str,
        scorer: Scorer,
        feature_names: Sequence[str],
        *,
        breaker: CircuitBreaker,
        guard: ScoreGuard,
        threads: int = 2,
        inline: bool = False,
    ) -> None:
        missing = sorted(set(scorer.feature_names) - set(feature_names))
        if missing:
            raise ModelError(
                f"{role} model {scorer.version} needs features the definition lacks: {missing}"
            )
        self.role = role
        self.scorer = scorer
        self.breaker = breaker
        self.guard = guard
        # The definition's row, reordered into the model's own feature order.
        position = {name: i for i, name in enumerate(feature_names)}
        self._index = np.array([position[name] for name in scorer.feature_names], dtype=np.intp)
        self._identity = bool(np.array_equal(self._index, np.arange(len(feature_names))))
        self.inline = inline
        self._threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix=f"fraudops-{role}")

    @property
    def version(self) -> str:
        """The served model's version."""
        return self.scorer.version

    def _row(self, row: FloatArray) -> FloatArray:
        return row if self._identity else row[self._index]

    def _score_and_explain(
        self, row: FloatArray, policy: Policy, explain: frozenset[Action], top: int
    ) -> tuple[float, Action, tuple[Reason, ...]]:
        model_row = self._row(row)
        score = self.scorer.score(model_row)
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise InvalidScoreError(f"{self.role} model {self.version} scored {score!r}")
        action = policy.decide(score)
        reasons = self.scorer.explain(model_row, top=top) if action in explain else ()
        return score, action, reasons

    async def score(
        self,
        row: FloatArray,
        deadline: Deadline,
        *,
        policy: Policy,
        explain: frozenset[Action],
        top: int,
        timeout_s: float,
    ) -> Scored:
        """Score ``row`` under this model's breaker, timeout and guard."""

        async def guarded() -> Scored:
            if self.inline:
                score, action, reasons = self._score_inline(
                    row, deadline, policy, explain, top, timeout_s
                )
            else:
                score, action, reasons = await deadline.run_in_thread(
                    self._executor,
                    self._score_and_explain,
                    row,
                    policy,
                    explain,
                    top,
                    stage="score",
                    timeout_s=timeout_s,
                )
            # A bad score raises inside the breaker's call, so it counts as a failure.
            checked = self.guard.check(self.version, score)
            return Scored(checked, action, reasons, self.version)

        return await self.breaker.call(guarded)

    def _score_inline(
        self,
        row: FloatArray,
        deadline: Deadline,
        policy: Policy,
        explain: frozenset[Action],
        top: int,
        timeout_s: float,
    ) -> tuple[float, Action, tuple[Reason, ...]]:
        limit = deadline.limit(timeout_s)
        started = time.perf_counter()
        answer = self._score_and_explain(row, policy, explain, top)
        if time.perf_counter() - started > limit:
            # Bounded, not preempted: an answer that came too late counts as a timeout, so
            # a model that has grown slow opens its breaker like a hung one.
            raise StageTimeoutError("score", limit)
        return answer

    def warm_up(self, rows: FloatArray, *, policy: Policy, explain: frozenset[Action]) -> None:
        """Score and explain ``rows`` once on this model's threads, so first requests are fast."""

        def run() -> None:
            for row in rows:
                model_row = self._row(row)
                self.scorer.score(model_row)
                self.scorer.explain(model_row)

        # Each thread of the pool initialises its own native state on first use.
        futures = [self._executor.submit(run) for _ in range(self._threads)]
        for future in futures:
            future.result()

    def close(self) -> None:
        """Stop the model's threads (a hung call is abandoned, not waited for)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
