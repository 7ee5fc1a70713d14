"""The two learn jobs behind the CLI: train a model on the lake, and evaluate one."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fraudops import lake as lake_layout
from fraudops.clock import Clock, SystemClock
from fraudops.errors import InputError, ModelError, NotEnoughDataError
from fraudops.features.definition import Entity, FeatureDefinition
from fraudops.learn.artifact import (
    ManifestMetrics,
    check_model_destination,
    load_model_dir,
    save_ensemble_dir,
)
from fraudops.learn.dataset import feature_definition, load_feature_table
from fraudops.learn.members import Learner, Member
from fraudops.learn.metrics import METRIC_KEYS, Metrics, assess
from fraudops.learn.pipeline import (
    DEFAULT_PIPELINE,
    PipelineConfig,
    PipelineRun,
    earliest_day,
    run_baselines,
    run_pipeline,
)
from fraudops.learn.protocol import Fold, assessment_rows, prequential_folds
from fraudops.learn.report import FoldResult, Report, summarise
from fraudops.learn.thresholds import write_policy_file
from fraudops.learn.train import DETERMINISM, constant_features
from fraudops.progress import Progress, no_progress

FloatArray = npt.NDArray[np.float64]

POLICY_FILE = "policy.yaml"
"""The policy file ``fraudops train`` writes beside the model unless told where."""


def export_members(members: Sequence[Member], check_rows: FloatArray) -> dict[str, bytes]:
    """ONNX exports of the members the service does not score natively (all but LightGBM).

    Each export is checked against its member on ``check_rows``: a model is never shipped
    whose served scores differ from the ones it was measured with.
    """
    from fraudops.decide.onnx_scorer import OnnxScorer
    from fraudops.learn import onnx_export

    exports: dict[str, bytes] = {}
    for member in members:
        n = len(member.feature_names)
        if member.kind == "lightgbm":
            continue
        if member.kind == "xgboost":
            exported = onnx_export.xgboost_to_onnx(member.booster, n)  # type: ignore[attr-defined]
        elif member.kind == "logistic":
            exported = onnx_export.sklearn_to_onnx(member.estimator, n)  # type: ignore[attr-defined]
        elif member.kind == "mlp":
            exported = onnx_export.torch_to_onnx(member.module, n)  # type: ignore[attr-defined]
        else:
            raise ModelError(
                f"member {member.name} ({member.kind}) cannot be exported to ONNX, so the"
                " service could not score it; leave it out of the shipped model"
            )
        served = OnnxScorer(exported, member.name, member.feature_names).score_batch(check_rows)
        gap = float(np.max(np.abs(served - member.predict(check_rows)), initial=0.0))
        if gap > ONNX_TOLERANCE:
            raise ModelError(
                f"member {member.name}: its ONNX export scores up to {gap:.2e} away from the"
                f" trained model (tolerance {ONNX_TOLERANCE:.0e})"
            )
        exports[member.name] = exported
    return exports


ONNX_TOLERANCE = 1e-4
"""How far an ONNX export's score may stray from its member's (float32 against float64)."""


def _model_hyperparameters(config: PipelineConfig) -> dict[str, Any]:
    return {
        "members": {learner.name: _describe(learner) for learner in config.learners},
        "combiner": config.combiner,
        "calibration": config.calibration,
        "determinism": dict(DETERMINISM),
    }


def _describe(learner: Learner) -> dict[str, Any]:
    described: dict[str, Any] = {"learner": type(learner).__name__}
    for name in getattr(learner, "__dataclass_fields__", {}):
        described[name] = _plain(getattr(learner, name))
    return described


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def check_output_file(path: Path, option: str) -> None:
    """Refuse ``path`` as a file to write unless it can be: not a directory, nor under a file.

    Checked before training so that a long run is not lost to a path that was wrong from
    the start; missing parent directories are fine (the writers create them).
    """
    if path.is_dir():
        raise InputError(f"{option} {path}: is a directory; give the path of a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise InputError(f"{option} {path}: {parent} is a file, not a directory")
            break


def check_training_outputs(
    lake: Path, out: Path, *, policy_out: Path | None = None, report_html: Path | None = None
) -> None:
    """Refuse, before any training, outputs that would destroy data or fail at the end."""
    check_model_destination(out, lake=lake)
    if policy_out is not None:
        check_output_file(policy_out, "--policy-out")
    if report_html is not None:
        check_output_file(report_html, "--report")


def lake_days(lake: Path) -> tuple[date, date] | None:
    """The first and last day the lake holds transactions on, from its day partitions."""
    root = lake / lake_layout.TRANSACTIONS_DIR
    days = []
    for partition in root.glob("day=*") if root.is_dir() else ():
        try:
            days.append(date.fromisoformat(partition.name.removeprefix("day=")))
        except ValueError:
            continue
    return (min(days), max(days)) if days else None


def feature_reach_days(definition: FeatureDefinition) -> int:
    """How many days of history the definition's longest window (with its delay) reads."""
    reach_us = max(definition.horizon_us(entity) for entity in Entity)
    return -(-reach_us // 86_400_000_000)


def history_warnings(
    folds: Sequence[Fold], lake_first_day: date | None, definition: FeatureDefinition
) -> list[str]:
    """Warnings for windows the lake cannot fully serve: days before its first, or
    transactions whose features lack part of their history."""
    if lake_first_day is None:
        return []
    reach = feature_reach_days(definition)
    complete_from = lake_first_day + timedelta(days=reach)
    latest_start = max(fold.train_start for fold in folds)
    advice = (
        f"; a --train-start of {complete_from + (latest_start - earliest_day(folds))} or later"
        " avoids this"
    )
    warnings = []
    for fold in sorted(folds, key=lambda f: f.index):
        train_days = (fold.train_end - fold.train_start).days + 1
        windows = (
            (
                "calibration week",
                fold.train_start - timedelta(days=train_days),
                fold.train_start - timedelta(days=1),
            ),
            ("training window", fold.train_start, fold.train_end),
        )
        for what, first, last in windows:
            if first < lake_first_day:
                warnings.append(
                    f"fold {fold.index}: the {what} {first}…{last} starts before the lake's"
                    f" first day {lake_first_day}: it is trained on part of the window only{advice}"
                )
            elif first < complete_from:
                warnings.append(
                    f"fold {fold.index}: the {what} {first}…{last} starts less than {reach}"
                    f" days after the lake's first day {lake_first_day}: its features miss"
                    f" part of their history (complete from {complete_from}){advice}"
                )
    return warnings


def train_model(
    lake: Path,
    out: Path,
    *,
    train_start: date,
    train_days: int = 7,
    delay_days: int = 7,
    test_days: int = 7,
    n_folds: int = 1,
    config: PipelineConfig = DEFAULT_PIPELINE,
    policy_out: Path | None = None,
    report_html: Path | None = None,
    baselines: bool = False,
    clock: Clock | None = None,
    progress: Progress = no_progress,
) -> Report:
    """Run the training pipeline on every prequential fold; save fold 0's model and policy.

    The model directory gets fold 0's members, combiner and calibrator; the policy file
    (default ``<out>/policy.yaml``, beside the model but not part of it) the review and
    decline thresholds chosen for it. ``baselines`` also retrains the handbook-style
    baselines on the same folds (always done for ``report_html``).
    """
    started = time.perf_counter()
    clock = clock or SystemClock()
    check_training_outputs(lake, out, policy_out=policy_out, report_html=report_html)
    folds = prequential_folds(
        train_start,
        train_days=train_days,
        delay_days=delay_days,
        test_days=test_days,
        n_folds=n_folds,
    )
    definition = feature_definition(delay_days)
    first = earliest_day(folds)
    last = max(fold.test_end for fold in folds)
    frame = load_feature_table(lake, first, last, definition, progress)
    if frame.empty:
        raise NotEnoughDataError(f"{lake}: no transactions from {first} to {last}")
    in_training = np.zeros(len(frame), dtype=bool)
    for fold in folds:
        start, end = fold.train_window
        in_training |= ((frame["ts"] >= start) & (frame["ts"] < end)).to_numpy()
    span = lake_days(lake)
    warnings = history_warnings(folds, None if span is None else span[0], definition)
    warnings += constant_features(frame[in_training], definition.names)
    run = run_pipeline(
        frame,
        folds,
        definition.names,
        config,
        progress,
        lake_first_day=None if span is None else span[0],
    )
    results = [fold_run.result for fold_run in run.folds]
    means, std = summarise(results)
    latest = run.latest
    model = latest.model
    check_rows = latest.test.frame[list(definition.names)].to_numpy(dtype=np.float64)[:2000]
    created_at = clock.now()
    progress("saving model", 0, 1)
    manifest = save_ensemble_dir(
        out,
        model.members,
        onnx=export_members(model.members, check_rows),
        combiner=model.combiner.to_dict(),
        calibrator=model.calibrator.to_dict(),
        feature_definition_hash=definition.definition_hash(),
        label_delay_days=delay_days,
        train_start=latest.result.fold.train_start,
        train_end=latest.result.fold.train_end,
        metrics=ManifestMetrics(
            mean=means, std=std, folds=[result.as_dict() for result in results]
        ),
        hyperparameters=_model_hyperparameters(config),
        created_at=created_at,
    )
    policy_path = policy_out or out / POLICY_FILE
    write_policy_file(
        policy_path,
        latest.thresholds.choice,
        model_version=manifest.model_version,
        cost_model=config.cost_model,
        capacity=config.daily_review_capacity,
        created_at=created_at,
    )
    progress("saving model", 1, 1)
    baseline = run_baselines(frame, folds, progress=progress) if baselines or report_html else None
    details = training_details(run, baseline, policy_path)
    if report_html is not None:
        from fraudops.learn.training_report import write_training_report

        write_training_report(
            report_html, run, baseline, manifest, definition.names, progress=progress
        )
        details["report"] = str(report_html)
    return Report(
        folds=results,
        model_dir=out,
        model_version=manifest.model_version,
        feature_definition_hash=manifest.feature_definition_hash,
        seconds=time.perf_counter() - started,
        warnings=tuple(warnings),
        details=details,
    )


def training_details(
    run: PipelineRun, baseline: Mapping[str, Sequence[Metrics]] | None, policy_path: Path
) -> dict[str, Any]:
    """What the JSON report says beyond the served model's metrics.

    Each member alone on the same test rows (fold means), the combiner, calibration
    (Brier on the calibration week, raw and out-of-fold calibrated), the thresholds
    chosen for the shipped model and what each fold's thresholds did on its test week,
    and the handbook-style baselines when they were run.
    """
    latest = run.latest
    details: dict[str, Any] = {
        "members": run.member_means(),
        "combiner": run.config.combiner,
        "calibration": {
            "method": latest.model.calibrator.method,
            "brier_raw": float(np.mean([r.brier_raw for r in run.folds])),
            "brier_calibrated": float(np.mean([r.brier_calibrated for r in run.folds])),
        },
        "thresholds": latest.thresholds.as_dict(),
        "threshold_folds": [
            {"fold": r.result.fold.index, **r.thresholds.as_dict()} for r in run.folds
        ],
        "policy_file": str(policy_path),
    }
    if baseline is not None:
        details["baselines"] = {
            name: {key: float(np.mean([m.as_dict()[key] for m in metrics])) for key in METRIC_KEYS}
            for name, metrics in baseline.items()
        }
    return details


def _test_window_warnings(
    manifest_train: tuple[date, date], delay: int, test_start: date, test_end: date
) -> list[str]:
    """Refuse a test window the model trained on; warn of one it would not have met."""
    train_start, train_end = manifest_train
    if test_start <= train_end and test_end >= train_start:
        raise InputError(
            f"test window {test_start}…{test_end} overlaps the model's training window"
            f" {train_start}…{train_end}: its metrics would be in-sample; test from"
            f" {train_end + timedelta(days=delay + 1)} on (the default --test-start)"
        )
    gap_end = train_end + timedelta(days=delay)
    if train_end < test_start <= gap_end:
        return [
            f"test window {test_start}…{test_end} starts inside the model's {delay}-day"
            f" label-delay gap {train_end + timedelta(days=1)}…{gap_end}: the model could not"
            " have been deployed yet on those days"
        ]
    if test_end < train_start:
        return [
            f"test window {test_start}…{test_end} lies before the model's training window"
            f" {train_start}…{train_end}: the model is measured on the past"
        ]
    return []


def evaluate_model(
    lake: Path,
    model_dir: Path,
    *,
    test_start: date | None = None,
    test_days: int = 7,
    progress: Progress = no_progress,
) -> Report:
    """Measure a saved model on a test window, with the same known-card removal as training.

    The default window starts right after the model's training window and label delay:
    the week the model would first have been used on. A window overlapping the training
    window is refused (it would be measured in-sample); one in the delay gap or before the
    training is measured with a warning. The report's test window is the days actually
    measured: a window reaching past the lake's last day is cut there, with a warning. Cards
    count as known from the model's training start (or the test start, if earlier) on.
    """
    started = time.perf_counter()
    artifact = load_model_dir(model_dir)
    manifest = artifact.manifest
    delay = manifest.label_delay_days
    if test_start is None:
        test_start = manifest.train_end + timedelta(days=delay + 1)
    test_end = test_start + timedelta(days=test_days - 1)
    warnings = _test_window_warnings(
        (manifest.train_start, manifest.train_end), delay, test_start, test_end
    )
    span = lake_days(lake)
    if span is not None and not (span[0] <= test_end and test_start <= span[1]):
        raise NotEnoughDataError(
            f"test window {test_start}…{test_end}: the lake holds transactions from"
            f" {span[0]} to {span[1]} only"
        )
    if span is not None:
        measured = (max(test_start, span[0]), min(test_end, span[1]))
        if measured != (test_start, test_end):
            warnings.append(
                f"the lake holds {span[0]}…{span[1]}: of the test window {test_start}…"
                f"{test_end} only {measured[0]}…{measured[1]}"
                f" ({(measured[1] - measured[0]).days + 1} of {test_days} days) is measured"
            )
            test_start, test_end = measured
    fold = Fold(
        index=0,
        train_start=manifest.train_start,
        train_end=manifest.train_end,
        test_start=test_start,
        test_end=test_end,
        delay_days=delay,
    )
    definition = feature_definition(delay)
    first = min(fold.train_start, fold.test_start)
    frame = load_feature_table(
        lake, first, max(fold.test_end, fold.train_end), definition, progress
    )
    if list(definition.names) != manifest.feature_names:
        raise ModelError(
            f"model features {manifest.feature_names} differ from the definition's"
            f" {list(definition.names)}"
        )
    test = assessment_rows(frame, fold)
    progress("scoring", 0, 1)
    train_start, train_end = fold.train_window
    in_train = ((frame["ts"] >= train_start) & (frame["ts"] < train_end)).to_numpy()
    train = frame[in_train]
    from fraudops.decide.ensemble_scorer import load_scorer

    scorer = load_scorer(model_dir, definition_hash=definition.definition_hash())
    scores = scorer.score_batch(test.frame[manifest.feature_names].to_numpy(dtype=np.float64))
    result = FoldResult(
        fold=fold,
        train_transactions=len(train),
        train_frauds=int(train["is_fraud"].sum()),
        test_transactions=len(test.frame),
        test_frauds=int(test.frame["is_fraud"].sum()),
        removed_known_cards=test.removed_cards,
        metrics=assess(test.frame, scores),
    )
    progress("scoring", 1, 1)
    return Report(
        folds=[result],
        model_dir=model_dir,
        model_version=manifest.model_version,
        feature_definition_hash=manifest.feature_definition_hash,
        seconds=time.perf_counter() - started,
        warnings=tuple(warnings),
    )
