"""The training report as one self-contained HTML file: inline SVG figures, inline CSS."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup

from fraudops.errors import InputError
from fraudops.learn.metrics import METRIC_KEYS
from fraudops.learn.report_html._data import TrainingReportData
from fraudops.learn.report_html._recall import scenario_catches

TEMPLATE = "training_report.html.j2"
TOP_FEATURES = 40
"""At most this many features in the importance chart (the rest are summed in a note)."""


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("fraudops.learn.report_html", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    environment.filters["num"] = _number
    environment.filters["count"] = _count
    environment.filters["pct"] = _percent
    return environment


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.{digits}f}"


def _count(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{round(float(value)):,}"


def _percent(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{float(value):.{digits}%}"


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    ensemble: bool
    chosen: bool
    average_precision: float
    card_precision_at_100: float
    roc_auc: float
    ap_vs_best_single: float | None
    best: frozenset[str]


@dataclass(frozen=True, slots=True)
class _Note:
    kind: str  # the paragraph's class: "warning" or "note"
    text: str


def _members(data: TrainingReportData) -> tuple[list[_Member], list[_Note]]:
    """The comparison rows, each metric's best marked, and a note per ensemble saying
    whether it beats the best single member on average precision."""
    members = list(data.members)
    singles = [m.average_precision for m in members if not m.ensemble]
    best_single = max(singles) if singles else None
    leaders = {
        key: max((getattr(m, key) for m in members), default=math.nan)
        for key in ("average_precision", "card_precision_at_100", "roc_auc")
    }
    rows = []
    notes: list[_Note] = []
    for m in members:
        delta = None if best_single is None else m.average_precision - best_single
        rows.append(
            _Member(
                name=m.name,
                ensemble=m.ensemble,
                chosen=m.name == data.chosen_member,
                average_precision=m.average_precision,
                card_precision_at_100=m.card_precision_at_100,
                roc_auc=m.roc_auc,
                ap_vs_best_single=delta,
                best=frozenset(k for k, v in leaders.items() if getattr(m, k) == v),
            )
        )
        if m.ensemble and delta is not None:
            # One line per ensemble, for each that beats the best member as for each that
            # does not: a banner naming only the losers would contradict the table below.
            chosen = "" if m.name == data.chosen_member else ", yet it is not the one chosen"
            notes.append(
                _Note(
                    "warning",
                    f"The ensemble {m.name} does not beat the best single member on average"
                    f" precision ({m.average_precision:.4f} vs {best_single:.4f}).",
                )
                if delta <= 0
                else _Note(
                    "note",
                    f"The ensemble {m.name} beats the best single member on average precision"
                    f" by {delta:+.4f} ({m.average_precision:.4f} vs {best_single:.4f}){chosen}.",
                )
            )
    return rows, notes


def _folds(data: TrainingReportData) -> tuple[list[Mapping[str, Any]], dict[str, Any]]:
    entries = sorted(data.fold_metrics, key=lambda e: str(e["test_start"]), reverse=True)
    table = np.array([[float(e[k]) for k in METRIC_KEYS] for e in entries])
    summary = {
        "mean": dict(zip(METRIC_KEYS, table.mean(axis=0).tolist(), strict=True)),
        "std": dict(zip(METRIC_KEYS, table.std(axis=0, ddof=0).tolist(), strict=True)),
    }
    return entries, summary


def _context(data: TrainingReportData) -> dict[str, Any]:
    from fraudops.learn.report_html import _figures as figures

    entries, summary = _folds(data)
    by_fold = {int(e["fold"]): e for e in data.fold_metrics}
    scored = [f for f in data.fold_scores if f.labels.size]
    plots: dict[str, Markup] = {"folds": Markup(figures.fold_metrics(entries))}
    # A ranking curve needs both classes; a week without fraud has none to draw.
    ranked = [f for f in scored if f.labels.min() != f.labels.max()]
    if ranked:
        plots["pr"] = Markup(figures.pr_curves(ranked, by_fold))
        plots["roc"] = Markup(figures.roc_curves(ranked, by_fold))
    if scored:
        plots["scores"] = Markup(figures.score_distribution(scored, data.threshold))
    if data.calibration is not None:
        plots["calibration"] = Markup(figures.reliability(data.calibration))
    if data.threshold is not None and data.threshold.cost_curve:
        plots["cost"] = Markup(figures.cost_curve(data.threshold))
    scenarios = None
    if data.threshold is not None and scored and all(f.scenarios is not None for f in scored):
        review = data.threshold.review_threshold
        catches, genuine = scenario_catches(scored, review)
        if catches:
            plots["scenarios"] = Markup(figures.scenario_recall(catches, review))
            scenarios = {"rows": catches, "genuine": genuine}
    left_out = max(0, len(data.feature_importance) - TOP_FEATURES)
    if data.feature_importance:
        plots["importance"] = Markup(
            figures.feature_importance(data.feature_importance, data.importance_kind, TOP_FEATURES)
        )
    members, member_notes = _members(data)
    created = data.created_at
    if created.tzinfo is not None:
        created = created.astimezone(UTC)
    return {
        "data": data,
        "created_at": created.isoformat(timespec="seconds"),
        "folds": entries,
        "summary": summary,
        "plots": plots,
        "scenarios": scenarios,
        "members": members,
        "member_notes": member_notes,
        "members_measured_on": data.members_measured_on,
        "features_left_out": left_out,
    }


def render_training_report(data: TrainingReportData, path: Path | str) -> Path:
    """Write the training report to ``path`` as one self-contained HTML file; return the path.

    The same data renders the same bytes. The file appears whole or not at all: it is
    written beside ``path`` and moved into place.
    """
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target}: is a directory; give the path of the report file")
    html = _environment().get_template(TEMPLATE).render(_context(data))
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    try:
        partial.write_text(html, encoding="utf-8")
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return target
