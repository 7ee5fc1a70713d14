"""Experiment tracking: each tuning trial recorded as an MLflow run under its study's run.

MLflow is imported on first use, never when this module is: it takes a second or two, and
it must be told, before that import, not to send telemetry. Every client gets its URIs
explicitly, so nothing is written to the home directory or the working directory by default.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from fraudops.clock import Clock, SystemClock
from fraudops.errors import InputError, StoreError

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

TrialState = Literal["complete", "pruned", "stopped", "failed", "running"]
"""``stopped``: cut short by the time budget; it says nothing about its hyperparameters."""


@dataclass(frozen=True, slots=True)
class TrialRecord:
    """One tuning trial: what it tried, each fold's objective value, and how it ended."""

    number: int
    state: TrialState
    value: float | None
    params: dict[str, Any]
    fold_values: list[float]
    fold_metrics: list[dict[str, float]] = field(default_factory=list)
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values (per-fold metrics left to the tracker)."""
        return {
            "number": self.number,
            "state": self.state,
            "value": self.value,
            "params": self.params,
            "fold_values": self.fold_values,
            "seconds": self.seconds,
        }


class Tracker(Protocol):
    """Records a tuning study: its settings, every trial as it ends, and the outcome."""

    def study_started(self, study: str, settings: Mapping[str, Any]) -> None: ...

    def trial_finished(self, trial: TrialRecord) -> None: ...

    def study_finished(self, summary: Mapping[str, Any]) -> None: ...


class NoTracking:
    """The tracker for callers that record nothing beyond the study's own storage."""

    def study_started(self, study: str, settings: Mapping[str, Any]) -> None:
        """Nothing to record."""

    def trial_finished(self, trial: TrialRecord) -> None:
        """Nothing to record."""

    def study_finished(self, summary: Mapping[str, Any]) -> None:
        """Nothing to record."""


no_tracking = NoTracking()


# MLflow 3.17's SQL store maps one relationship with ``noload``, which SQLAlchemy 2.1
# deprecates; the warning comes from MLflow's import and says nothing about our code.
_SQLALCHEMY_NOLOAD = r"The ``noload`` loader strategy is deprecated"


def _import_mlflow() -> None:
    """Import MLflow the quiet way; every MLflow import in fraudops goes through here.

    MLflow reads these settings from the environment, some of them at its import: telemetry
    stays off and artifact downloads draw no progress bar unless the environment already
    says otherwise.
    """
    if "mlflow.store.model_registry.sqlalchemy_store" in sys.modules:
        return
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_SQLALCHEMY_NOLOAD)
        import mlflow.store.model_registry.sqlalchemy_store
        import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    # MLflow announces every table it creates at INFO, on a handler of its own.
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)


def mlflow_error() -> type[MlflowException]:
    """MLflow's exception class, imported the quiet way."""
    _import_mlflow()
    from mlflow.exceptions import MlflowException

    return MlflowException


def mlflow_client(tracking_uri: str) -> MlflowClient:
    """An MLflow client whose tracking store and model registry are both ``tracking_uri``.

    A database URI is created (and migrated) on first use.
    """
    _import_mlflow()
    import sqlalchemy.exc
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    _probe(tracking_uri)
    try:
        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        # Touch both stores now so a bad URI fails here, not in the middle of a study.
        client.search_experiments(max_results=1)
        client.search_registered_models(max_results=1)
    except MlflowException as exc:
        raise StoreError(f"MLflow store {_shown(tracking_uri)}: {one_line(exc.message)}") from exc
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise StoreError(f"MLflow store {_shown(tracking_uri)}: {one_line(exc)}") from exc
    return client


def _shown(uri: str) -> str:
    """``uri`` fit for an error message: a password in it is masked."""
    import sqlalchemy

    try:
        return sqlalchemy.make_url(uri).render_as_string(hide_password=True)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return uri


SQLITE_HEADER = b"SQLite format 3\x00"
"""The first 16 bytes of every SQLite database file."""


def check_sqlite_file(path: Path, what: str) -> None:
    """Refuse ``path`` as a SQLite database unless it is one, or is not there yet."""
    if path.is_dir():
        raise InputError(f"{what} {path}: is a directory, not a SQLite database file")
    if not path.exists():
        return
    try:
        with path.open("rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as exc:
        raise InputError(f"{what} {path}: cannot be read: {exc.strerror}") from exc
    if header and header != SQLITE_HEADER:
        raise InputError(f"{what} {path}: is not a SQLite database")


def one_line(exc: BaseException | str) -> str:
    """An error as one line: a database driver's message without SQL, hints or background."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _probe(tracking_uri: str) -> None:
    """Fail at once, in one line, on a database MLflow could not open.

    MLflow retries a failing database for a minute and a half, logging each attempt, then
    raises the driver's error with its SQL: too slow and too loud for a wrong URI.
    """
    if tracking_uri.startswith("sqlite:///"):
        check_sqlite_file(Path(tracking_uri.removeprefix("sqlite:///")), "MLflow store")
        return
    if "://" not in tracking_uri or tracking_uri.split("://", 1)[0] in ("file", "http", "https"):
        return
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(tracking_uri)
    except (sqlalchemy.exc.SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"MLflow store {_shown(tracking_uri)}: {one_line(exc)}") from exc
    try:
        with engine.connect():
            pass
    except sqlalchemy.exc.SQLAlchemyError as exc:
        raise StoreError(f"MLflow store {_shown(tracking_uri)}: {one_line(exc)}") from exc
    finally:
        engine.dispose()


def experiment_id(client: MlflowClient, name: str, artifact_location: Path) -> str:
    """The id of the experiment called ``name``, created with its artifacts at the location."""
    MlflowException = mlflow_error()
    found = client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    try:
        location = artifact_location.resolve().as_uri()
        return str(client.create_experiment(name, artifact_location=location))
    except MlflowException:
        # Another process created it between the lookup and the create.
        again = client.get_experiment_by_name(name)
        if again is None:
            raise
        return str(again.experiment_id)


def _millis(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _param(value: Any) -> str:
    return str(value)[:6000]  # MLflow's limit on a parameter's value


class MlflowTracker:
    """Records a study as one MLflow experiment, each session as a run and each trial in it.

    Experiment ``tune/<study>``: a resumed study adds a new parent run to the same experiment,
    and every trial is a child run (tag ``mlflow.parentRunId``) with its hyperparameters as
    parameters, each fold's metrics (``fold_<i>.<metric>``), the objective's running mean
    per fold as steps of ``objective``, the final ``objective_value``, and its state in the
    tag ``trial_state``. A pruned trial's run ends KILLED, a stopped or failed one FAILED.
    """

    def __init__(
        self, tracking_uri: str, artifact_root: Path, *, clock: Clock | None = None
    ) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self._clock = clock or SystemClock()
        self._client: MlflowClient | None = None
        self._experiment: str | None = None
        self._parent: str | None = None
        self._objective = "objective"

    def _mlflow(self) -> MlflowClient:
        if self._client is None:
            self._client = mlflow_client(self.tracking_uri)
        return self._client

    @property
    def parent_run_id(self) -> str | None:
        """The current session's parent run, once a study has started."""
        return self._parent

    def study_started(self, study: str, settings: Mapping[str, Any]) -> None:
        """Open the study's experiment and this session's parent run."""
        client = self._mlflow()
        name = f"tune/{study}"
        self._experiment = experiment_id(client, name, self.artifact_root / "tune" / study)
        self._objective = str(settings.get("objective", "objective"))
        run = client.create_run(
            self._experiment,
            start_time=_millis(self._clock.now()),
            tags={"fraudops.study": study, "fraudops.kind": "tuning"},
            run_name=f"{study} session",
        )
        self._parent = run.info.run_id
        self._log(self._parent, params=settings)

    def trial_finished(self, trial: TrialRecord) -> None:
        """Record ``trial`` as a child run of the session's parent run."""
        if self._experiment is None or self._parent is None:
            raise StoreError("MlflowTracker: trial_finished before study_started")
        client = self._mlflow()
        now = _millis(self._clock.now())
        run = client.create_run(
            self._experiment,
            start_time=now,
            tags={
                "mlflow.parentRunId": self._parent,
                "trial_number": str(trial.number),
                "trial_state": trial.state,
                "pruned": str(trial.state == "pruned").lower(),
            },
            run_name=f"trial {trial.number}",
        )
        metrics: list[tuple[str, float, int]] = []
        for index, fold in enumerate(trial.fold_metrics):
            metrics.extend((f"fold_{index}.{key}", float(value), 0) for key, value in fold.items())
        running = 0.0
        for step, value in enumerate(trial.fold_values):
            running += value
            metrics.append((self._objective, running / (step + 1), step))
        if trial.value is not None:
            metrics.append(("objective_value", trial.value, 0))
        if trial.seconds is not None:
            metrics.append(("seconds", trial.seconds, 0))
        self._log(run.info.run_id, params=trial.params, metrics=metrics, at=now)
        status = {"complete": "FINISHED", "pruned": "KILLED"}.get(trial.state, "FAILED")
        client.set_terminated(run.info.run_id, status=status, end_time=now)

    def study_finished(self, summary: Mapping[str, Any]) -> None:
        """Record the session's outcome on its parent run and close it."""
        if self._parent is None:
            return
        client = self._mlflow()
        now = _millis(self._clock.now())
        metrics = [
            (key, float(value), 0)
            for key, value in summary.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        best = summary.get("best_params") or {}
        self._log(
            self._parent,
            params={f"best.{key}": value for key, value in dict(best).items()},
            metrics=metrics,
            at=now,
        )
        client.set_terminated(self._parent, status="FINISHED", end_time=now)
        self._parent = None

    def _log(
        self,
        run_id: str,
        *,
        params: Mapping[str, Any] | None = None,
        metrics: Sequence[tuple[str, float, int]] = (),
        at: int | None = None,
    ) -> None:
        _import_mlflow()
        from mlflow.entities import Metric, Param

        when = at if at is not None else _millis(self._clock.now())
        self._mlflow().log_batch(
            run_id,
            metrics=[Metric(key, value, when, step) for key, value, step in metrics],
            params=[Param(key, _param(value)) for key, value in (params or {}).items()],
        )
