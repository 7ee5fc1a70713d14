"""``fraudops train`` and ``fraudops evaluate``: the handbook's prequential protocol."""

from __future__ import annotations

import getpass
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fraudops.cli._common import console, emit_json, fail_cleanly, progress_bars, say, show
from fraudops.errors import InputError
from fraudops.learn.jobs import check_training_outputs, evaluate_model, train_model
from fraudops.learn.metrics import METRIC_KEYS
from fraudops.learn.pipeline import (
    DEFAULT_PIPELINE,
    read_hyperparameters,
    with_capacity,
    with_hyperparameters,
)
from fraudops.learn.report import Report


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{option}: expected a date YYYY-MM-DD, got {value!r}") from exc


@fail_cleanly
def train(
    lake: Annotated[Path, typer.Option(help="Lake directory to read.")],
    out: Annotated[Path, typer.Option(help="Directory to write the model into.")],
    train_start: Annotated[
        str, typer.Option(help="First day of the (latest) training window.")
    ] = "2018-08-15",
    train_days: Annotated[int, typer.Option(min=1)] = 7,
    delay_days: Annotated[int, typer.Option(min=0)] = 7,
    test_days: Annotated[int, typer.Option(min=1)] = 7,
    folds: Annotated[int, typer.Option(min=1, help="Prequential folds, each a week earlier.")] = 1,
    report: Annotated[
        Path | None,
        typer.Option(help="Write the training report (one HTML file) here; adds the baselines."),
    ] = None,
    policy_out: Annotated[
        Path | None, typer.Option(help="Where to write the policy file (default OUT/policy.yaml).")
    ] = None,
    review_capacity: Annotated[
        int | None,
        typer.Option(min=0, help="Reviews the team can work a day (default: the pipeline's)."),
    ] = None,
    baselines: Annotated[
        bool, typer.Option(help="Also retrain the handbook-style baselines on the same folds.")
    ] = False,
    hyperparameters: Annotated[
        Path | None,
        typer.Option(
            help="LightGBM hyperparameters as JSON (a mapping, or `fraudops tune --json`'s"
            " output, whose best_params are used) over the default ones."
        ),
    ] = None,
    register: Annotated[
        bool, typer.Option(help="Register the model in the registry (no alias is moved).")
    ] = False,
    registry: Annotated[
        Path | None,
        typer.Option(
            help="Registry directory (default service.registry_dir, else <data_dir>/registry)."
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Train the default pipeline and report its prequential test metrics."""
    start = _day(train_start, "--train-start")
    # Before anything slow: a wrong output path is refused now, not after the training.
    check_training_outputs(lake, out, policy_out=policy_out, report_html=report)
    if register:
        _registry_root(registry)
    config = DEFAULT_PIPELINE
    if hyperparameters is not None:
        config = with_hyperparameters(config, read_hyperparameters(hyperparameters))
    if review_capacity is not None:
        config = with_capacity(config, review_capacity)
    with progress_bars(enabled=not json_output) as progress:
        result = train_model(
            lake,
            out,
            train_start=start,
            train_days=train_days,
            delay_days=delay_days,
            test_days=test_days,
            n_folds=folds,
            config=config,
            policy_out=policy_out,
            report_html=report,
            baselines=baselines,
            progress=progress,
        )
    if register:
        result.details["registered_version"] = _register(out, registry)
    _show(result, "train", json_output)


def _registry_root(root: Path | None) -> Path:
    from fraudops.learn.registry import registry_dir
    from fraudops.settings import load_settings

    root = root or registry_dir(load_settings())
    if root.exists() and not root.is_dir():
        raise InputError(f"--registry {root}: is a file, not a registry directory")
    return root


def _register(model_dir: Path, root: Path | None) -> int:
    """Register the model just written (checked, and once: an identical model already in
    the registry keeps its version)."""
    from fraudops.learn.registry import open_registry, register_once

    store = open_registry(_registry_root(root))
    return register_once(store, model_dir, trained_by=getpass.getuser()).version.version


@fail_cleanly
def evaluate(
    lake: Annotated[Path, typer.Option(help="Lake directory to read.")],
    model: Annotated[Path, typer.Option(help="Model directory written by `fraudops train`.")],
    test_start: Annotated[
        str | None,
        typer.Option(help="First test day; default: the day after the model's delay gap."),
    ] = None,
    test_days: Annotated[int, typer.Option(min=1)] = 7,
    json_output: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
) -> None:
    """Evaluate a trained model on a test window of the lake."""
    start = None if test_start is None else _day(test_start, "--test-start")
    with progress_bars(enabled=not json_output) as progress:
        report = evaluate_model(
            lake, model, test_start=start, test_days=test_days, progress=progress
        )
    _show(report, "evaluate", json_output)


_LABELS = {
    "roc_auc": "AUC ROC",
    "average_precision": "average precision",
    "card_precision_at_100": "card precision @100",
    "false_positives_at_recall_50": "false positives @ recall 0.5",
    "false_positives_at_recall_70": "false positives @ recall 0.7",
    "false_positives_at_recall_80": "false positives @ recall 0.8",
}


def _value(key: str, value: float, *, counted: bool = False) -> str:
    if key.startswith("false_positives"):
        return f"{value:,.0f}" if counted else f"{value:,.1f}"
    return f"{value:.3f}"


def _show(report: Report, command: str, json_output: bool) -> None:
    if json_output:
        emit_json(report.as_dict())
        # Also on stderr: a warning only in the JSON is a warning nobody reads.
        for warning in report.warnings:
            say("warning", warning)
        return
    folds = report.folds
    table = Table(title=f"{command}: {report.model_version} ({report.seconds:.1f} s)")
    table.add_column("metric")
    table.add_column("mean ± std", justify="right")
    for result in folds:
        table.add_column(
            f"fold {result.fold.index}\n{result.fold.test_start}…{result.fold.test_end}",
            justify="right",
        )
    for key in METRIC_KEYS:
        per_fold = [_value(key, result.metrics.as_dict()[key], counted=True) for result in folds]
        summary = f"{_value(key, report.means[key])} ± {_value(key, report.std[key])}"
        table.add_row(_LABELS[key], summary, *per_fold)
    table.add_section()
    for name in ("test_transactions", "test_frauds", "removed_known_cards"):
        counts = [f"{result.as_dict()[name]:,}" for result in folds]
        table.add_row(name.replace("_", " "), "", *counts)
    show(table)
    console.print(
        f"model: {escape(str(report.model_dir))}  features: {report.feature_definition_hash[:12]}",
        soft_wrap=True,
    )
    version = report.details.get("registered_version")
    if version is not None:
        console.print(f"registered as version {version}", soft_wrap=True)
    for warning in report.warnings:
        say("warning", warning)
