"""Combining the members' scores into one, and choosing how on the validation folds.

Three combiners, each a plain function of one row of member scores (the service scores
one transaction at a time), each JSON-able through ``to_dict`` / ``combiner_from_dict``:

- ``Single``: one member's probability, untouched (the ensemble that was not worth it).
- ``RankAverage``: each member's score becomes its empirical quantile among that member's
  validation scores, and the quantiles are averaged. Members on different scales weigh
  the same; the result ranks transactions but is not a probability (calibrate after).
- ``Stacking``: logistic regression on the members' log-odds, fitted on out-of-fold
  predictions (each fold's members scoring that fold's assessment window).

``choose_combiner`` scores every member alone, the rank average of all, the rank average
of a greedily chosen subset and stacking, by mean fold average precision; each candidate
is judged on folds it was not fitted on (leave one fold out), and an ensemble must beat
the best member alone by ``min_gain`` to be chosen: it costs every member's latency and
upkeep in production. The whole comparison is returned, so an ensemble that does not
help is visible, not just absent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_limits

from fraudops.errors import InputError, ModelError, NotEnoughDataError, validation_problems
from fraudops.learn.metrics import assess, average_precision

FloatMatrix = npt.NDArray[np.float64]
FloatVector = npt.NDArray[np.float64]

MAX_REFERENCE_POINTS = 2000
"""The most reference scores a RankAverage keeps per member."""

LOGIT_CLIP = 1e-6
"""Stacking clips probabilities to [ε, 1 − ε] before taking log-odds."""

MIN_GAIN = 0.002
"""How much mean fold AP an ensemble must add over the best member alone to be chosen."""


class Combiner(Protocol):
    """Turns an n×m matrix of member scores (columns in ``member_names`` order) into n scores."""

    @property
    def member_names(self) -> tuple[str, ...]:
        """The members whose scores ``combine`` reads, in column order."""
        ...

    def combine(self, member_scores: npt.ArrayLike) -> FloatVector:
        """One score per row of ``member_scores``."""
        ...

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description that ``combiner_from_dict`` turns back into this combiner."""
        ...


def _score_matrix(member_scores: npt.ArrayLike, member_names: Sequence[str]) -> FloatMatrix:
    scores = np.asarray(member_scores, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != len(member_names):
        raise InputError(
            f"expected an n×{len(member_names)} matrix of scores from {', '.join(member_names)},"
            f" got shape {scores.shape}"
        )
    if not np.isfinite(scores).all():
        raise InputError("member scores must be finite")
    return scores


def _check_names(member_names: Sequence[str]) -> tuple[str, ...]:
    names = tuple(member_names)
    if not names or len(set(names)) != len(names):
        raise InputError(f"member names must be distinct and at least one, got {list(names)}")
    return names


# ---- Single -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Single:
    """One member's score, passed through."""

    member: str

    @property
    def member_names(self) -> tuple[str, ...]:
        """The one member read."""
        return (self.member,)

    def combine(self, member_scores: npt.ArrayLike) -> FloatVector:
        """The member's column."""
        return _score_matrix(member_scores, self.member_names)[:, 0]

    def to_dict(self) -> dict[str, Any]:
        """``{"kind": "single", "member": name}``."""
        return {"kind": "single", "member": self.member}


# ---- RankAverage --------------------------------------------------------------------------


def _reference(scores: FloatVector, max_points: int) -> tuple[FloatVector, FloatVector]:
    """Sorted distinct scores and their mid-rank quantiles, at most ``max_points`` of them.

    The points kept are spaced evenly in the log of the upper-tail share (1, …, 1/n), so
    the few highest scores, where frauds are, keep as fine a resolution as the bulk.
    """
    ordered = np.sort(scores)
    n = len(ordered)
    values, first = np.unique(ordered, return_index=True)
    last = np.r_[first[1:], n]
    levels = (first + last) / (2.0 * n)  # ties share the middle of their run
    if len(values) <= max_points:
        return values, levels
    tail = np.geomspace(1.0, 1.0 / n, max_points)
    keep = np.unique(np.clip(np.searchsorted(levels, 1.0 - tail), 0, len(values) - 1))
    keep = np.union1d(keep, [0, len(values) - 1])
    return values[keep], levels[keep]


@dataclass(frozen=True, slots=True, eq=False)
class RankAverage:
    """The mean over members of each score's quantile among that member's reference scores.

    ``references[j]`` and ``levels[j]`` are member j's sorted reference scores and their
    quantiles; a score between two points is interpolated, beyond the ends clamped.
    """

    member_names: tuple[str, ...]
    references: tuple[FloatVector, ...] = field(repr=False)
    levels: tuple[FloatVector, ...] = field(repr=False)

    def __post_init__(self) -> None:
        _check_names(self.member_names)
        if not len(self.member_names) == len(self.references) == len(self.levels):
            raise InputError("rank average: one reference per member is needed")
        for name, ref, lev in zip(self.member_names, self.references, self.levels, strict=True):
            if (
                ref.shape != lev.shape
                or len(ref) < 2
                or (np.diff(ref) <= 0).any()
                or (np.diff(lev) < 0).any()
                or not 0.0 <= lev[0] <= lev[-1] <= 1.0
            ):
                raise InputError(
                    f"rank average: {name}'s reference must be at least 2 increasing scores"
                    " with one quantile in [0, 1] each, in order"
                )

    @classmethod
    def fit(
        cls,
        member_names: Sequence[str],
        reference_scores: npt.ArrayLike,
        max_points: int = MAX_REFERENCE_POINTS,
    ) -> RankAverage:
        """Keep each member's reference (validation) scores, subsampled to ``max_points``."""
        names = _check_names(member_names)
        scores = _score_matrix(reference_scores, names)
        if max_points < 2:
            raise InputError(f"rank average: max_points must be at least 2, got {max_points}")
        pairs = [_reference(scores[:, j], max_points) for j in range(len(names))]
        for name, (ref, _) in zip(names, pairs, strict=True):
            if len(ref) < 2:
                raise NotEnoughDataError(
                    f"rank average: {name} gave one score on every reference row"
                )
        return cls(names, tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))

    def quantiles(self, member_scores: npt.ArrayLike) -> FloatMatrix:
        """Each score's quantile among its member's reference scores (n×m)."""
        scores = _score_matrix(member_scores, self.member_names)
        return np.column_stack(
            [
                np.interp(scores[:, j], self.references[j], self.levels[j])
                for j in range(len(self.member_names))
            ]
        )

    def combine(self, member_scores: npt.ArrayLike) -> FloatVector:
        """The mean quantile of each row."""
        quantiles: FloatVector = self.quantiles(member_scores).mean(axis=1)
        return quantiles

    def to_dict(self) -> dict[str, Any]:
        """Kind, members and each member's reference points."""
        return {
            "kind": "rank_average",
            "member_names": list(self.member_names),
            "references": [
                {"scores": ref.tolist(), "levels": lev.tolist()}
                for ref, lev in zip(self.references, self.levels, strict=True)
            ],
        }


# ---- Stacking -----------------------------------------------------------------------------


def _logits(scores: FloatMatrix) -> FloatMatrix:
    clipped = np.clip(scores, LOGIT_CLIP, 1.0 - LOGIT_CLIP)
    logits: FloatMatrix = np.log(clipped) - np.log1p(-clipped)
    return logits


@dataclass(frozen=True, slots=True)
class Stacking:
    """P(fraud) = σ(intercept + Σ coefficient_j · logit(score_j))."""

    member_names: tuple[str, ...]
    coefficients: tuple[float, ...]
    intercept: float

    def __post_init__(self) -> None:
        _check_names(self.member_names)
        if len(self.coefficients) != len(self.member_names):
            raise InputError("stacking: one coefficient per member is needed")

    @classmethod
    def fit(
        cls,
        member_names: Sequence[str],
        member_scores: npt.ArrayLike,
        labels: npt.ArrayLike,
        c: float = 1.0,
    ) -> Stacking:
        """Fit the logistic regression on out-of-fold member scores and their 0/1 labels."""
        names = _check_names(member_names)
        scores = _score_matrix(member_scores, names)
        y = np.asarray(labels)
        if y.shape != (len(scores),):
            raise InputError(
                f"stacking: {len(scores)} rows of scores but labels of shape {y.shape}"
            )
        if len(np.unique(y)) != 2:
            raise NotEnoughDataError("stacking needs both fraudulent and genuine rows")
        with threadpool_limits(limits=1):
            model = LogisticRegression(C=c, max_iter=1000).fit(_logits(scores), y)
        return cls(names, tuple(float(v) for v in model.coef_[0]), float(model.intercept_[0]))

    def combine(self, member_scores: npt.ArrayLike) -> FloatVector:
        """The stacked probability of each row."""
        z = _logits(_score_matrix(member_scores, self.member_names)) @ np.asarray(self.coefficients)
        combined: FloatVector = 1.0 / (1.0 + np.exp(-(z + self.intercept)))
        return combined

    def to_dict(self) -> dict[str, Any]:
        """Kind, members, coefficients and intercept."""
        return {
            "kind": "stacking",
            "member_names": list(self.member_names),
            "coefficients": list(self.coefficients),
            "intercept": self.intercept,
        }


# ---- JSON ---------------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _SingleDict(_Strict):
    kind: Literal["single"]
    member: str = Field(min_length=1)


class _Reference(_Strict):
    scores: list[float]
    levels: list[float]


class _RankAverageDict(_Strict):
    kind: Literal["rank_average"]
    member_names: list[str]
    references: list[_Reference]


class _StackingDict(_Strict):
    kind: Literal["stacking"]
    member_names: list[str]
    coefficients: list[float]
    intercept: float


class _AnyCombiner(_Strict):
    combiner: _SingleDict | _RankAverageDict | _StackingDict = Field(discriminator="kind")


def combiner_from_dict(data: dict[str, Any]) -> Combiner:
    """The combiner a ``to_dict`` described; ModelError if the description is not usable."""
    try:
        parsed = _AnyCombiner.model_validate({"combiner": data}).combiner
        if isinstance(parsed, _SingleDict):
            return Single(parsed.member)
        if isinstance(parsed, _RankAverageDict):
            return RankAverage(
                tuple(parsed.member_names),
                tuple(np.asarray(r.scores, dtype=np.float64) for r in parsed.references),
                tuple(np.asarray(r.levels, dtype=np.float64) for r in parsed.references),
            )
        return Stacking(tuple(parsed.member_names), tuple(parsed.coefficients), parsed.intercept)
    except ValidationError as exc:
        raise ModelError(f"combiner description: {validation_problems(exc)}") from exc
    except InputError as exc:
        raise ModelError(f"combiner description: {exc}") from exc


# ---- choosing -----------------------------------------------------------------------------


class FoldScores(NamedTuple):
    """One validation fold: its members' scores on its assessment window, labels, and rows.

    ``frame`` has the columns ``assess`` needs (``ts``, ``customer_id``, ``is_fraud``),
    row for row with ``member_scores``.
    """

    member_scores: npt.ArrayLike
    labels: npt.ArrayLike
    frame: pd.DataFrame


@dataclass(frozen=True, slots=True)
class Candidate:
    """One way of combining, and how it did on each fold it was judged on."""

    name: str
    member_names: tuple[str, ...]
    fold_average_precision: tuple[float, ...]
    average_precision: float
    average_precision_std: float
    card_precision_at_100: float
    roc_auc: float

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-able values."""
        return {
            "name": self.name,
            "members": list(self.member_names),
            "average_precision": self.average_precision,
            "average_precision_std": self.average_precision_std,
            "card_precision_at_100": self.card_precision_at_100,
            "roc_auc": self.roc_auc,
            "fold_average_precision": list(self.fold_average_precision),
        }


@dataclass(frozen=True, slots=True)
class Choice:
    """The chosen combiner (fitted on every fold) and the comparison it won."""

    name: str
    combiner: Combiner
    table: tuple[Candidate, ...]
    min_gain: float

    def as_dict(self) -> dict[str, Any]:
        """The choice, the combiner and the whole table, JSON-able."""
        return {
            "chosen": self.name,
            "min_gain": self.min_gain,
            "combiner": self.combiner.to_dict(),
            "table": [row.as_dict() for row in self.table],
        }


@dataclass(frozen=True, slots=True)
class _Fold:
    scores: FloatMatrix
    labels: npt.NDArray[np.int8]
    frame: pd.DataFrame


def _check_folds(oof: Sequence[FoldScores], names: tuple[str, ...]) -> list[_Fold]:
    if len(oof) < 2:
        raise NotEnoughDataError(
            "choosing a combiner needs at least 2 folds (each is judged by the others),"
            f" got {len(oof)}"
        )
    folds = []
    for k, fold in enumerate(oof):
        scores = _score_matrix(fold.member_scores, names)
        labels = np.asarray(fold.labels)
        if labels.shape != (len(scores),) or len(fold.frame) != len(scores):
            raise InputError(
                f"fold {k}: {len(scores)} rows of scores, labels of shape {labels.shape},"
                f" {len(fold.frame)} frame rows"
            )
        if not np.array_equal(labels, fold.frame["is_fraud"].to_numpy()):
            raise InputError(f"fold {k}: labels differ from the frame's is_fraud")
        if len(np.unique(labels)) != 2:
            raise NotEnoughDataError(f"fold {k} needs both fraudulent and genuine rows")
        folds.append(_Fold(scores, labels.astype(np.int8), fold.frame))
    return folds


def _others(folds: Sequence[_Fold], k: int) -> tuple[FloatMatrix, npt.NDArray[np.int8]]:
    rest = [fold for i, fold in enumerate(folds) if i != k]
    return np.vstack([f.scores for f in rest]), np.concatenate([f.labels for f in rest])


def _candidate(
    name: str, members: tuple[str, ...], folds: Sequence[_Fold], combined: Sequence[FloatVector]
) -> Candidate:
    metrics = [assess(fold.frame, scores) for fold, scores in zip(folds, combined, strict=True)]
    aps = tuple(m.average_precision for m in metrics)
    return Candidate(
        name=name,
        member_names=members,
        fold_average_precision=aps,
        average_precision=float(np.mean(aps)),
        average_precision_std=float(np.std(aps)),
        card_precision_at_100=float(np.mean([m.card_precision_at_100 for m in metrics])),
        roc_auc=float(np.mean([m.roc_auc for m in metrics])),
    )


def _mean_ap(folds: Sequence[_Fold], combined: Sequence[FloatVector]) -> float:
    return float(
        np.mean([average_precision(f.labels, s) for f, s in zip(folds, combined, strict=True)])
    )


def choose_combiner(
    oof: Sequence[FoldScores],
    member_names: Sequence[str],
    *,
    min_gain: float = MIN_GAIN,
    max_points: int = MAX_REFERENCE_POINTS,
) -> Choice:
    """Compare members alone and their combinations on out-of-fold scores; pick one.

    Candidates, by mean fold average precision: each member alone; the rank average of
    all members; the rank average of a subset grown greedily (best member first, then
    whichever addition raises mean AP most, while one does); stacking. A rank average on
    fold k takes its reference scores from the other folds, and stacking on fold k is
    fitted on the other folds, as both will meet new weeks in production. The winner is
    the best candidate, unless it is an ensemble less than ``min_gain`` ahead of the best
    member alone. The chosen combiner is refitted on every fold.
    """
    names = _check_names(member_names)
    folds = _check_folds(oof, names)
    m = len(names)
    # Each member's quantiles on fold k against the other folds' scores, computed once;
    # any subset's rank average on fold k is then the mean of its columns.
    quantiles = []
    for k, fold in enumerate(folds):
        reference, _ = _others(folds, k)
        quantiles.append(RankAverage.fit(names, reference, max_points).quantiles(fold.scores))

    def rank_average(subset: Sequence[int]) -> list[FloatVector]:
        return [q[:, list(subset)].mean(axis=1) for q in quantiles]

    singles = [
        _candidate(f"member:{name}", (name,), folds, [f.scores[:, j] for f in folds])
        for j, name in enumerate(names)
    ]
    table = list(singles)
    best_single = max(range(m), key=lambda j: singles[j].average_precision)

    subset = [best_single]
    subset_ap = singles[best_single].average_precision
    while len(subset) < m:
        trials = {
            j: _mean_ap(folds, rank_average([*subset, j])) for j in range(m) if j not in subset
        }
        j, ap = max(trials.items(), key=lambda item: item[1])
        if ap <= subset_ap:
            break
        subset, subset_ap = [*subset, j], ap

    ensembles: dict[str, tuple[int, ...]] = {}
    if m >= 2:
        ensembles["rank_average:all"] = tuple(range(m))
        if 2 <= len(subset) < m:
            ensembles["rank_average:greedy"] = tuple(subset)
    for name, members in ensembles.items():
        table.append(
            _candidate(name, tuple(names[j] for j in members), folds, rank_average(members))
        )
    if m >= 2:
        stacked = []
        for k, fold in enumerate(folds):
            scores, labels = _others(folds, k)
            stacked.append(Stacking.fit(names, scores, labels).combine(fold.scores))
        table.append(_candidate("stacking", names, folds, stacked))

    best = max(table, key=lambda row: row.average_precision)
    single = singles[best_single]
    if len(best.member_names) > 1 and best.average_precision < single.average_precision + min_gain:
        best = single
    combiner = _refit(best, names, folds, max_points)
    return Choice(name=best.name, combiner=combiner, table=tuple(table), min_gain=min_gain)


def _refit(
    row: Candidate, names: tuple[str, ...], folds: Sequence[_Fold], max_points: int
) -> Combiner:
    """The candidate's combiner, fitted on every fold."""
    if row.name.startswith("member:"):
        return Single(row.member_names[0])
    columns = [names.index(name) for name in row.member_names]
    scores = np.vstack([f.scores for f in folds])[:, columns]
    if row.name == "stacking":
        return Stacking.fit(row.member_names, scores, np.concatenate([f.labels for f in folds]))
    return RankAverage.fit(row.member_names, scores, max_points)
