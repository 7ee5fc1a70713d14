"""Thresholds from costs and review capacity, and the policy file that carries them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy.special import expit

from fraudops.decide.policy import Policy
from fraudops.errors import InputError, NotEnoughDataError
from fraudops.learn.thresholds import (
    CostModel,
    ThresholdChoice,
    candidate_thresholds,
    choose_thresholds,
    thresholds_for_capacity,
    write_policy_file,
)
from fraudops.types import Action

# Five payments over one day. Costs: a missed fraud its amount, a review 5, a false
# decline 20.
PROBS = [0.9, 0.7, 0.5, 0.3, 0.1]
LABELS = [1, 0, 1, 0, 0]
AMOUNTS = [100.0, 50.0, 40.0, 10.0, 10.0]
COSTS = CostModel(missed_fraud_multiple=1.0, review_cost=5.0, false_decline_cost=20.0)


def test_the_optimum_of_a_hand_computed_example() -> None:
    """Declining 0.9 and reviewing 0.7 and 0.5 catches both frauds for two reviews: 10.

    Others cost more: reviewing all three 15; declining 0.7 too 20 + 5; catching only the
    first fraud 40; approving everything 140.
    """
    choice = choose_thresholds(PROBS, LABELS, AMOUNTS, 1.0, COSTS)
    assert (0.5, 0.9) == (choice.review_threshold, choice.decline_threshold)
    assert 10.0 == choice.expected_cost
    assert (2.0, 1.0, 0.0) == (
        choice.reviews_per_day,
        choice.declines_per_day,
        choice.false_declines_per_day,
    )
    assert (1.0, 1.0) == (choice.recall, choice.amount_recall)
    assert 140.0 == choice.baseline_cost_per_day


def test_without_reviewers_the_policy_declines_instead() -> None:
    """With no review capacity, declining the top three (one false decline, 20) is cheapest.

    The alternatives review nothing too: declining only 0.9 misses the 40 fraud, 40;
    declining down to 0.3 adds a second false decline, 40.
    """
    choice = choose_thresholds(PROBS, LABELS, AMOUNTS, 1.0, COSTS, daily_review_capacity=0)
    assert (0.5, 0.5) == (choice.review_threshold, choice.decline_threshold)
    assert (20.0, 0.0) == (choice.expected_cost, choice.reviews_per_day)


def test_reviews_per_day_count_the_days() -> None:
    """The same payments spread over two days review half as many a day for the same cost."""
    one_day = choose_thresholds(PROBS, LABELS, AMOUNTS, 1.0, COSTS)
    two_days = choose_thresholds(PROBS, LABELS, AMOUNTS, 2.0, COSTS)
    assert (one_day.expected_cost, 1.0) == (two_days.expected_cost, two_days.reviews_per_day)
    assert 5.0 == two_days.expected_cost_per_day


def synthetic(rows: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Calibrated probabilities, outcomes drawn from them, and gamma-distributed amounts."""
    rng = np.random.default_rng(seed)
    probs = expit(rng.normal(-5.0, 2.0, size=rows))
    labels = (rng.random(rows) < probs).astype(np.int8)
    return probs, labels, rng.gamma(2.0, 30.0, size=rows)


def test_the_capacity_binds_and_more_of_it_never_costs_more() -> None:
    """Each choice reviews within its capacity, and a larger team never raises the cost."""
    probs, labels, amounts = synthetic()
    days = 10.0
    free = choose_thresholds(probs, labels, amounts, days, COSTS)
    capacities = [0, 1, 3, 10, 30]
    choices = [choose_thresholds(probs, labels, amounts, days, COSTS, c) for c in capacities]

    assert free.reviews_per_day > capacities[-1]  # so every capacity here is a real limit
    assert all(c.reviews_per_day <= cap for c, cap in zip(choices, capacities, strict=True))
    costs = [c.expected_cost for c in [*choices, free]]
    assert sorted(costs, reverse=True) == costs
    assert costs[0] > costs[-1]


def test_the_choice_is_what_the_policy_does_with_it() -> None:
    """Applying the chosen thresholds through Policy reviews and declines the counted rows."""
    probs, labels, amounts = synthetic(seed=1)
    choice = choose_thresholds(probs, labels, amounts, 10.0, COSTS, daily_review_capacity=20)
    actions = [choice.policy.decide(float(p)) for p in probs]
    assert choice.reviews_per_day * 10 == actions.count(Action.REVIEW)
    assert choice.declines_per_day * 10 == actions.count(Action.DECLINE)


def test_the_cost_curve_holds_the_optimum() -> None:
    """The curve's cheapest point is the choice, and review thresholds fall along it."""
    probs, labels, amounts = synthetic(seed=2)
    choice = choose_thresholds(probs, labels, amounts, 10.0, COSTS, daily_review_capacity=20)
    cheapest = min(choice.curve, key=lambda point: point.expected_cost_per_day)
    assert (choice.review_threshold, choice.decline_threshold) == (
        cheapest.review_threshold,
        cheapest.decline_threshold,
    )
    reviews = [point.review_threshold for point in choice.curve]
    assert sorted(reviews, reverse=True) == reviews
    assert all(point.reviews_per_day <= 20 for point in choice.curve)


def test_candidates_are_the_scores_when_few_and_log_spaced_ranks_when_many() -> None:
    """Few distinct scores are searched exactly; many at about 1 % steps of flagged rows."""
    assert [1.0, 0.5, 0.2] == list(candidate_thresholds(np.array([0.2, 0.5, 0.5]), 10))
    probs = np.linspace(0.0, 0.999, 100_000)
    thresholds = candidate_thresholds(probs, 1_000)
    flagged = np.array([(probs >= t).sum() for t in thresholds[1:]])
    assert 1_000 >= len(thresholds)
    assert (1, 100_000) == (flagged[0], flagged[-1])
    assert 1.02 > float(np.max((flagged[1:] / flagged[:-1])[flagged[:-1] >= 100]))


def test_thresholds_for_capacity_fill_it_without_splitting_ties() -> None:
    """The review threshold takes tied scores together, and reviews nothing if it must."""
    probs = [0.9, 0.8, 0.8, 0.5, 0.2]
    assert 0.9 == thresholds_for_capacity(probs, 1.0, 2)  # 0.8 would make three reviews
    assert 0.8 == thresholds_for_capacity(probs, 1.0, 3)
    assert 0.2 == thresholds_for_capacity(probs, 1.0, 50)
    assert 1.0 == thresholds_for_capacity(probs, 1.0, 0)
    assert 0.8 == thresholds_for_capacity(probs, 1.0, 2, decline_threshold=0.85)
    assert 0.5 == thresholds_for_capacity(probs, 2.0, 2)  # four reviews over two days


@pytest.mark.parametrize(
    ("probs", "labels", "amounts", "days", "capacity", "message"),
    [
        ([0.1, 0.2], [0, 1, 1], [1.0, 1.0], 1.0, None, "labels hold"),
        ([0.1, 0.2], [0, 1], [1.0], 1.0, None, "amounts hold"),
        ([0.1, 1.2], [0, 1], [1.0, 1.0], 1.0, None, r"lie in \[0, 1\]"),
        ([0.1, float("nan")], [0, 1], [1.0, 1.0], 1.0, None, r"lie in \[0, 1\]"),
        ([0.1, 0.2], [0, 1], [1.0, -1.0], 1.0, None, "amounts must be finite and ≥ 0"),
        ([0.1, 0.2], [0, 3], [1.0, 1.0], 1.0, None, "0 \\(genuine\\) or 1"),
        ([0.1, 0.2], [0, 1], [1.0, 1.0], 0.0, None, "days_covered"),
        ([0.1, 0.2], [0, 1], [1.0, 1.0], 1.0, -1, "daily_review_capacity"),
        ([], [], [], 1.0, None, "non-empty"),
    ],
)
def test_bad_inputs_are_input_errors(
    probs: list[float],
    labels: list[int],
    amounts: list[float],
    days: float,
    capacity: int | None,
    message: str,
) -> None:
    """Mismatched lengths, impossible values and a negative capacity are refused."""
    with pytest.raises(InputError, match=message):
        choose_thresholds(probs, labels, amounts, days, COSTS, capacity)


def test_capacity_for_a_negative_team_is_an_input_error() -> None:
    """thresholds_for_capacity refuses a negative capacity too."""
    with pytest.raises(InputError, match="daily_review_capacity"):
        thresholds_for_capacity([0.1, 0.2], 1.0, -5)


def test_without_fraud_there_is_nothing_to_choose_from() -> None:
    """Rows without a single fraud cannot weigh missed fraud against reviews."""
    with pytest.raises(NotEnoughDataError, match="at least one fraud"):
        choose_thresholds([0.1, 0.2], [0, 0], [1.0, 1.0], 1.0, COSTS)


def test_a_negative_cost_is_refused() -> None:
    """A cost model that pays for mistakes is a mistake itself."""
    with pytest.raises(InputError, match="review_cost"):
        CostModel(review_cost=-1.0)


def chosen(capacity: int | None = 2) -> ThresholdChoice:
    """The hand example's choice under ``capacity``."""
    return choose_thresholds(PROBS, LABELS, AMOUNTS, 1.0, COSTS, capacity)


def test_a_policy_file_round_trips(tmp_path: Path) -> None:
    """The written file loads back as the chosen thresholds, with the reasons beside them."""
    path = tmp_path / "policies" / "policy.yaml"
    created = datetime(2018, 8, 1, 12, 0, tzinfo=UTC)
    write_policy_file(
        path, chosen(), model_version="m-7", cost_model=COSTS, capacity=2, created_at=created
    )
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    provenance = document["provenance"]

    assert Policy(review_threshold=0.5, decline_threshold=0.9) == Policy.from_file(path)
    assert ("m-7", created.isoformat(), 2) == (
        provenance["model_version"],
        provenance["created_at"],
        provenance["daily_review_capacity"],
    )
    assert {"missed_fraud_multiple": 1.0, "review_cost": 5.0, "false_decline_cost": 20.0} == (
        provenance["cost_model"]
    )
    assert "at most 2 reviews a day" in provenance["reason"]
    assert ["policy.yaml"] == [p.name for p in path.parent.iterdir()]  # no temporary left


def test_a_policy_file_states_the_inputs_it_was_chosen_with(tmp_path: Path) -> None:
    """A capacity or cost model other than the choice's would misstate why; it is refused."""
    with pytest.raises(InputError, match="not the ones the thresholds were chosen with"):
        write_policy_file(
            tmp_path / "policy.yaml",
            chosen(capacity=2),
            model_version="m-7",
            cost_model=COSTS,
            capacity=5,
            created_at=datetime(2018, 8, 1, tzinfo=UTC),
        )
    assert [] == list(tmp_path.iterdir())
