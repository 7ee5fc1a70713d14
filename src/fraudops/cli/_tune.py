"""``fraudops tune``: search the model's hyperparameters on the validation folds."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from fraudops.cli._common import console, emit_json, fail_cleanly, progress_bars, say, show
from fraudops.errors import InputError

if TYPE_CHECKING:
    from fraudops.learn.tune import Objective, TuneResult


class ObjectiveName(StrEnum):
    ap = "ap"
    cp100 = "cp100"
    cost = "cost"


_OBJECTIVES: dict[ObjectiveName, Objective] = {
    ObjectiveName.ap: "average_precision",
    ObjectiveName.cp100: "card_precision_at_100",
    ObjectiveName.cost: "expected_cost",
}


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InputError(f"{option}: expected a date YYYY-MM-DD, got {value!r}") from exc


@fail_cleanly
def tune(
    lake: Annotated[Path, typer.Option(help="Lake directory to read.")],
    objective: Annotated[
        ObjectiveName,
        typer.Option(
            help="ap: average precision; cp100: card precision @100; cost: expected cost."
        ),
    ] = ObjectiveName.ap,
    trials: Annotated[int, typer.Option(min=1, help="Trials to run in this session.")] = 50,
    time_budget: Annotated[
        float, typer.Option(min=1.0, help="Seconds this session may run (checked per fold).")
    ] = 1800.0,
    storage: Annotated[
        Path | None,
        typer.Option(help="SQLite file of the study; the same study name continues it."),
    ] = None,
    study: Annotated[
        str | None, typer.Option(help="Study name (default lgbm-<objective>).")
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the TPE sampler.")] = 0,
    train_start: Annotated[
        str, typer.Option(help="First training day of the latest validation fold.")
    ] = "2018-07-11",
    train_days: Annotated[int, typer.Option(min=1)] = 7,
    delay_days: Annotated[int, typer.Option(min=0)] = 7,
    test_days: Annotated[int, typer.Option(min=1)] = 7,
    folds: Annotated[int, typer.Option(min=1, help="Validation folds, each a week earlier.")] = 4,
    registry: Annotated[
        Path | None,
        typer.Option(help="Registry directory whose MLflow store records the trials."),
    ] = None,
    track: Annotated[
        bool, typer.Option("--track/--no-track", help="Record every trial as an MLflow run.")
    ] = True,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Tune the model's hyperparameters on validation folds (never the test weeks)."""
    import optuna

    from fraudops.learn.dataset import feature_definition, load_feature_table
    from fraudops.learn.protocol import prequential_folds
    from fraudops.learn.registry import registry_dir
    from fraudops.learn.tracking import MlflowTracker, NoTracking, Tracker, check_sqlite_file
    from fraudops.learn.tune import check_storage, fold_dates
    from fraudops.learn.tune import tune as run_tune
    from fraudops.settings import load_settings

    start = _day(train_start, "--train-start")
    settings = load_settings()
    storage = storage or settings.data_dir / "tune" / "optuna.db"
    registry = registry or registry_dir(settings)
    # Before the feature table is built: a wrong path is refused now, not after it.
    check_storage(storage)
    if track:
        if registry.exists() and not registry.is_dir():
            raise InputError(f"--registry {registry}: is a file, not a registry directory")
        check_sqlite_file(registry / "mlflow.db", "--registry")
    validation = prequential_folds(
        start, train_days=train_days, delay_days=delay_days, test_days=test_days, n_folds=folds
    )
    tracker: Tracker = NoTracking()
    if track:
        registry.mkdir(parents=True, exist_ok=True)
        tracker = MlflowTracker(
            f"sqlite:///{(registry / 'mlflow.db').resolve()}", registry / "artifacts"
        )
    # Optuna logs every trial at INFO; the progress bar and the result say it better.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    definition = feature_definition(delay_days)
    first, last = fold_dates(validation)
    with progress_bars(enabled=not json_output) as progress:
        frame = load_feature_table(lake, first, last, definition, progress)
        result = run_tune(
            frame,
            validation,
            feature_names=definition.names,
            objective=_OBJECTIVES[objective],
            n_trials=trials,
            time_budget_s=time_budget,
            storage_path=storage,
            study_name=study,
            seed=seed,
            progress=progress,
            tracker=tracker,
        )
    _show(result, json_output)


def _show(result: TuneResult, json_output: bool) -> None:
    if not result.best_params:
        say("warning", "no trial finished: there are no tuned hyperparameters to train with")
    if json_output:
        emit_json(result.as_dict())
        return
    table = Table(title=f"tune {result.study_name}: {result.objective} ({result.seconds:.0f} s)")
    table.add_column("")
    table.add_column("", justify="right")
    best = "—" if result.best_value is None else f"{result.best_value:.4f}"
    table.add_row(f"best {result.objective} ({result.direction})", best)
    for key, value in result.best_params.items():
        table.add_row(f"  {key}", f"{value:.4g}" if isinstance(value, float) else str(value))
    table.add_section()
    for state in ("complete", "pruned", "stopped", "failed"):
        table.add_row(f"trials {state}", str(result.count(state)))
    table.add_row("trials this session", str(result.new_trials))
    table.add_row("stopped by", result.stopped_by.replace("_", " "))
    show(table)
    console.print(f"study: {escape(result.study_name)}  storage: {result.storage}", soft_wrap=True)
