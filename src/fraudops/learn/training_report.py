"""The training report of one ``fraudops train`` run, from what the pipeline measured.

Maps a ``PipelineRun`` (and the handbook-style baselines run on the same folds) onto the
renderer's ``TrainingReportData``: nothing here fits or scores anything again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from fraudops.learn.artifact import Manifest
from fraudops.learn.calibrate import reliability_curve
from fraudops.learn.metrics import Metrics
from fraudops.learn.pipeline import DEFAULT_PIPELINE, SELECTION, PipelineConfig, PipelineRun
from fraudops.learn.report_html import (
    Calibration,
    CostCurvePoint,
    FoldScores,
    HandbookRow,
    MemberScore,
    Thresholds,
    TrainingReportData,
    render_training_report,
)
from fraudops.progress import Progress, no_progress

HANDBOOK_PUBLISHED: tuple[HandbookRow, ...] = (
    HandbookRow("handbook: best AP (XGBoost 50/0.3/3)", 0.872, 0.687, 0.302, "published"),
    HandbookRow("handbook: best CP@100 (balanced bagging IR 0.1)", 0.879, 0.68, 0.305, "published"),
)
"""The handbook's best published test figures on its own simulated data (AUC of the
CP@100 winner is its IR 0.5 variant's; its AP is the IR 0.02 variant's 0.68)."""


def _mean(metrics: Sequence[Metrics], key: str) -> float:
    return float(np.mean([m.as_dict()[key] for m in metrics]))


def _pipeline_label(config: PipelineConfig) -> str:
    """How the handbook table names the pipeline that was run: the default, or not."""
    same_shape = (
        [learner.name for learner in config.learners],
        config.combiner,
        config.calibration,
    ) == (
        [learner.name for learner in DEFAULT_PIPELINE.learners],
        DEFAULT_PIPELINE.combiner,
        DEFAULT_PIPELINE.calibration,
    )
    if same_shape and config.learners == DEFAULT_PIPELINE.learners:
        return "fraudops default pipeline"
    if same_shape:
        return "fraudops pipeline with the given hyperparameters (not the default ones)"
    names = ", ".join(learner.name for learner in config.learners)
    return f"fraudops pipeline: {config.combiner} of {names}, {config.calibration} calibration"


def report_data(
    run: PipelineRun,
    baselines: Mapping[str, Sequence[Metrics]] | None,
    manifest: Manifest,
    feature_names: Sequence[str],
) -> TrainingReportData:
    """The report's contents for ``run``, whose latest fold's model was saved as ``manifest``."""
    latest = run.latest
    model = latest.model
    fold_scores = [
        FoldScores(
            fold=r.result.fold.index,
            labels=r.test.frame["is_fraud"].to_numpy().astype(np.int8),
            scores=r.test_scores,
            scenarios=r.test.frame["scenario"].to_numpy(),
            amounts=r.test.frame["amount"].to_numpy(dtype=np.float64),
            customer_ids=r.test.frame["customer_id"].to_numpy(),
        )
        for r in run.folds
    ]
    served = [r.result.metrics for r in run.folds]
    chosen = f"served: {run.config.combiner} of {', '.join(model.member_names)}, calibrated"
    if (run.config.learners, run.config.combiner) == (
        DEFAULT_PIPELINE.learners,
        DEFAULT_PIPELINE.combiner,
    ):
        # How the default was chosen: every member and ensemble, on the validation folds.
        member_rows = [
            MemberScore(
                name=c.name,
                average_precision=c.average_precision,
                card_precision_at_100=c.card_precision_at_100,
                roc_auc=c.roc_auc,
                ensemble=c.ensemble,
            )
            for c in SELECTION
        ]
        chosen = SELECTION[0].name
        measured_on = (
            "validation folds (training starts 2018-07-11 … 06-20), where the default pipeline"
            " was chosen: bench/members.py"
        )
    else:
        member_rows = [
            MemberScore(
                name=f"member: {name}",
                average_precision=values["average_precision"],
                card_precision_at_100=values["card_precision_at_100"],
                roc_auc=values["roc_auc"],
            )
            for name, values in run.member_means().items()
        ]
        member_rows.append(
            MemberScore(
                name=chosen,
                average_precision=_mean(served, "average_precision"),
                card_precision_at_100=_mean(served, "card_precision_at_100"),
                roc_auc=_mean(served, "roc_auc"),
                ensemble=len(model.members) > 1,
            )
        )
        measured_on = (
            "test weeks above: each member alone on the rows the served model was measured on"
        )
    raw = np.clip(latest.calibration_raw, 0.0, 1.0)
    labels = latest.calibration_labels
    calibrated = model.calibrator.apply(latest.calibration_raw)
    calibration = Calibration(
        raw=[(b.mean_predicted, b.observed_rate) for b in reliability_curve(labels, raw)],
        calibrated=[
            (b.mean_predicted, b.observed_rate) for b in reliability_curve(labels, calibrated)
        ],
        brier_raw=latest.brier_raw,
        brier_calibrated=latest.brier_calibrated,
        method=model.calibrator.method,
        measured_on=(
            f"fold {latest.result.fold.index}'s training week"
            f" {latest.result.fold.train_start}…{latest.result.fold.train_end}"
        ),
        mean_brier_raw=float(np.mean([r.brier_raw for r in run.folds])),
        mean_brier_calibrated=float(np.mean([r.brier_calibrated for r in run.folds])),
        folds=len(run.folds),
    )
    choice = latest.thresholds.choice
    threshold = Thresholds(
        review_threshold=choice.review_threshold,
        decline_threshold=choice.decline_threshold,
        capacity_per_day=choice.daily_review_capacity,
        cost_curve=[
            CostCurvePoint(p.review_threshold, p.expected_cost_per_day, p.reviews_per_day)
            for p in choice.curve
        ],
        cost_unit="per day",
    )
    importance: dict[str, float] = {}
    booster = next(
        (getattr(m, "booster", None) for m in model.members if m.kind == "lightgbm"), None
    )
    if booster is not None:
        gains = booster.feature_importance(importance_type="gain")
        importance = {name: float(g) for name, g in zip(feature_names, gains, strict=True)}
    handbook = list(HANDBOOK_PUBLISHED)
    for name, metrics in (baselines or {}).items():
        handbook.append(
            HandbookRow(
                f"handbook-style {name}, retrained here (15 baseline features)",
                _mean(metrics, "roc_auc"),
                _mean(metrics, "average_precision"),
                _mean(metrics, "card_precision_at_100"),
                "same folds",
            )
        )
    handbook.append(
        HandbookRow(
            _pipeline_label(run.config),
            _mean(served, "roc_auc"),
            _mean(served, "average_precision"),
            _mean(served, "card_precision_at_100"),
            "same folds",
        )
    )
    return TrainingReportData(
        title=f"Training report: {manifest.model_version}",
        model_version=manifest.model_version,
        feature_definition_hash=manifest.feature_definition_hash,
        created_at=manifest.created_at,
        code_version=manifest.code_version,
        fold_metrics=[r.result.as_dict() for r in run.folds],
        fold_scores=fold_scores,
        members=member_rows,
        chosen_member=chosen,
        members_measured_on=measured_on,
        calibration=calibration,
        threshold=threshold,
        feature_importance=importance,
        importance_kind="gain",
        handbook=handbook,
    )


def write_training_report(
    path: Path,
    run: PipelineRun,
    baselines: Mapping[str, Sequence[Metrics]] | None,
    manifest: Manifest,
    feature_names: Sequence[str],
    *,
    progress: Progress = no_progress,
) -> Path:
    """Render the report of ``run`` into ``path`` (one self-contained HTML file)."""
    progress("writing report", 0, 1)
    written = render_training_report(report_data(run, baselines, manifest, feature_names), path)
    progress("writing report", 1, 1)
    return written


__all__ = ["HANDBOOK_PUBLISHED", "report_data", "write_training_report"]
