"""The two learn jobs behind the CLI: train a model on the lake, and evaluate one."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from fraudops.clock import Clock, SystemClock
from fraudops.errors import ModelError, NotEnoughDataError
from fraudops.learn.artifact import (
    ManifestMetrics,
    load_model_dir,
    new_manifest,
    save_model_dir,
)
from fraudops.learn.dataset import feature_definition, load_feature_table
from fraudops.learn.protocol import Fold, assessment_rows, prequential_folds
from fraudops.learn.report import Report, summarise
from fraudops.learn.train import (
    DETERMINISM,
    HYPERPARAMETERS,
    assess_fold,
    constant_features,
    cross_validate,
)
from fraudops.progress import Progress, no_progress


def train_model(
    lake: Path,
    out: Path,
    *,
    train_start: date,
    train_days: int = 7,
    delay_days: int = 7,
    test_days: int = 7,
    n_folds: int = 1,
    hyperparameters: Mapping[str, Any] = HYPERPARAMETERS,
    clock: Clock | None = None,
    progress: Progress = no_progress,
) -> Report:
    """Fit one model per prequential fold, report their test metrics, save fold 0's model."""
    started = time.perf_counter()
    clock = clock or SystemClock()
    folds = prequential_folds(
        train_start,
        train_days=train_days,
        delay_days=delay_days,
        test_days=test_days,
        n_folds=n_folds,
    )
    definition = feature_definition(delay_days)
    first = min(fold.train_start for fold in folds)
    last = max(fold.test_end for fold in folds)
    frame = load_feature_table(lake, first, last, definition, progress)
    if frame.empty:
        raise NotEnoughDataError(f"{lake}: no transactions from {first} to {last}")
    in_training = np.zeros(len(frame), dtype=bool)
    for fold in folds:
        start, end = fold.train_window
        in_training |= ((frame["ts"] >= start) & (frame["ts"] < end)).to_numpy()
    warnings = constant_features(frame[in_training], definition.names)
    cv = cross_validate(frame, folds, definition.names, hyperparameters, progress)
    means, std = summarise(cv.results)
    latest = folds[0]
    manifest = new_manifest(
        cv.latest_model,
        feature_definition_hash=definition.definition_hash(),
        label_delay_days=delay_days,
        train_start=latest.train_start,
        train_end=latest.train_end,
        metrics=ManifestMetrics(
            mean=means,
            std=std,
            folds=[result.as_dict() for result in cv.results],
        ),
        hyperparameters={**DETERMINISM, **hyperparameters},
        created_at=clock.now(),
    )
    save_model_dir(out, cv.latest_model, manifest)
    return Report(
        folds=cv.results,
        model_dir=out,
        model_version=manifest.model_version,
        feature_definition_hash=manifest.feature_definition_hash,
        seconds=time.perf_counter() - started,
        warnings=tuple(warnings),
    )


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
    the week the model would first have been used on. Cards count as known from the
    model's training start on.
    """
    started = time.perf_counter()
    artifact = load_model_dir(model_dir)
    manifest = artifact.manifest
    delay = manifest.label_delay_days
    if test_start is None:
        test_start = manifest.train_end + timedelta(days=delay + 1)
    fold = Fold(
        index=0,
        train_start=manifest.train_start,
        train_end=manifest.train_end,
        test_start=test_start,
        test_end=test_start + timedelta(days=test_days - 1),
        delay_days=delay,
    )
    definition = feature_definition(delay)
    first = min(fold.train_start, fold.test_start)
    frame = load_feature_table(lake, first, fold.test_end, definition, progress)
    if list(definition.names) != manifest.feature_names:
        raise ModelError(
            f"model features {manifest.feature_names} differ from the definition's"
            f" {list(definition.names)}"
        )
    test = assessment_rows(frame, fold)
    progress("scoring", 0, 1)
    train_start, train_end = fold.train_window
    in_train = ((frame["ts"] >= train_start) & (frame["ts"] < train_end)).to_numpy()
    result = assess_fold(artifact.booster, test, fold, manifest.feature_names, frame[in_train])
    progress("scoring", 1, 1)
    return Report(
        folds=[result],
        model_dir=model_dir,
        model_version=manifest.model_version,
        feature_definition_hash=manifest.feature_definition_hash,
        seconds=time.perf_counter() - started,
    )
