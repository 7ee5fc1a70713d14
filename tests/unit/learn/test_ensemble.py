"""Combining member scores, and choosing the combination on out-of-fold scores."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from fraudops.errors import InputError, ModelError, NotEnoughDataError
from fraudops.learn.ensemble import (
    MAX_REFERENCE_POINTS,
    Combiner,
    FoldScores,
    RankAverage,
    Single,
    Stacking,
    choose_combiner,
    combiner_from_dict,
)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-x)))


def fold(seed: int, members: str, n: int = 4000) -> FoldScores:
    """One synthetic fold over 7 days with about 4 % fraud.

    ``members`` picks the scores: ``"one_good"`` — member ``good`` sees the label through
    noise, ``noise_a`` and ``noise_b`` are pure noise; ``"halves"`` — fraud has two causes
    and members ``a`` and ``b`` each see only one.
    """
    rng = np.random.default_rng(seed)
    start = pd.Timestamp(datetime(2018, 7, 1, tzinfo=UTC))
    frame = pd.DataFrame(
        {
            "ts": start + pd.to_timedelta(np.sort(rng.integers(0, 7 * 86_400, n)), unit="s"),
            "customer_id": [f"c{i}" for i in rng.integers(0, 1500, n)],
        }
    )
    if members == "one_good":
        labels = (rng.random(n) < 0.04).astype(np.int8)
        scores = np.column_stack(
            [
                _sigmoid(2.5 * labels + rng.normal(size=n) - 3),
                _sigmoid(rng.normal(size=n) - 3),
                _sigmoid(rng.normal(size=n) - 3),
            ]
        )
    else:
        a, b = rng.random(n) < 0.02, rng.random(n) < 0.02
        labels = (a | b).astype(np.int8)
        scores = np.column_stack(
            [
                _sigmoid(3.0 * a + rng.normal(size=n) - 3),
                _sigmoid(3.0 * b + rng.normal(size=n) - 3),
            ]
        )
    frame["is_fraud"] = labels
    return FoldScores(scores, labels, frame)


ONE_GOOD = ("good", "noise_a", "noise_b")
HALVES = ("a", "b")


def test_rank_average_maps_a_score_to_its_reference_quantile() -> None:
    """Against references 1…4, 2 is at 0.375 (mid-rank), 2.5 halfway, and beyond ends clamp."""
    combiner = RankAverage.fit(["m"], np.array([[4.0], [2.0], [3.0], [1.0]]))
    actual = combiner.combine(np.array([[2.0], [2.5], [0.0], [9.0]]))
    assert [0.375, 0.5, 0.125, 0.875] == actual.tolist()


def test_tied_reference_scores_share_the_middle_of_their_run() -> None:
    """A score tied with half the references sits at the middle of that half."""
    combiner = RankAverage.fit(["m"], np.array([[0.1]] * 5 + [[0.2]] * 5))
    assert [0.25, 0.75] == combiner.combine(np.array([[0.1], [0.2]])).tolist()


def test_rank_average_keeps_at_most_its_budget_of_points_and_the_top_tail() -> None:
    """From 200,000 references it keeps ≤ 2,000 points and ranks the top 0.1 % within 0.0001."""
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(200_000, 1))
    combiner = RankAverage.fit(["m"], reference)
    tail = np.quantile(reference[:, 0], [0.999, 0.9995, 0.9999])
    assert len(combiner.references[0]) <= MAX_REFERENCE_POINTS
    np.testing.assert_allclose(
        [0.999, 0.9995, 0.9999], combiner.combine(tail[:, None]), rtol=0, atol=1e-4
    )


def test_rank_average_of_one_row_equals_the_batch() -> None:
    """Scoring rows one at a time gives exactly the batch's rank averages."""
    data = fold(0, "one_good")
    combiner = RankAverage.fit(ONE_GOOD, data.member_scores)
    rows = np.asarray(data.member_scores)[:50]
    one_by_one = [combiner.combine(rows[i : i + 1])[0] for i in range(len(rows))]
    assert combiner.combine(rows).tolist() == one_by_one


def test_stacking_of_one_row_equals_the_batch() -> None:
    """Scoring rows one at a time gives the batch's stacked probabilities."""
    data = fold(0, "halves")
    combiner = Stacking.fit(HALVES, data.member_scores, data.labels)
    rows = np.asarray(data.member_scores)[:50]
    one_by_one = [combiner.combine(rows[i : i + 1])[0] for i in range(len(rows))]
    np.testing.assert_allclose(one_by_one, combiner.combine(rows), rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", ["single", "rank_average", "stacking"])
def test_combiner_round_trips_through_json(kind: str) -> None:
    """to_dict → JSON text → combiner_from_dict combines exactly as the original."""
    data = fold(1, "halves")
    scores = np.asarray(data.member_scores)
    combiners: dict[str, Combiner] = {
        "single": Single("a"),
        "rank_average": RankAverage.fit(HALVES, scores),
        "stacking": Stacking.fit(HALVES, scores, data.labels),
    }
    original = combiners[kind]
    restored = combiner_from_dict(json.loads(json.dumps(original.to_dict())))
    columns = [HALVES.index(name) for name in original.member_names]
    assert (original.member_names, original.combine(scores[:, columns]).tolist()) == (
        restored.member_names,
        restored.combine(scores[:, columns]).tolist(),
    )


def test_stacking_weighs_the_informative_member() -> None:
    """Fitted on a good member and two noise members, stacking leans on the good one."""
    data = fold(2, "one_good")
    combiner = Stacking.fit(ONE_GOOD, data.member_scores, data.labels)
    good, *noise = combiner.coefficients
    assert (True, True) == (good > 0.5, max(abs(c) for c in noise) < 0.2)


def test_a_malformed_description_is_a_model_error() -> None:
    """A description with a wrong kind, a missing field or decreasing references is refused."""
    bad: list[dict[str, Any]] = [
        {"kind": "voting", "member_names": ["a"]},
        {"kind": "stacking", "member_names": ["a"], "coefficients": [1.0]},
        {
            "kind": "rank_average",
            "member_names": ["a"],
            "references": [{"scores": [2.0, 1.0], "levels": [0.25, 0.75]}],
        },
    ]
    errors = 0
    for description in bad:
        with pytest.raises(ModelError, match="combiner description"):
            combiner_from_dict(description)
        errors += 1
    assert 3 == errors


def test_combine_refuses_scores_of_the_wrong_width() -> None:
    """Scores with more columns than members is an InputError naming the members."""
    with pytest.raises(InputError, match="from a, b"):
        Stacking(("a", "b"), (1.0, 1.0), 0.0).combine(np.zeros((1, 3)))


def test_choose_combiner_keeps_a_member_alone_when_the_others_are_noise() -> None:
    """With one informative member and two noise members, the member alone is chosen."""
    choice = choose_combiner([fold(seed, "one_good") for seed in range(3)], ONE_GOOD)
    names = [row.name for row in choice.table]
    assert ("member:good", Single("good")) == (choice.name, choice.combiner)
    assert [
        "member:good",
        "member:noise_a",
        "member:noise_b",
        "rank_average:all",
        "stacking",
    ] == names


def test_choose_combiner_picks_an_ensemble_when_members_complement_each_other() -> None:
    """When each member sees one cause of fraud, an ensemble beats either alone and wins."""
    choice = choose_combiner([fold(seed, "halves") for seed in range(3)], HALVES)
    by_name = {row.name: row for row in choice.table}
    best_alone = max(by_name["member:a"].average_precision, by_name["member:b"].average_precision)
    assert (True, True) == (
        choice.name in {"rank_average:all", "stacking"},
        by_name[choice.name].average_precision > best_alone + 0.05,
    )
    assert HALVES == choice.combiner.member_names


def test_the_table_is_json_able() -> None:
    """Choice.as_dict survives json.dumps and names the chosen combiner."""
    choice = choose_combiner([fold(seed, "halves") for seed in range(2)], HALVES)
    restored = json.loads(json.dumps(choice.as_dict()))
    assert (choice.name, 4) == (restored["chosen"], len(restored["table"]))


def test_choose_combiner_needs_two_folds() -> None:
    """One fold cannot judge a combiner fitted elsewhere: NotEnoughDataError."""
    with pytest.raises(NotEnoughDataError, match="at least 2 folds"):
        choose_combiner([fold(0, "halves")], HALVES)


def test_choose_combiner_refuses_labels_that_disagree_with_the_frame() -> None:
    """Labels that are not the frame's is_fraud are an InputError naming the fold."""
    good = fold(0, "halves")
    shifted = FoldScores(good.member_scores, np.roll(np.asarray(good.labels), 1), good.frame)
    with pytest.raises(InputError, match="fold 1: labels differ"):
        choose_combiner([good, shifted], HALVES)
