"""The PyTorch side of the network member; imported only when that member is used.

The module takes raw features (NaN allowed) and returns probabilities: imputation,
standardisation and the missing-value flags live inside it, so exporting ``module`` to
ONNX exports the whole model, and its state_dict holds only the learned weights.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

CLIP = 10.0
"""Standardised inputs are clipped to ±CLIP: a 1,000-σ outlier must not swamp a layer."""


@dataclass(frozen=True, slots=True)
class Shape:
    """Everything but the weights: layer sizes and the input preparation."""

    hidden: tuple[int, ...]
    dropout: float
    medians: tuple[float, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    missing_columns: tuple[int, ...]


class FraudNetwork(nn.Module):
    """Feed-forward network: raw n×f features (float32, NaN allowed) → P(fraud)."""

    medians: torch.Tensor
    means: torch.Tensor
    scales: torch.Tensor
    missing_columns: torch.Tensor

    def __init__(self, shape: Shape) -> None:
        super().__init__()
        self.shape = shape
        # Not persistent: the preparation is saved as JSON beside the weights.
        self.register_buffer("medians", torch.tensor(shape.medians), persistent=False)
        self.register_buffer("means", torch.tensor(shape.means), persistent=False)
        self.register_buffer("scales", torch.tensor(shape.scales), persistent=False)
        self.register_buffer(
            "missing_columns",
            torch.tensor(shape.missing_columns, dtype=torch.long),
            persistent=False,
        )
        layers: list[nn.Module] = []
        width = len(shape.medians) + len(shape.missing_columns)
        for size in shape.hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(shape.dropout)]
            width = size
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def prepare(self, features: torch.Tensor) -> torch.Tensor:
        """Impute, standardise and clip, then append a 0/1 flag per column seen missing."""
        missing = torch.isnan(features)
        filled = torch.where(missing, self.medians, features)
        scaled = torch.clamp((filled - self.means) / self.scales, -CLIP, CLIP)
        if not self.shape.missing_columns:
            return scaled
        flags = missing.index_select(1, self.missing_columns).to(scaled.dtype)
        return torch.cat([scaled, flags], dim=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """P(fraud) for each row."""
        return torch.sigmoid(self.layers(self.prepare(features)).squeeze(1))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one thread inside the block; the caller's setting comes back after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def fit_shape(features: npt.NDArray[np.float64], hidden: Sequence[int], dropout: float) -> Shape:
    """The input preparation learned from the training features."""
    missing = np.isnan(features)
    medians = np.zeros(features.shape[1])
    seen = ~missing.all(axis=0)
    medians[seen] = np.nanmedian(features[:, seen], axis=0)
    filled = np.where(missing, medians, features)
    means = filled.mean(axis=0)
    scales = filled.std(axis=0)
    scales[scales == 0] = 1.0
    return Shape(
        hidden=tuple(int(h) for h in hidden),
        dropout=float(dropout),
        medians=tuple(float(v) for v in medians),
        means=tuple(float(v) for v in means),
        scales=tuple(float(v) for v in scales),
        missing_columns=tuple(int(i) for i in np.flatnonzero(missing.any(axis=0))),
    )


def train(
    features: npt.NDArray[np.float64],
    labels: npt.NDArray[np.int8],
    sample_weight: npt.NDArray[np.float64] | None,
    shape: Shape,
    *,
    learning_rate: float,
    weight_decay: float,
    batch_size: int,
    epochs: int,
    positive_weight: float,
    seed: int,
) -> FraudNetwork:
    """Adam on weighted binary cross-entropy; deterministic for a seed, on one thread."""
    with one_thread(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        network = FraudNetwork(shape)
        with torch.no_grad():
            inputs = network.prepare(torch.from_numpy(features.astype(np.float32)))
        targets = torch.from_numpy(labels.astype(np.float32))
        weights = (
            None if sample_weight is None else torch.from_numpy(sample_weight.astype(np.float32))
        )
        loss_of = nn.BCEWithLogitsLoss(reduction="none", pos_weight=torch.tensor([positive_weight]))
        optimiser = torch.optim.Adam(
            network.parameters(), lr=learning_rate, weight_decay=weight_decay
        )
        order = torch.Generator().manual_seed(seed)
        network.train()
        for _ in range(epochs):
            permutation = torch.randperm(len(inputs), generator=order)
            for start in range(0, len(inputs), batch_size):
                batch = permutation[start : start + batch_size]
                losses = loss_of(network.layers(inputs[batch]).squeeze(1), targets[batch])
                if weights is None:
                    loss = losses.mean()
                else:
                    w = weights[batch]
                    loss = (losses * w).sum() / w.sum().clamp_min(1e-12)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
        network.eval()
    return network


def predict(network: FraudNetwork, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """P(fraud) for each row, on one thread, without tracking gradients."""
    with one_thread(), torch.inference_mode():
        out: torch.Tensor = network(torch.from_numpy(features.astype(np.float32)))
    return np.asarray(out.numpy(), dtype=np.float64)


def weights_bytes(network: FraudNetwork) -> bytes:
    """The network's state_dict as ``torch.save`` writes it."""
    buffer = io.BytesIO()
    torch.save(network.state_dict(), buffer)
    return buffer.getvalue()


def load_network(shape: Shape, weights: bytes) -> FraudNetwork:
    """A network of ``shape`` with the saved weights (tensors only: no code is unpickled)."""
    network = FraudNetwork(shape)
    state = torch.load(io.BytesIO(weights), map_location="cpu", weights_only=True)
    network.load_state_dict(state)
    network.eval()
    return network
