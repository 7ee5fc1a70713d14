"""The score guard: refuses model scores that are not usable probabilities.

A model can fail without raising. A broken feature pipeline that feeds it zeros, a
corrupted artifact, or a model trained on one class answers the same number for every
transaction: each answer is a valid probability, so thresholds, dashboards and latency all
look healthy while the model decides nothing, and every fraud it would have caught goes
through. The only symptom is the sameness itself, so the guard watches for it: a run of
``constant_run`` identical scores is treated like a NaN, an InvalidScoreError, and the
fallback chain answers instead until the model says something different.
"""

from __future__ import annotations

import math

from fraudops.errors import ConfigError, InvalidScoreError


class ScoreGuard:
    """Checks each score from one model: finite, in [0, 1], and not stuck on a constant.

    Use one guard per model and ``reset`` it when the model is replaced, so one model's
    run is never charged to the next. An invalid score is refused on its own and neither
    extends nor breaks a run, so occasional NaNs cannot hide a stuck model. O(1) per check;
    not locked, so call it from one thread (the event loop).
    """

    def __init__(self, constant_run: int = 200) -> None:
        if constant_run < 2:
            raise ConfigError(f"constant_run must be at least 2, got {constant_run}")
        self.constant_run = constant_run
        self._last: float | None = None
        self._run = 0

    @property
    def run_length(self) -> int:
        """How many identical valid scores in a row the guard has just seen."""
        return self._run

    def check(self, version: str, score: float) -> float:
        """``score`` if it is usable; InvalidScoreError naming ``version`` if not."""
        if not (math.isfinite(score) and 0.0 <= score <= 1.0):
            raise InvalidScoreError(
                f"model {version} answered {score!r}, not a probability in [0, 1]"
            )
        if score == self._last:
            self._run += 1
        else:
            self._last = score
            self._run = 1
        if self._run >= self.constant_run:
            raise InvalidScoreError(
                f"model {version} answered {score!r} for {self._run} transactions in a row:"
                " stuck on a constant"
            )
        return score

    def reset(self) -> None:
        """Forget the current run (a new model, or a deliberate restart)."""
        self._last = None
        self._run = 0
