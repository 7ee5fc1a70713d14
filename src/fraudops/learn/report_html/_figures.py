"""The training report's figures, drawn on bare matplotlib Figures and returned as SVG text.

No pyplot: a ``Figure`` is made directly, so no backend is chosen and no global figure
state is touched; SVG output uses matplotlib's own SVG writer. Style and the SVG id salt
are set in an ``rc_context`` for the span of one figure only, and the salt is fixed per
figure so the same data gives the same bytes (and two figures on one page never share ids).
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import Any

import matplotlib as mpl
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.typing import RcKeyType
from sklearn.metrics import precision_recall_curve, roc_curve

from fraudops.learn.report_html._data import Calibration, FoldScores, Thresholds
from fraudops.learn.report_html._recall import ScenarioCatch

WIDTH = 7.5
"""Figure width in inches; the page scales SVGs down on narrow screens."""

# Okabe–Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000")
GENUINE_COLOUR, FRAUD_COLOUR = "#0072B2", "#D55E00"
REVIEW_COLOUR, DECLINE_COLOUR, CAPACITY_COLOUR = "#E69F00", "#D55E00", "#555555"

STYLE: dict[RcKeyType, Any] = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "legend.frameon": False,
    "legend.fontsize": 8,
    # Glyphs as paths: the page needs no font, and renders the same everywhere.
    "svg.fonttype": "path",
}


@contextmanager
def _style(name: str) -> Iterator[None]:
    with mpl.rc_context({**STYLE, "svg.hashsalt": f"fraudops-report-{name}"}):
        yield


def _figure(
    height: float,
    *,
    left: float = 0.6,
    bottom: float = 0.5,
    top: float = 0.3,
    right: float = 0.15,
    wspace: float = 0.25,
) -> Figure:
    """A figure with fixed margins in inches: much cheaper to draw than a layout engine,
    which draws every figure twice to measure it."""
    figure = Figure(figsize=(WIDTH, height))
    figure.subplots_adjust(
        left=left / WIDTH,
        right=1 - right / WIDTH,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=wspace,
    )
    return figure


def _svg(figure: Figure) -> str:
    """The figure as an inline ``<svg>`` element: no XML prolog, no date, no creator."""
    buffer = io.StringIO()
    figure.savefig(
        buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None}
    )
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _plain(text: str) -> str:
    """Text from the data, drawn as written: a ``$`` would otherwise start mathtext."""
    return text.replace("$", r"\$")


def _fold_colour(position: int) -> str:
    return PALETTE[position % len(PALETTE)]


def _threshold_lines(ax: Axes, threshold: Thresholds | None) -> None:
    if threshold is None:
        return
    ax.axvline(threshold.review_threshold, color=REVIEW_COLOUR, ls="--", lw=1.2, label="review")
    ax.axvline(threshold.decline_threshold, color=DECLINE_COLOUR, ls="--", lw=1.2, label="decline")


def fold_metrics(entries: Sequence[Mapping[str, Any]]) -> str:
    """Ranking metrics by fold (left) and false positives at fixed recalls (right)."""
    with _style("folds"):
        figure = _figure(3.0, bottom=0.55, wspace=0.22)
        left, right = figure.subplots(1, 2)
        ordered = sorted(entries, key=lambda e: str(e["test_start"]))
        x = np.arange(len(ordered))
        ticks = [_plain(f"fold {e['fold']}\n{_day(e['test_start'])}") for e in ordered]
        for key, label, colour in (
            ("roc_auc", "AUC ROC", PALETTE[0]),
            ("average_precision", "average precision", PALETTE[1]),
            ("card_precision_at_100", "card precision@100", PALETTE[2]),
        ):
            left.plot(x, [float(e[key]) for e in ordered], "o-", color=colour, label=label)
        left.set_ylim(0, 1)
        left.set_title("Ranking quality per test week")
        left.legend(loc="lower left")
        for key, label, colour in (
            ("false_positives_at_recall_50", "at recall 50 %", PALETTE[0]),
            ("false_positives_at_recall_70", "at recall 70 %", PALETTE[1]),
            ("false_positives_at_recall_80", "at recall 80 %", PALETTE[3]),
        ):
            right.plot(x, [float(e[key]) for e in ordered], "o-", color=colour, label=label)
        # symlog: a week that reaches a recall with no false positive still gets its point.
        right.set_yscale("symlog", linthresh=1)
        right.set_ylim(bottom=0)
        right.set_title("Genuine transactions flagged to reach a recall")
        right.legend(loc="best")
        for ax in (left, right):
            ax.set_xticks(x, ticks)
            ax.set_xlim(-0.4, len(ordered) - 0.6)
        return _svg(figure)


def _day(value: Any) -> str:
    text = value.isoformat() if isinstance(value, date) else str(value)
    return text[:10]


def _fold_label(fold: FoldScores, metrics: Mapping[int, Mapping[str, Any]], key: str) -> str:
    entry = metrics.get(fold.fold)
    if entry is None:
        return f"fold {fold.fold}"
    return _plain(f"fold {fold.fold} ({_day(entry['test_start'])}): {float(entry[key]):.3f}")


def pr_curves(folds: Sequence[FoldScores], metrics: Mapping[int, Mapping[str, Any]]) -> str:
    """Precision against recall, one line per fold (each with both classes); legend: AP."""
    with _style("pr"):
        figure = _figure(3.6)
        ax = figure.subplots()
        for position, fold in enumerate(folds):
            precision, recall, _ = precision_recall_curve(
                fold.labels, fold.scores, drop_intermediate=True
            )
            label = _fold_label(fold, metrics, "average_precision")
            ax.step(recall, precision, where="post", color=_fold_colour(position), label=label)
        prevalence = float(np.mean(np.concatenate([f.labels for f in folds])))
        ax.axhline(prevalence, color="grey", ls=":", lw=1, label=f"chance ({prevalence:.3%})")
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        ax.set_title("Precision–recall on each test week (legend: average precision)")
        ax.legend(loc="lower left")
        return _svg(figure)


def roc_curves(folds: Sequence[FoldScores], metrics: Mapping[int, Mapping[str, Any]]) -> str:
    """ROC per fold (each with both classes): the whole curve, and its low false-positive
    end on a log scale."""
    with _style("roc"):
        figure = _figure(3.3, wspace=0.28)
        whole, low = figure.subplots(1, 2)
        for position, fold in enumerate(folds):
            fpr, tpr, _ = roc_curve(fold.labels, fold.scores, drop_intermediate=True)
            colour = _fold_colour(position)
            whole.plot(fpr, tpr, color=colour, label=_fold_label(fold, metrics, "roc_auc"))
            low.plot(fpr, tpr, color=colour)
        whole.plot([0, 1], [0, 1], color="grey", ls=":", lw=1)
        whole.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1))
        whole.set_ylim(0, 1.02)
        whole.set_title("ROC (legend: AUC)")
        whole.legend(loc="lower right")
        low.set_xscale("log")
        low.set(xlabel="false positive rate (log)", ylabel="true positive rate")
        low.set_xlim(1e-4, 1)
        low.set_ylim(0, 1.02)
        low.set_title("ROC at low false-positive rates")
        return _svg(figure)


def score_distribution(folds: Sequence[FoldScores], threshold: Thresholds | None) -> str:
    """Histogram of the calibrated score by class, counts on a log scale, thresholds marked."""
    with _style("scores"):
        labels = np.concatenate([f.labels for f in folds])
        scores = np.concatenate([f.scores for f in folds])
        figure = _figure(3.0, left=0.65)
        ax = figure.subplots()
        bins = np.linspace(0.0, 1.0, 51).tolist()
        for value, name, colour in ((0, "genuine", GENUINE_COLOUR), (1, "fraud", FRAUD_COLOUR)):
            chosen = scores[labels == value]
            ax.hist(
                chosen,
                bins=bins,
                histtype="stepfilled",
                alpha=0.45,
                color=colour,
                edgecolor=colour,
                label=f"{name} ({len(chosen):,})",
            )
        ax.set_yscale("log")
        _threshold_lines(ax, threshold)
        ax.set(xlabel="calibrated fraud probability", ylabel="transactions (log)", xlim=(0, 1))
        ax.set_title("Score distribution by class, all test weeks")
        ax.legend(loc="upper right")
        return _svg(figure)


def reliability(calibration: Calibration) -> str:
    """Observed fraud rate against predicted probability, before and after calibration."""
    with _style("calibration"):
        figure = _figure(3.4, wspace=0.28)
        linear, logged = figure.subplots(1, 2)
        curves = (
            (calibration.raw, f"raw (Brier {calibration.brier_raw:.5f})", PALETTE[1], "s"),
            (
                calibration.calibrated,
                f"calibrated (Brier {calibration.brier_calibrated:.5f})",
                PALETTE[0],
                "o",
            ),
        )
        low = 1.0
        for points, label, colour, marker in curves:
            if not points:
                continue
            predicted, observed = np.asarray(points, dtype=np.float64).T
            for ax in (linear, logged):
                ax.plot(predicted, observed, marker=marker, ms=4, color=colour, label=label)
            positive = np.concatenate([predicted[predicted > 0], observed[observed > 0]])
            low = min(low, float(positive.min(initial=1.0)))
        for ax in (linear, logged):
            ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=1, label="perfectly calibrated")
            ax.set(xlabel="predicted fraud probability", ylabel="observed fraud rate")
        # The linear panel zooms onto the points: fraud probabilities are mostly small.
        high = max((max(p) for points, *_ in curves for p in points), default=1.0)
        top = min(1.0, max(0.05, float(np.ceil(high * 1.1 * 20) / 20)))
        linear.set(xlim=(0, top), ylim=(0, top))
        linear.set_title("Reliability")
        linear.legend(loc="upper left")
        floor = 10 ** np.floor(np.log10(low)) if low < 1 else 1e-4
        logged.set_xscale("log")
        logged.set_yscale("log")
        logged.set(xlim=(floor, 1), ylim=(floor, 1))
        logged.set_title("Reliability, log scales")
        return _svg(figure)


COST_AXIS_MULTIPLE = 3.0
"""The cost curve's axis ends at this multiple of the least cost, when costs go higher."""


def _cost_ceiling(costs: npt.NDArray[np.float64]) -> float | None:
    """Where to cut the cost axis, or None when the whole curve fits near its minimum."""
    finite = costs[np.isfinite(costs)]
    if not finite.size:
        return None
    least = float(finite.min())
    ceiling = COST_AXIS_MULTIPLE * least
    return ceiling if least > 0 and float(finite.max()) > ceiling else None


def cost_curve(threshold: Thresholds) -> str:
    """Expected cost and daily reviews against the review threshold, with the choice marked."""
    with _style("cost"):
        points = sorted(threshold.cost_curve, key=lambda p: p.threshold)
        x = np.array([p.threshold for p in points])
        figure = _figure(3.6, right=0.8, top=0.8)
        cost_ax = figure.subplots()
        load_ax = cost_ax.twinx()
        load_ax.grid(False)
        load_ax.spines["right"].set_visible(True)
        unit = f" ({_plain(threshold.cost_unit)})" if threshold.cost_unit else ""
        costs = np.array([p.expected_cost for p in points])
        cost_ax.plot(x, costs, color=PALETTE[0], label="expected cost")
        ceiling = _cost_ceiling(costs)
        if ceiling is not None:
            # Absurd thresholds (review everything) cost orders of magnitude more than the
            # choice; on their scale the minimum, the point of the plot, is a flat line.
            cost_ax.set_ylim(0, ceiling)
            cost_ax.text(
                0.01,
                0.98,
                f"cost axis cut at {COST_AXIS_MULTIPLE:g}× the least cost",
                transform=cost_ax.transAxes,
                ha="left",
                va="top",
                fontsize="small",
                color=PALETTE[0],
            )
        load_ax.plot(
            x, [p.reviews_per_day for p in points], color=PALETTE[2], label="reviews per day"
        )
        if threshold.capacity_per_day is not None:
            load_ax.axhline(
                threshold.capacity_per_day,
                color=CAPACITY_COLOUR,
                ls="-.",
                lw=1,
                label=f"review capacity ({threshold.capacity_per_day:,.0f} a day)",
            )
        _threshold_lines(cost_ax, threshold)
        if len(x) and x.min() > 0:
            cost_ax.set_xscale("log")
        cost_ax.set(xlabel="review threshold (calibrated probability)")
        cost_ax.set_ylabel(f"expected cost{unit}", color=PALETTE[0])
        load_ax.set_ylabel("reviews per day", color=PALETTE[2])
        load_ax.set_yscale("log")
        load_ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
        load_ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
        load_ax.yaxis.set_minor_formatter(NullFormatter())
        cost_ax.set_title("Cost and review load by threshold", pad=34)
        handles = cost_ax.get_legend_handles_labels()
        more = load_ax.get_legend_handles_labels()
        cost_ax.legend(
            handles[0] + more[0],
            handles[1] + more[1],
            loc="lower center",
            bbox_to_anchor=(0.5, 1.0),
            ncols=3,
        )
        return _svg(figure)


def scenario_recall(catches: Sequence[ScenarioCatch], threshold: float) -> str:
    """Share of each scenario's frauds caught at the review threshold (transactions,
    amount and cards when known), with each bar's counts written on it."""
    with _style("scenarios"):
        figure = _figure(3.4, left=0.55, top=0.55)
        ax = figure.subplots()
        views: list[tuple[str, list[float], list[str]]] = [
            (
                "transactions",
                [c.recall for c in catches],
                [f"{c.caught}/{c.frauds}" for c in catches],
            )
        ]
        if catches and catches[0].amount_recall is not None:
            views.append(
                ("amount", [c.amount_recall or 0.0 for c in catches], ["" for _ in catches])
            )
        if catches and catches[0].card_recall is not None:
            views.append(
                (
                    "cards",
                    [c.card_recall or 0.0 for c in catches],
                    [f"{c.cards_caught}/{c.cards}" for c in catches],
                )
            )
        x = np.arange(len(catches))
        width = 0.8 / len(views)
        for position, (name, values, notes) in enumerate(views):
            offset = (position - (len(views) - 1) / 2) * width
            bars = ax.bar(x + offset, values, width, color=PALETTE[position], label=name)
            ax.bar_label(bars, notes, fontsize=7, padding=2)
        ax.set_xticks(x, [_plain(c.scenario) for c in catches])
        ax.set_ylim(0, 1.1)
        ax.set_ylabel("share caught")
        ax.set_title(f"Frauds caught at review threshold {threshold:.3g}, all test weeks", pad=18)
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncols=len(views))
        return _svg(figure)


def feature_importance(importance: Mapping[str, float], kind: str, top: int) -> str:
    """Horizontal bars, the most important feature at the top."""
    with _style("importance"):
        ranked = sorted(importance.items(), key=lambda item: (-item[1], item[0]))[:top]
        longest = max((len(name) for name, _ in ranked), default=0)
        figure = _figure(0.8 + 0.2 * len(ranked), left=0.2 + 0.07 * min(longest, 40))
        ax = figure.subplots()
        y = np.arange(len(ranked))[::-1]
        ax.barh(y, [value for _, value in ranked], color=PALETTE[0])
        ax.set_yticks(y, [_plain(name) for name, _ in ranked])
        ax.set_xlabel(_plain(kind))
        ax.grid(axis="y", visible=False)
        ax.set_title(_plain(f"Feature importance ({kind})"))
        return _svg(figure)
