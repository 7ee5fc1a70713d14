"""Customer and terminal profiles on the 100×100 grid, and which terminals each customer uses."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.spatial import cKDTree

GRID_SIZE = 100.0

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Customers:
    """One row per customer: home location, spending profile and daily activity."""

    x: FloatArray
    y: FloatArray
    mean_amount: FloatArray
    std_amount: FloatArray
    mean_nb_tx_per_day: FloatArray

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class Terminals:
    """One row per terminal: its location."""

    x: FloatArray
    y: FloatArray

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class Reach:
    """The terminals each customer can use, as a compressed sparse row list.

    Customer ``c`` uses ``terminals[offsets[c]:offsets[c + 1]]``.
    """

    offsets: IntArray
    terminals: IntArray

    @property
    def counts(self) -> IntArray:
        return np.diff(self.offsets)


def draw_customers(n: int, rng: np.random.Generator) -> Customers:
    """Draw ``n`` customer profiles as the handbook does."""
    mean_amount = rng.uniform(5.0, 100.0, n)
    return Customers(
        x=rng.uniform(0.0, GRID_SIZE, n),
        y=rng.uniform(0.0, GRID_SIZE, n),
        mean_amount=mean_amount,
        std_amount=mean_amount / 2.0,
        mean_nb_tx_per_day=rng.uniform(0.0, 4.0, n),
    )


def draw_terminals(n: int, rng: np.random.Generator) -> Terminals:
    """Draw ``n`` terminal locations uniformly on the grid."""
    return Terminals(x=rng.uniform(0.0, GRID_SIZE, n), y=rng.uniform(0.0, GRID_SIZE, n))


def link(customers: Customers, terminals: Terminals, radius: float) -> Reach:
    """Each customer's terminals: those strictly closer than ``radius``, in id order."""
    tree = cKDTree(np.column_stack([terminals.x, terminals.y]))
    homes = np.column_stack([customers.x, customers.y])
    # The ball query is inclusive (≤ r); the exact distance check below makes it strict.
    found = tree.query_ball_point(homes, radius, return_sorted=True)
    counts = np.fromiter((len(ids) for ids in found), dtype=np.int64, count=len(found))
    flat = np.fromiter((t for ids in found for t in ids), dtype=np.int64, count=int(counts.sum()))
    owner = np.repeat(np.arange(len(customers), dtype=np.int64), counts)
    distance = np.hypot(
        terminals.x[flat] - customers.x[owner], terminals.y[flat] - customers.y[owner]
    )
    keep = distance < radius
    kept_counts = np.bincount(owner[keep], minlength=len(customers)).astype(np.int64)
    offsets = np.zeros(len(customers) + 1, dtype=np.int64)
    np.cumsum(kept_counts, out=offsets[1:])
    return Reach(offsets=offsets, terminals=flat[keep])
