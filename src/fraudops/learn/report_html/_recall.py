"""Which frauds the chosen review threshold catches, by the scenario that made them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudops.learn.report_html._data import FoldScores, scenario_names
from fraudops.simulate import SCENARIO_NAMES


class ScenarioRecall(TypedDict):
    """A scenario's frauds, how many of them the threshold catches, and that share."""

    frauds: int
    caught: int
    recall: float


def scenario_order(names: Iterable[str]) -> list[str]:
    """The simulator's order (large_amount first), then any other names alphabetically."""
    known = list(SCENARIO_NAMES.values())
    present = set(names)
    return [n for n in known if n in present] + sorted(present.difference(known))


def per_scenario_recall(
    labels: npt.ArrayLike,
    scores: npt.ArrayLike,
    scenarios: npt.ArrayLike,
    threshold: float,
) -> dict[str, ScenarioRecall]:
    """Per fraud scenario: its frauds, those scored at or above ``threshold``, and the recall.

    Only fraudulent transactions (label 1) count; scenarios are names or the simulator's
    codes. A scenario with no frauds in the data does not appear.
    """
    y = np.asarray(labels, dtype=np.int8)
    s = np.asarray(scores, dtype=np.float64)
    names = scenario_names(scenarios)
    if not y.shape == s.shape == names.shape:
        raise ValueError(
            f"labels {y.shape}, scores {s.shape} and scenarios {names.shape} must be aligned"
        )
    fraud = y == 1
    caught = fraud & (s >= threshold)
    result: dict[str, ScenarioRecall] = {}
    for name in scenario_order(names[fraud].tolist()):
        of_scenario = names == name
        frauds = int((fraud & of_scenario).sum())
        hits = int((caught & of_scenario).sum())
        result[name] = {"frauds": frauds, "caught": hits, "recall": hits / frauds}
    return result


@dataclass(frozen=True, slots=True)
class ScenarioCatch:
    """One scenario's catch rate over the pooled test folds, by transaction, amount and card."""

    scenario: str
    frauds: int
    caught: int
    recall: float
    amount_recall: float | None = None
    cards: int | None = None
    cards_caught: int | None = None

    @property
    def card_recall(self) -> float | None:
        """Share of the scenario's cards with at least one fraud caught (cards per fold)."""
        if self.cards is None or self.cards_caught is None:
            return None
        return self.cards_caught / self.cards


@dataclass(frozen=True, slots=True)
class GenuineFlagged:
    """How many genuine test transactions the threshold sends to review or decline."""

    flagged: int
    total: int


def scenario_catches(
    folds: Sequence[FoldScores], threshold: float
) -> tuple[list[ScenarioCatch], GenuineFlagged]:
    """Catch rates by scenario over every fold's test set, and the genuine ones flagged.

    Needs every fold's scenarios; the amount and card views appear only when every fold has
    amounts, respectively customer ids.
    """
    parts = []
    for fold in folds:
        if fold.scenarios is None:
            raise ValueError(f"fold {fold.fold} has no scenario column")
        parts.append(
            pd.DataFrame(
                {
                    "fold": fold.fold,
                    "label": fold.labels,
                    "flagged": fold.scores >= threshold,
                    "scenario": fold.scenarios,
                    "amount": np.nan if fold.amounts is None else fold.amounts,
                    "card": None if fold.customer_ids is None else fold.customer_ids,
                }
            )
        )
    rows = pd.concat(parts, ignore_index=True)
    with_amounts = all(fold.amounts is not None for fold in folds)
    with_cards = all(fold.customer_ids is not None for fold in folds)
    genuine = rows[rows["label"] == 0]
    frauds = rows[rows["label"] == 1]
    catches = []
    for name in scenario_order(frauds["scenario"].tolist()):
        of = frauds[frauds["scenario"] == name]
        caught = int(of["flagged"].sum())
        amount_recall = None
        if with_amounts:
            total = float(of["amount"].sum())
            amount_recall = float(of.loc[of["flagged"], "amount"].sum()) / total if total else 0.0
        cards = cards_caught = None
        if with_cards:
            by_card = of.groupby(["fold", "card"], sort=False)["flagged"].any()
            cards, cards_caught = len(by_card), int(by_card.sum())
        catches.append(
            ScenarioCatch(
                scenario=name,
                frauds=len(of),
                caught=caught,
                recall=caught / len(of),
                amount_recall=amount_recall,
                cards=cards,
                cards_caught=cards_caught,
            )
        )
    flagged = GenuineFlagged(flagged=int(genuine["flagged"].sum()), total=len(genuine))
    return catches, flagged


__all__ = [
    "GenuineFlagged",
    "ScenarioCatch",
    "ScenarioRecall",
    "per_scenario_recall",
    "scenario_catches",
    "scenario_order",
]
