"""The network member: a small feed-forward network in PyTorch, on the CPU.

PyTorch is an optional extra (``pip install 'fraudops[torch]'``): nothing here imports it
until a network is built, fitted or loaded, and then its absence is a ModelError that says
how to install it. Saved as the state_dict (``model.pt``, tensors only) and
``network.json`` (layer sizes and the input preparation).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict

from fraudops.errors import InputError, ModelError
from fraudops.learn.members._files import native_file, parse_json, read_member, write_member
from fraudops.learn.members._inputs import (
    FloatVector,
    PositiveWeight,
    feature_matrix,
    positive_weight,
    probabilities,
    training_data,
)

if TYPE_CHECKING:
    from fraudops.learn.members._network import FraudNetwork

KIND = "mlp"
WEIGHTS_FILE = "model.pt"
SHAPE_FILE = "network.json"


def _torch_side() -> ModuleType:
    """``fraudops.learn.members._network``, or ModelError when PyTorch is not installed."""
    try:
        from fraudops.learn.members import _network
    except ImportError as exc:
        raise ModelError(
            "the mlp member needs PyTorch, which is not installed:"
            " pip install 'fraudops[torch]' (or torch==2.13.0)"
        ) from exc
    return _network


class _ShapeFile(BaseModel):
    """``network.json``: layer sizes and the input preparation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hidden: tuple[int, ...]
    dropout: float
    medians: tuple[float, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    missing_columns: tuple[int, ...]


class MLPMember:
    """A fitted network; ``module`` is the native torch.nn.Module (for ONNX export).

    ``module`` takes raw features as float32 (NaN allowed) and returns P(fraud).
    """

    kind = KIND

    def __init__(
        self,
        name: str,
        feature_names: tuple[str, ...],
        module: FraudNetwork,
        params: dict[str, Any],
    ) -> None:
        self.name = name
        self.feature_names = feature_names
        self.module = module
        self.params = params

    def predict(self, features: npt.ArrayLike) -> FloatVector:
        """Probability of fraud for each row of ``features`` (n×f, feature order, NaN allowed)."""
        matrix = feature_matrix(features, self.feature_names, self.name)
        return probabilities(_torch_side().predict(self.module, matrix), len(matrix), self.name)

    def save(self, directory: Path) -> None:
        """Write ``model.pt`` (state_dict), ``network.json`` (shape) and ``member.json``."""
        network = _torch_side()
        shape = json.dumps(asdict(self.module.shape), indent=1).encode()
        write_member(
            directory,
            kind=KIND,
            name=self.name,
            feature_names=self.feature_names,
            params=self.params,
            files={WEIGHTS_FILE: network.weights_bytes(self.module), SHAPE_FILE: shape},
        )

    @classmethod
    def load(cls, directory: Path) -> MLPMember:
        """Read a member written by ``save``."""
        network = _torch_side()
        stored = read_member(directory, KIND)
        saved: _ShapeFile = parse_json(stored, SHAPE_FILE, _ShapeFile)
        names = tuple(stored.manifest.feature_names)
        if len(saved.medians) != len(names):
            raise ModelError(
                f"{directory}: {len(names)} features but a network for {len(saved.medians)}"
            )
        try:
            module = network.load_network(
                network.Shape(**saved.model_dump()), native_file(stored, WEIGHTS_FILE)
            )
        except (RuntimeError, ValueError, OSError) as exc:  # torch's errors for bad weights
            raise ModelError(
                f"{directory / WEIGHTS_FILE}: unusable network weights: {exc}"
            ) from exc
        return cls(stored.manifest.name, names, module, stored.manifest.params)


@dataclass(frozen=True, slots=True)
class MLPLearner:
    """Fits a ReLU network with dropout by Adam; ``positive_weight`` weights the fraud loss.

    Constructing one without PyTorch installed raises ModelError.
    """

    name: str = KIND
    hidden: tuple[int, ...] = (100, 100)
    dropout: float = 0.2
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 256
    epochs: int = 10
    positive_weight: PositiveWeight = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        _torch_side()

    def fit(
        self,
        features: pd.DataFrame,
        labels: npt.ArrayLike,
        *,
        sample_weight: npt.ArrayLike | None = None,
    ) -> MLPMember:
        """Fit on ``features`` (columns in model order) and 0/1 ``labels``; deterministic."""
        if not self.hidden or min(self.hidden) < 1:
            raise InputError(f"learner {self.name}: hidden needs at least one layer of size ≥ 1")
        if self.epochs < 1 or self.batch_size < 1:
            raise InputError(f"learner {self.name}: epochs and batch_size must be at least 1")
        if not 0.0 <= self.dropout < 1.0:
            raise InputError(f"learner {self.name}: dropout must be in [0, 1)")
        network = _torch_side()
        data = training_data(features, labels, sample_weight, self.name)
        weight = positive_weight(self.positive_weight, data.labels, self.name)
        shape = network.fit_shape(data.features, self.hidden, self.dropout)
        module = network.train(
            data.features,
            data.labels,
            data.sample_weight,
            shape,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            epochs=self.epochs,
            positive_weight=weight,
            seed=self.seed,
        )
        params = {**asdict(self), "positive_weight": weight}
        return MLPMember(self.name, data.feature_names, module, params)


__all__ = ["MLPLearner", "MLPMember"]
