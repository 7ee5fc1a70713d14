"""A trained model directory as one Scorer: its members, their combination, its calibration.

``fraudops train`` writes a format-2 model directory (``learn.artifact``): one or more
members, the combiner that turns their scores into one, and the calibrator that turns that
into a probability. The service scores each member the fastest way it can: a LightGBM
member natively (LightGBM's single-row entry point, about 10 µs), any other through its
ONNX export on ONNX Runtime, so serving needs neither PyTorch nor the other training
libraries. Reasons come from the LightGBM member's per-feature contributions; a model
without one gives none (its decisions still carry their rule hits).

``load_scorer`` reads either format: a format-1 directory is a single LightGBM model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from fraudops.decide.onnx_scorer import OnnxScorer
from fraudops.decide.scorer import LightGBMScorer, Scorer, _checked
from fraudops.errors import ModelError
from fraudops.learn.artifact import ModelArtifact, load_model_dir
from fraudops.learn.calibrate import Calibrator
from fraudops.learn.ensemble import Combiner, Single, combiner_from_dict
from fraudops.types import Reason

FloatArray = npt.NDArray[np.float64]


class EnsembleScorer:
    """Members scored one by one, combined, then calibrated; thread-safe like its members."""

    def __init__(
        self,
        version: str,
        feature_names: tuple[str, ...],
        members: dict[str, Scorer],
        combiner: Combiner,
        calibrator: Calibrator | None,
        explainer: Scorer | None = None,
    ) -> None:
        missing = [name for name in combiner.member_names if name not in members]
        if missing:
            raise ModelError(f"model {version}: its combiner reads members it lacks: {missing}")
        self.version = version
        self.feature_names = feature_names
        self._members = [members[name] for name in combiner.member_names]
        self._combiner = combiner
        self._calibrator = calibrator
        self._explainer = explainer
        self.latency_bounded = all(
            getattr(member, "latency_bounded", False) for member in self._members
        )

    @classmethod
    def from_artifact(cls, artifact: ModelArtifact) -> EnsembleScorer:
        """The scorer of a loaded format-2 model directory."""
        manifest = artifact.manifest
        if manifest.format != 2 or manifest.combiner is None:
            raise ModelError(f"{artifact.path}: not a format-2 model (members and a combiner)")
        names = tuple(manifest.feature_names)
        members: dict[str, Scorer] = {}
        explainer: Scorer | None = None
        for entry in manifest.members:
            if entry.kind == "lightgbm" and artifact.booster is not None and explainer is None:
                scorer: Scorer = LightGBMScorer(artifact.booster, manifest.model_version, names)
                explainer = scorer
            elif entry.onnx is not None:
                scorer = OnnxScorer.from_file(
                    artifact.file(entry.onnx), names, version=manifest.model_version
                )
            else:
                raise ModelError(
                    f"{artifact.path}: member {entry.name} ({entry.kind}) has no ONNX export;"
                    " the service scores members other than LightGBM through ONNX Runtime"
                )
            members[entry.name] = scorer
        try:
            combiner = combiner_from_dict(manifest.combiner)
            calibrator = (
                None if manifest.calibrator is None else Calibrator.from_dict(manifest.calibrator)
            )
        except (ModelError, ValueError) as exc:
            raise ModelError(f"{artifact.path}: {exc}") from exc
        return cls(manifest.model_version, names, members, combiner, calibrator, explainer)

    def _calibrated(self, combined: FloatArray) -> FloatArray:
        if self._calibrator is None:
            return combined
        return self._calibrator.apply(combined)

    def score(self, features: FloatArray) -> float:
        """The calibrated fraud probability of one transaction."""
        if len(self._members) == 1 and isinstance(self._combiner, Single):
            # One member passed through: plain floats, no 1×1 matrices (≈40 µs a decision).
            value = self._members[0].score(features)
        else:
            row = np.array([[member.score(features) for member in self._members]])
            value = float(self._combiner.combine(row)[0])
        if self._calibrator is not None:
            value = self._calibrator.apply(value)
        return _checked(value, self.version)

    def score_batch(self, features: FloatArray) -> FloatArray:
        """Calibrated fraud probabilities of many transactions, one row each."""
        rows = np.asarray(features, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != len(self.feature_names):
            raise ModelError(
                f"model {self.version} expects rows of {len(self.feature_names)} features,"
                f" got shape {rows.shape}"
            )
        if rows.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        scores = np.column_stack([member.score_batch(rows) for member in self._members])
        out = self._calibrated(self._combiner.combine(scores))
        bad = ~(np.isfinite(out) & (out >= 0.0) & (out <= 1.0))
        if bad.any():
            raise ModelError(f"model {self.version} returned {int(bad.sum())} invalid scores")
        return out

    def explain(self, features: FloatArray, top: int = 3) -> tuple[Reason, ...]:
        """The LightGBM member's strongest positive contributions; none without one."""
        if self._explainer is None:
            return ()
        return self._explainer.explain(features, top)


def load_scorer(path: Path, *, definition_hash: str | None = None) -> Scorer:
    """The Scorer of a model directory of either format (see ``learn.artifact``)."""
    artifact = load_model_dir(path, definition_hash=definition_hash)
    if artifact.manifest.format == 1:
        assert artifact.booster is not None  # format 1 is always a booster
        return LightGBMScorer(
            artifact.booster, artifact.manifest.model_version, artifact.manifest.feature_names
        )
    return EnsembleScorer.from_artifact(artifact)
