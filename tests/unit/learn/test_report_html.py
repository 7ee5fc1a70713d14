"""The training report: sections, figures, escaping, determinism and per-scenario recall."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import matplotlib as mpl
import numpy as np
import pytest

from fraudops.errors import InputError
from fraudops.learn.report_html import (
    Calibration,
    CostCurvePoint,
    FoldScores,
    HandbookRow,
    MemberScore,
    Thresholds,
    TrainingReportData,
    per_scenario_recall,
    render_training_report,
    scenario_names,
)

HOSTILE = "<script>alert('x')</script>"
SECTIONS = (
    "Test weeks",
    "Ranking: precision–recall and ROC",
    "Score distribution",
    "Calibration",
    "Thresholds and cost",
    "Catch rate by fraud scenario",
    "Candidate models",
    "Feature importance",
    "Against the handbook",
)


def fold_scores(fold: int, n: int = 1500) -> FoldScores:
    """A test week of ``n`` transactions, about 6 % fraud over the handbook's three scenarios."""
    rng = np.random.default_rng(fold)
    scenario = rng.choice([0, 1, 2, 3], size=n, p=[0.94, 0.02, 0.02, 0.02])
    labels = (scenario > 0).astype(np.int8)
    scores = np.where(labels == 1, rng.beta(3, 2, size=n), rng.beta(0.4, 12, size=n))
    return FoldScores(
        fold=fold,
        labels=labels,
        scores=scores,
        scenarios=scenario,
        amounts=rng.gamma(2.0, 30.0, size=n),
        customer_ids=rng.integers(0, 400, size=n),
    )


def fold_entry(fold: int) -> dict[str, Any]:
    """One fold's metrics as ``FoldResult.as_dict()`` gives them."""
    start = date(2018, 9, 4) - timedelta(days=7 * fold + 6)
    return {
        "fold": fold,
        "test_start": start.isoformat(),
        "test_end": (start + timedelta(days=6)).isoformat(),
        "test_transactions": 1500,
        "test_frauds": 90,
        "roc_auc": 0.88 - 0.01 * fold,
        "average_precision": 0.72 + 0.01 * fold,
        "card_precision_at_100": 0.31,
        "false_positives_at_recall_50": 40 + fold,
        "false_positives_at_recall_70": 400 + 10 * fold,
        "false_positives_at_recall_80": 4000,
    }


def full_data(**changes: Any) -> TrainingReportData:
    """Report data with every optional section filled."""
    grid = np.geomspace(0.005, 0.9, 30)
    data = TrainingReportData(
        title="fraudops training report",
        model_version="m-20180904-abc123",
        feature_definition_hash="f" * 16,
        created_at=datetime(2018, 9, 5, 12, 0, tzinfo=UTC),
        code_version="0fb390b",
        fold_metrics=[fold_entry(k) for k in range(4)],
        fold_scores=[fold_scores(k) for k in range(4)],
        members=[
            MemberScore("lightgbm", 0.727, 0.318, 0.886),
            MemberScore("logistic", 0.641, 0.297, 0.871),
            MemberScore("mean of both", 0.719, 0.316, 0.889, ensemble=True),
        ],
        chosen_member="lightgbm",
        calibration=Calibration(
            raw=[(0.01, 0.004), (0.1, 0.05), (0.4, 0.3), (0.8, 0.7)],
            calibrated=[(0.005, 0.004), (0.06, 0.05), (0.31, 0.3), (0.71, 0.7)],
            brier_raw=0.00412,
            brier_calibrated=0.00388,
            method="isotonic",
        ),
        threshold=Thresholds(
            review_threshold=0.2,
            decline_threshold=0.8,
            capacity_per_day=100,
            cost_curve=[CostCurvePoint(float(t), 1000 * (t - 0.2) ** 2 + 50, 30 / t) for t in grid],
            cost_unit="€ a day",
        ),
        feature_importance={f"feature_{i}": float(100 - 3 * i) for i in range(24)},
        handbook=[
            HandbookRow("XGBoost (Ch. 7)", 0.869, 0.687, 0.303, "published"),
            HandbookRow("handbook baseline", 0.871, 0.690, 0.301, "retrained here"),
            HandbookRow("fraudops default", 0.887, 0.728, 0.320, "this run"),
        ],
    )
    return replace(data, **changes)


def minimal_data(**changes: Any) -> TrainingReportData:
    """Report data with only the identity and the per-fold metrics."""
    fields: dict[str, Any] = {
        "title": "minimal",
        "model_version": "m-1",
        "feature_definition_hash": "abc",
        "created_at": datetime(2018, 9, 5, tzinfo=UTC),
        "code_version": "dev",
        "fold_metrics": [fold_entry(0)],
    }
    return TrainingReportData(**{**fields, **changes})


@pytest.fixture(scope="module")
def full_report(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The full report, rendered once for the tests that only read it."""
    path = tmp_path_factory.mktemp("report") / "report.html"
    return render_training_report(full_data(), path).read_text(encoding="utf-8")


def headings(html: str) -> list[str]:
    return re.findall(r"<h2>(.*?)</h2>", html)


def test_full_report_has_every_section_in_order(full_report: str) -> None:
    """Every section appears, in the report's order, when all the data is given."""
    assert list(SECTIONS) == headings(full_report)


def test_full_report_has_eight_inline_figures(full_report: str) -> None:
    """Eight figures, each an inline SVG inside a figure element."""
    assert 8 == full_report.count("<svg")
    assert 8 == len(re.findall(r"<figure><svg", full_report))


def test_report_is_self_contained(full_report: str) -> None:
    """No script, stylesheet link or image is fetched: the only URLs are SVG namespaces."""
    urls = set(re.findall(r"https?://[^\s\"'<>]+", full_report))
    assert {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"} >= urls
    assert [] == [tag for tag in ("<script", "<link", "<img", "@import") if tag in full_report]


def test_header_shows_identity_and_headline_metrics(full_report: str) -> None:
    """The header names the model and shows the mean test metrics over the folds."""
    header = full_report.split("</header>")[0]
    for text in ("m-20180904-abc123", "f" * 16, "2018-09-05T12:00:00+00:00", "0fb390b"):
        assert text in header
    assert "0.735" in header  # mean average precision of 0.72 … 0.75
    assert "over 4 test weeks" in header


def test_chosen_member_is_marked_and_a_useless_ensemble_is_called_out(full_report: str) -> None:
    """The chosen row is highlighted, and an ensemble below the best member gets a warning."""
    chosen = re.findall(r'<tr class="chosen"><td class="text">([^<]*)<', full_report)
    assert ["lightgbm"] == chosen
    assert (
        "The ensemble mean of both does not beat the best single member on average"
        " precision (0.7190 vs 0.7270)."
    ) in full_report
    assert "-0.0080" in full_report


def test_hostile_text_is_escaped(tmp_path: Path) -> None:
    """Text from the data never reaches the page as markup, in HTML or in a figure."""
    data = minimal_data(
        title=HOSTILE,
        model_version=HOSTILE,
        code_version="<b>bold</b>",
        members=[MemberScore(HOSTILE, 0.7, 0.3, 0.9)],
        chosen_member=HOSTILE,
        feature_importance={HOSTILE: 1.0, "$x$ -->": 0.5},
        handbook=[HandbookRow(HOSTILE, 0.8, 0.6, 0.3, HOSTILE)],
    )
    html = render_training_report(data, tmp_path / "r.html").read_text(encoding="utf-8")
    assert "<script" not in html
    assert "<b>bold" not in html
    assert 7 == html.count("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;")
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<!-- &lt;script&gt;alert('x')&lt;/script&gt; -->" in html  # the figure's label


def test_same_data_renders_the_same_bytes(full_report: str, tmp_path: Path) -> None:
    """Rendering the same data again writes a byte-identical file."""
    again = render_training_report(full_data(), tmp_path / "again.html").read_bytes()
    assert full_report.encode("utf-8") == again


def test_rendering_leaves_matplotlib_settings_alone(tmp_path: Path) -> None:
    """The figures' style and SVG salt do not leak into the process's matplotlib settings."""
    before = dict(mpl.rcParams)
    render_training_report(minimal_data(), tmp_path / "r.html")
    assert before == dict(mpl.rcParams)


def test_minimal_data_leaves_optional_sections_out(tmp_path: Path) -> None:
    """With only fold metrics, the page has the fold section and its one figure, nothing else."""
    path = render_training_report(minimal_data(), tmp_path / "r.html")
    html = path.read_text(encoding="utf-8")
    assert ["Test weeks"] == headings(html)
    assert 1 == html.count("<svg")


def test_threshold_without_scenarios_or_cost_curve_leaves_those_figures_out(
    tmp_path: Path,
) -> None:
    """Thresholds alone (no curve, no capacity) give their section but no cost or scenario
    figure."""
    scores = replace(fold_scores(0), scenarios=None)
    data = minimal_data(
        fold_scores=[scores],
        threshold=Thresholds(review_threshold=0.2, decline_threshold=0.8),
    )
    html = render_training_report(data, tmp_path / "r.html").read_text(encoding="utf-8")
    expected = ["Test weeks", "Ranking: precision–recall and ROC", "Score distribution"]
    assert [*expected, "Thresholds and cost"] == headings(html)
    assert 4 == html.count("<svg")
    assert "no review capacity was set" in html


def test_a_week_without_fraud_has_a_score_distribution_but_no_ranking_curves(
    tmp_path: Path,
) -> None:
    """Curves that need both classes are left out; the histogram of scores is still drawn."""
    genuine_only = FoldScores(fold=0, labels=np.zeros(50, np.int8), scores=np.full(50, 0.01))
    data = minimal_data(fold_scores=[genuine_only])
    html = render_training_report(data, tmp_path / "r.html").read_text(encoding="utf-8")
    assert ["Test weeks", "Score distribution"] == headings(html)
    assert 2 == html.count("<svg")


def test_render_replaces_an_existing_file_and_leaves_no_partial(tmp_path: Path) -> None:
    """The report overwrites an older one at the path, and no temporary file remains."""
    target = tmp_path / "report.html"
    target.write_text("old", encoding="utf-8")
    render_training_report(minimal_data(), target)
    assert ["report.html"] == sorted(p.name for p in tmp_path.iterdir())
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_per_scenario_recall_on_a_hand_computed_example() -> None:
    """Frauds at or above the threshold are caught; genuine rows are not counted."""
    labels = [0, 1, 1, 1, 1, 1, 0, 1]
    scores = [0.9, 0.5, 0.49, 0.8, 0.1, 0.2, 0.0, 0.5]
    scenarios = [
        "genuine",
        "large_amount",
        "large_amount",
        "compromised_card",
        "compromised_card",
        "compromised_card",
        "genuine",
        "compromised_terminal",
    ]
    expected = {
        "large_amount": {"frauds": 2, "caught": 1, "recall": 0.5},
        "compromised_terminal": {"frauds": 1, "caught": 1, "recall": 1.0},
        "compromised_card": {"frauds": 3, "caught": 1, "recall": 1 / 3},
    }
    actual = per_scenario_recall(labels, scores, scenarios, threshold=0.5)
    assert expected == actual
    assert list(expected) == list(actual)  # the simulator's scenario order


def test_per_scenario_recall_reads_the_simulators_scenario_codes() -> None:
    """Integer scenario codes are named as the simulator names them."""
    actual = per_scenario_recall([1, 1, 0, 1], [0.9, 0.1, 0.9, 0.3], [3, 3, 0, 5], 0.3)
    expected = {
        "compromised_card": {"frauds": 2, "caught": 1, "recall": 0.5},
        "account_takeover": {"frauds": 1, "caught": 1, "recall": 1.0},
    }
    assert expected == actual


def test_scenario_names_maps_codes_and_keeps_names() -> None:
    """0 is genuine, known codes get the simulator's names, names pass through."""
    assert ["genuine", "large_amount", "scenario 9"] == scenario_names([0, 1, 9]).tolist()
    assert ["genuine", "x"] == scenario_names(["genuine", "x"]).tolist()


def test_fold_metrics_missing_a_metric_is_refused() -> None:
    """A per-fold entry without a required metric is an input error naming it."""
    entry = fold_entry(0)
    del entry["card_precision_at_100"]
    with pytest.raises(InputError, match="fold metrics entry 0 lacks card_precision_at_100"):
        minimal_data(fold_metrics=[entry])


def test_scores_outside_zero_one_are_refused() -> None:
    """Test scores must be calibrated probabilities."""
    with pytest.raises(InputError, match="fold 2 test scores: scores must be probabilities"):
        FoldScores(fold=2, labels=np.array([0, 1]), scores=np.array([0.2, 1.5]))


def test_chosen_member_must_be_among_the_members() -> None:
    """Naming a chosen candidate that was not compared is an input error."""
    with pytest.raises(InputError, match="chosen member 'xgb' is not among"):
        minimal_data(members=[MemberScore("lightgbm", 0.7, 0.3, 0.9)], chosen_member="xgb")


def test_the_banner_speaks_of_every_ensemble_in_the_table(tmp_path: Path) -> None:
    """An ensemble that beats the best member is said to, beside one that does not."""
    members = [
        MemberScore("lightgbm", 0.7272, 0.31, 0.88),
        MemberScore("stacking", 0.7290, 0.31, 0.88, ensemble=True),
        MemberScore("rank average", 0.7019, 0.30, 0.88, ensemble=True),
    ]
    data = full_data(members=members)
    html = render_training_report(data, tmp_path / "r.html").read_text(encoding="utf-8")
    assert [
        "The ensemble stacking beats the best single member on average precision by +0.0018"
        " (0.7290 vs 0.7272), yet it is not the one chosen.",
        "The ensemble rank average does not beat the best single member on average precision"
        " (0.7019 vs 0.7272).",
    ] == re.findall(r'<p class="(?:note|warning)">(The ensemble [^<]*)</p>', html)


def test_brier_scores_say_which_weeks_they_come_from(tmp_path: Path) -> None:
    """The card and the calibration table name the week measured; the fold means stand beside."""
    calibration = replace(
        full_data().calibration,  # type: ignore[type-var]
        measured_on="fold 0's training week 2018-08-15…2018-08-21",
        mean_brier_raw=0.005,
        mean_brier_calibrated=0.004,
        folds=4,
    )
    html = render_training_report(full_data(calibration=calibration), tmp_path / "r.html")
    text = html.read_text(encoding="utf-8")
    assert (True, True, True) == (
        "before calibration; fold 0&#39;s training week 2018-08-15…2018-08-21 only" in text,
        "<th>mean over 4 folds</th>" in text,
        "<td>0.00500</td>" in text,
    )


def test_the_cost_axis_is_cut_near_the_least_cost(tmp_path: Path) -> None:
    """Absurd thresholds' huge costs do not flatten the curve: the axis is cut, and says so."""
    grid = np.geomspace(0.001, 0.9, 30)
    curve = [CostCurvePoint(float(t), 5000 + 1e7 * max(0.0, 0.05 - t), 30 / t) for t in grid]
    threshold = replace(full_data().threshold, cost_curve=curve)  # type: ignore[type-var]
    html = render_training_report(full_data(threshold=threshold), tmp_path / "r.html")
    assert "cost axis cut at 3× the least cost" in html.read_text(encoding="utf-8")
