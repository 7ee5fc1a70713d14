"""The scorer seam: a feature vector in, a fraud probability (and its reasons) out.

``LightGBMScorer`` serves a model directory written by ``fraudops train``. Scoring one row
is the hot path. Measured on a 100-tree, 22-feature model, one row through
``Booster.predict`` costs about 75-90 µs (input checks and conversion in Python; several ms if
left to spawn OpenMP threads on a busy machine), even with a preallocated 2-D row; LightGBM's
single-row "fast" C entry point, set up once per model, answers it in about 10 µs, and its
SHAP contributions for ``explain`` cost several times the score (hundreds of µs), which is
why the decision engine explains only review and decline decisions. The scorer uses the
fast entry point and falls back to ``Booster.predict`` (one thread, reused buffer) where the
LightGBM build does not expose it. Every score is checked: a non-finite or out-of-range
value is a ModelError, never a decision.
"""

from __future__ import annotations

import ctypes
import math
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import lightgbm as lgb
import numpy as np
import numpy.typing as npt

from fraudops.errors import InvalidScoreError, ModelError
from fraudops.learn.artifact import load_model_dir
from fraudops.types import Reason

FloatArray = npt.NDArray[np.float64]


class Scorer(Protocol):
    """Turns a model-ordered feature vector into a fraud probability in [0, 1]."""

    version: str
    feature_names: tuple[str, ...]

    def score(self, features: FloatArray) -> float:
        """The fraud probability of one transaction (NaN features mean unknown)."""
        ...

    def score_batch(self, features: FloatArray) -> FloatArray:
        """Fraud probabilities of many transactions, one row each."""
        ...

    def explain(self, features: FloatArray, top: int = 3) -> tuple[Reason, ...]:
        """The features that pushed this transaction's score up most, largest first."""
        ...


def _checked(value: float, version: str) -> float:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise InvalidScoreError(f"model {version} returned an invalid score {value!r}")
    return value


_PREDICT_NORMAL = 0
_PREDICT_CONTRIB = 3


class _BoosterRow:
    """Single-row prediction through the public ``Booster.predict`` on a reused buffer."""

    def __init__(self, booster: lgb.Booster, n_features: int, predict_type: int) -> None:
        self._booster = booster
        self._row = np.empty((1, n_features), dtype=np.float64)
        self._contrib = predict_type == _PREDICT_CONTRIB

    def __call__(self, features: FloatArray) -> FloatArray:
        self._row[0] = features
        out = self._booster.predict(self._row, num_threads=1, pred_contrib=self._contrib)
        return np.asarray(out, dtype=np.float64).reshape(-1)


class _FastRow:
    """Single-row prediction through LightGBM's ``PredictForMatSingleRowFast`` C API."""

    _FLOAT64 = 1

    def __init__(self, booster: lgb.Booster, n_features: int, predict_type: int) -> None:
        # LightGBM's Python package does not wrap the single-row fast API, so it is called
        # through the package's own handle on the shared library.
        from lightgbm.basic import _LIB, _safe_call  # type: ignore[attr-defined]

        self._booster = booster  # keeps the model alive as long as the config using it
        self._lib = _LIB
        self._config = ctypes.c_void_p()
        _safe_call(
            _LIB.LGBM_BoosterPredictForMatSingleRowFastInit(
                booster._handle,
                ctypes.c_int(predict_type),
                ctypes.c_int(0),
                ctypes.c_int(-1),
                ctypes.c_int(self._FLOAT64),
                ctypes.c_int32(n_features),
                ctypes.c_char_p(b"num_threads=1"),
                ctypes.byref(self._config),
            )
        )
        self._row = np.zeros(n_features, dtype=np.float64)
        # A contribution row holds one value per feature plus the bias.
        self._out = np.zeros(n_features + 1 if predict_type == _PREDICT_CONTRIB else 1)
        self._out_len = ctypes.c_int64()
        self._row_ptr = self._row.ctypes.data_as(ctypes.c_void_p)
        self._out_ptr = self._out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
        self._out_len_ptr = ctypes.byref(self._out_len)
        self._predict = _LIB.LGBM_BoosterPredictForMatSingleRowFast

    def __call__(self, features: FloatArray) -> FloatArray:
        self._row[:] = features
        if self._predict(self._config, self._row_ptr, self._out_len_ptr, self._out_ptr) != 0:
            raise ModelError(f"LightGBM failed to score: {self._lib.LGBM_GetLastError().decode()}")
        return self._out.copy()

    def __del__(self) -> None:
        config = getattr(self, "_config", None)
        if config is not None and config.value:
            self._lib.LGBM_FastConfigFree(config)


def _single_row(
    booster: lgb.Booster, n_features: int, predict_type: int, fast: bool
) -> Callable[[FloatArray], FloatArray]:
    if fast:
        try:
            return _FastRow(booster, n_features, predict_type)
        except (ImportError, AttributeError, lgb.basic.LightGBMError):
            pass
    return _BoosterRow(booster, n_features, predict_type)


class LightGBMScorer:
    """A LightGBM binary model as a Scorer; thread-safe."""

    latency_bounded = True
    """Scoring walks a fixed set of trees in native code: it cannot block or wait, so the
    decision service may run it on its event loop (see ``decide.models``)."""

    def __init__(
        self,
        booster: lgb.Booster,
        version: str,
        feature_names: tuple[str, ...] | list[str] | None = None,
        *,
        fast: bool = True,
    ) -> None:
        self.version = version
        self.feature_names = tuple(feature_names or booster.feature_name())
        if list(self.feature_names) != list(booster.feature_name()):
            raise ModelError(
                f"model {version} features {booster.feature_name()} differ from"
                f" {list(self.feature_names)}"
            )
        self._booster = booster
        self._n = len(self.feature_names)
        self._one = _single_row(booster, self._n, _PREDICT_NORMAL, fast)
        self._contrib = _single_row(booster, self._n, _PREDICT_CONTRIB, fast)
        # The single-row path reuses one input buffer, so concurrent callers take turns.
        self._lock = threading.Lock()

    @classmethod
    def from_model_dir(cls, path: Path, *, definition_hash: str | None = None) -> LightGBMScorer:
        """Load a format-1 model directory (one booster); ``load_scorer`` reads either format."""
        artifact = load_model_dir(path, definition_hash=definition_hash)
        if artifact.manifest.format != 1 or artifact.booster is None:
            raise ModelError(f"{path}: not a single-booster (format 1) model; use load_scorer")
        return cls(
            artifact.booster, artifact.manifest.model_version, artifact.manifest.feature_names
        )

    def _row(self, features: FloatArray) -> FloatArray:
        row = np.asarray(features, dtype=np.float64)
        if row.shape != (self._n,):
            raise ModelError(
                f"model {self.version} expects {self._n} features, got shape {row.shape}"
            )
        return row

    def score(self, features: FloatArray) -> float:
        """The fraud probability of one transaction (NaN features mean unknown)."""
        row = self._row(features)
        with self._lock:
            value = float(self._one(row)[0])
        return _checked(value, self.version)

    def score_batch(self, features: FloatArray) -> FloatArray:
        """Fraud probabilities of many transactions, one row each."""
        rows = np.asarray(features, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self._n:
            raise ModelError(
                f"model {self.version} expects rows of {self._n} features, got shape {rows.shape}"
            )
        if rows.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        scores = np.asarray(self._booster.predict(rows), dtype=np.float64)
        bad = ~(np.isfinite(scores) & (scores >= 0.0) & (scores <= 1.0))
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ModelError(
                f"model {self.version} returned {int(bad.sum())} invalid scores"
                f" (row {first}: {scores[first]!r})"
            )
        return scores

    def explain(self, features: FloatArray, top: int = 3) -> tuple[Reason, ...]:
        """The features that pushed this transaction's score up most, largest first.

        Contributions are SHAP values in log-odds from LightGBM; features that lowered the
        score are not reasons for suspicion and are left out.
        """
        row = self._row(features)
        with self._lock:
            per_feature = self._contrib(row)[: self._n]
        if not np.isfinite(per_feature).all():
            raise ModelError(f"model {self.version} returned non-finite feature contributions")
        order = np.argsort(-per_feature, kind="stable")[: max(top, 0)]
        return tuple(
            Reason(code=self.feature_names[i], contribution=float(per_feature[i]))
            for i in order
            if per_feature[i] > 0.0
        )
