"""The model registry: registered model versions, the champion and challenger aliases, and
the history of every alias move.

``Registry`` is the seam; ``MlflowRegistry`` keeps versions in MLflow's model registry
(SQLite by default, PostgreSQL by URI) with each model directory stored whole as the
artifacts of a registering run, and lineage as version tags.

MLflow keeps only where an alias points now, not where it pointed before, nor who moved
it or why; that history is an audit record and the basis of a one-step rollback, so it is
kept in a table of its own (``fraudops_alias_history``) in the same database: appended in
order, never edited, one backup with the versions it names, and readable with plain SQL.
MLflow tags would do neither well: they are mutable key/value pairs with no order.

A move can name where the aliases must point for it to go ahead (what the person deciding
saw), and is refused with :class:`AliasMovedError` if they point elsewhere by then. Moves
take a lock of the registry's database in turn, from reading the aliases to recording the
move, so two people deciding on the same view cannot both move the champion.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from fraudops.clock import Clock, SystemClock
from fraudops.errors import (
    AliasMovedError,
    InputError,
    ModelError,
    ModelNotFoundError,
    StoreError,
)
from fraudops.learn.artifact import _read_manifest, directory_files, load_model_dir
from fraudops.learn.tracking import experiment_id, mlflow_client, mlflow_error
from fraudops.sql import as_utc

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion as MlflowModelVersion

    from fraudops.settings import Settings

__all__ = [
    "ALIASES",
    "AliasChange",
    "Lineage",
    "MlflowRegistry",
    "ModelVersion",
    "Registration",
    "Registry",
    "lineage_from_model_dir",
    "open_registry",
    "register_once",
    "registry_dir",
]

Alias = Literal["champion", "challenger"]
ALIASES: tuple[Alias, ...] = ("champion", "challenger")
"""The aliases a version can hold: what the service decides with, and what shadows it."""

_TAG = "fraudops."


@dataclass(frozen=True, slots=True)
class Lineage:
    """Where a model came from: its data, features, code, results and who trained it."""

    train_start: date
    train_end: date
    feature_definition_hash: str
    code_version: str
    git_commit: str | None
    metrics: dict[str, float]
    trained_by: str
    created_at: datetime
    artifact_version: str | None = None
    """The model directory's own version label (the manifest's ``model_version``)."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        values = asdict(self)
        values["train_start"] = self.train_start.isoformat()
        values["train_end"] = self.train_end.isoformat()
        values["created_at"] = self.created_at.isoformat()
        return values

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Lineage:
        """The inverse of ``as_dict``."""
        return cls(
            train_start=date.fromisoformat(values["train_start"]),
            train_end=date.fromisoformat(values["train_end"]),
            feature_definition_hash=str(values["feature_definition_hash"]),
            code_version=str(values["code_version"]),
            git_commit=values.get("git_commit"),
            metrics={str(k): float(v) for k, v in dict(values["metrics"]).items()},
            trained_by=str(values["trained_by"]),
            created_at=datetime.fromisoformat(values["created_at"]),
            artifact_version=values.get("artifact_version"),
        )


def lineage_from_model_dir(model_dir: Path, *, trained_by: str) -> Lineage:
    """The lineage a fraudops model directory's manifest records, with who trained it."""
    manifest = _read_manifest(model_dir)
    return Lineage(
        train_start=manifest.train_start,
        train_end=manifest.train_end,
        feature_definition_hash=manifest.feature_definition_hash,
        code_version=manifest.code_version,
        git_commit=manifest.git_commit,
        metrics=dict(manifest.metrics.mean),
        trained_by=trained_by,
        created_at=manifest.created_at,
        artifact_version=manifest.model_version,
    )


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version: its number, lineage, the aliases it holds and its files."""

    name: str
    version: int
    lineage: Lineage
    aliases: tuple[str, ...]
    registered_at: datetime
    files: dict[str, str]
    """Every file of the model directory (relative path) and its SHA-256."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "name": self.name,
            "version": self.version,
            "aliases": list(self.aliases),
            "registered_at": self.registered_at.isoformat(),
            "lineage": self.lineage.as_dict(),
            "files": self.files,
        }


@dataclass(frozen=True, slots=True)
class AliasChange:
    """One move of an alias: to which version, from which, by whom, why and when."""

    alias: str
    version: int
    previous_version: int | None
    actor: str
    reason: str
    action: Literal["set", "rollback"]
    changed_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        values = asdict(self)
        values["changed_at"] = self.changed_at.isoformat()
        return values


@dataclass(frozen=True, slots=True)
class Registration:
    """What registering a model directory gave: its version, and whether that version was
    there before (the same model, by its manifest's ``model_version``, registered earlier)."""

    version: ModelVersion
    already_registered: bool

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values: the version's, and ``already_registered``."""
        return {**self.version.as_dict(), "already_registered": self.already_registered}


class Registry(Protocol):
    """Registered model versions, the aliases that pick them, and each alias's history."""

    def register(self, model_dir: Path, *, lineage: Lineage) -> ModelVersion: ...

    def get(self, alias_or_version: str | int) -> ModelVersion: ...

    def versions(self) -> list[ModelVersion]: ...

    def set_alias(
        self,
        alias: str,
        version: int,
        *,
        actor: str,
        reason: str,
        expect: Mapping[str, int | None] | None = None,
    ) -> AliasChange: ...

    def history(self, alias: str | None = None) -> list[AliasChange]: ...

    def previous(self, alias: str) -> ModelVersion | None: ...

    def rollback(
        self,
        alias: str,
        *,
        actor: str,
        reason: str,
        to: int | None = None,
        expect: Mapping[str, int | None] | None = None,
    ) -> AliasChange: ...

    def load_dir(self, alias_or_version: str | int) -> Path: ...


_metadata = sa.MetaData()
_history = sa.Table(
    "fraudops_alias_history",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_name", sa.String(256), nullable=False),
    sa.Column("alias", sa.String(64), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("previous_version", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(256), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
)


def register_once(registry: Registry, model_dir: Path, *, trained_by: str) -> Registration:
    """Register a fraudops model directory, checked, and only once.

    The directory is loaded as the service would load it (every file against the manifest's
    SHA-256, the model parsed, its features the current definition's), so a damaged model is
    refused here, naming the file, rather than when it is promoted or served. A model
    already registered (the same ``model_version``, which hashes the model's content) is
    not registered again: its existing version is returned.
    """
    load_model_dir(model_dir)
    lineage = lineage_from_model_dir(model_dir, trained_by=trained_by)
    for version in registry.versions():
        if version.lineage.artifact_version == lineage.artifact_version:
            return Registration(version, already_registered=True)
    return Registration(registry.register(model_dir, lineage=lineage), already_registered=False)


def registry_dir(settings: Settings) -> Path:
    """The registry directory the settings name: ``service.registry_dir`` (what ``fraudops
    serve --registry`` sets), else ``<data_dir>/registry``. The service follows its aliases
    there, and the review UI's models page reads and moves them there."""
    return settings.service.registry_dir or settings.data_dir / "registry"


def open_registry(root: Path, *, uri: str | None = None, name: str = "fraudops") -> MlflowRegistry:
    """The registry kept under ``root``: ``mlflow.db`` (unless ``uri`` names another database),
    ``artifacts/`` for the registered model directories, ``cache/`` for loaded copies."""
    root.mkdir(parents=True, exist_ok=True)
    database = uri or f"sqlite:///{(root / 'mlflow.db').resolve()}"
    return MlflowRegistry(
        database,
        artifact_root=root / "artifacts",
        cache_dir=root / "cache",
        name=name,
    )


class MlflowRegistry:
    """The registry on MLflow's tracking store and model registry, plus the alias history.

    ``tracking_uri`` is a database URL (``sqlite:///…/mlflow.db``, ``postgresql+psycopg://…``)
    holding both MLflow's tables and the alias history; ``artifact_root`` holds the model
    directories; ``cache_dir`` holds the copies ``load_dir`` hands out, checked file by
    file against the SHA-256 recorded at registration.
    """

    def __init__(
        self,
        tracking_uri: str,
        *,
        artifact_root: Path,
        cache_dir: Path,
        name: str = "fraudops",
        clock: Clock | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        self.cache_dir = cache_dir
        self.name = name
        self._clock = clock or SystemClock()
        self._client_: MlflowClient | None = None
        self._engine_: sa.Engine | None = None

    # --- connections, opened on first use -------------------------------------------

    @property
    def _client(self) -> MlflowClient:
        if self._client_ is None:
            self._client_ = mlflow_client(self.tracking_uri)
        return self._client_

    @property
    def _engine(self) -> sa.Engine:
        if self._engine_ is None:
            self._client  # noqa: B018 - MLflow creates (and migrates) the database first
            try:
                engine = sa.create_engine(self.tracking_uri)
                _metadata.create_all(engine, checkfirst=True)
            except SQLAlchemyError as exc:
                raise StoreError(f"registry database {self.tracking_uri}: {exc}") from exc
            self._engine_ = engine
        return self._engine_

    def close(self) -> None:
        """Release the history table's connections."""
        if self._engine_ is not None:
            self._engine_.dispose()
            self._engine_ = None

    # --- versions ----------------------------------------------------------------------

    def register(self, model_dir: Path, *, lineage: Lineage) -> ModelVersion:
        """Store every file of ``model_dir`` as a new version of the registered model."""
        MlflowException = mlflow_error()

        if not model_dir.is_dir():
            raise ModelNotFoundError(f"cannot register {model_dir}: not a directory")
        files = directory_files(model_dir)
        if not files:
            raise InputError(f"cannot register {model_dir}: the directory holds no files")
        client = self._client
        from mlflow.entities import Metric, Param

        now = self._clock.now()
        millis = int(now.timestamp() * 1000)
        params = {
            key: value
            for key, value in lineage.as_dict().items()
            if key not in ("metrics", "created_at") and value is not None
        }
        experiment = experiment_id(
            client, f"registry/{self.name}", self.artifact_root / "registry" / self.name
        )
        run = client.create_run(
            experiment,
            start_time=millis,
            tags={"fraudops.kind": "registration", "mlflow.user": lineage.trained_by},
            run_name=f"register {lineage.artifact_version or model_dir.name}",
        )
        run_id = run.info.run_id
        try:
            client.log_artifacts(run_id, str(model_dir), artifact_path="model")
            client.log_batch(
                run_id,
                metrics=[Metric(key, value, millis, 0) for key, value in lineage.metrics.items()],
                params=[Param(key, str(value)[:6000]) for key, value in params.items()],
            )
            client.set_terminated(run_id, status="FINISHED")
            try:
                client.create_registered_model(self.name)
            except MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            tags = {
                f"{_TAG}lineage": json.dumps(lineage.as_dict(), sort_keys=True),
                f"{_TAG}files": json.dumps(files, sort_keys=True),
                f"{_TAG}registered_at": now.isoformat(),
                f"{_TAG}feature_definition_hash": lineage.feature_definition_hash,
                f"{_TAG}git_commit": lineage.git_commit or "",
                f"{_TAG}trained_by": lineage.trained_by,
            }
            created = client.create_model_version(
                self.name, source=f"{run.info.artifact_uri}/model", run_id=run_id, tags=tags
            )
        except MlflowException as exc:
            client.set_terminated(run_id, status="FAILED")
            raise StoreError(f"registry {self.tracking_uri}: cannot register: {exc}") from exc
        return self.get(int(created.version))

    def get(self, alias_or_version: str | int) -> ModelVersion:
        """The version numbered ``alias_or_version``, or the one an alias points at."""
        MlflowException = mlflow_error()

        version = self._version_number(alias_or_version)
        try:
            if version is None:
                found = self._client.get_model_version_by_alias(self.name, str(alias_or_version))
            else:
                found = self._client.get_model_version(self.name, str(version))
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                raise ModelNotFoundError(self._missing(alias_or_version)) from exc
            raise StoreError(f"registry {self.tracking_uri}: {exc.message}") from exc
        return self._version(found, self._aliases())

    def versions(self) -> list[ModelVersion]:
        """Every registered version, oldest first."""
        aliases = self._aliases()
        found: list[MlflowModelVersion] = []
        token: str | None = None
        while True:
            page = self._client.search_model_versions(
                f"name = '{self.name}'", max_results=1000, page_token=token
            )
            found.extend(page)
            token = page.token
            if not token:
                break
        return sorted(
            (self._version(version, aliases) for version in found), key=lambda v: v.version
        )

    def load_dir(self, alias_or_version: str | int) -> Path:
        """A local copy of the version's model directory, for the service's own loaders.

        The copy is checked file by file against the SHA-256 recorded at registration,
        and reused while it still matches.
        """
        MlflowException = mlflow_error()

        version = self.get(alias_or_version)
        target = self.cache_dir / f"{self.name}-v{version.version}"
        if target.is_dir() and directory_files(target) == version.files:
            return target
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=self.cache_dir))
        try:
            found = self._client.get_model_version(self.name, str(version.version))
            if found.run_id is None:
                raise ModelError(f"registry version {version.version} names no run")
            downloaded = Path(
                self._client.download_artifacts(found.run_id, "model", dst_path=str(scratch))
            )
            copied = directory_files(downloaded)
            if copied != version.files:
                changed = sorted(set(copied.items()).symmetric_difference(version.files.items()))
                raise ModelError(
                    f"registry copy of {self.name} version {version.version} differs from"
                    f" what was registered (files {sorted({path for path, _ in changed})});"
                    " the artifact store is corrupt or was changed"
                )
            if target.exists():
                shutil.rmtree(target)
            try:
                downloaded.replace(target)
            except OSError:
                # Another process put its own checked copy there first; use that one.
                if not (target.is_dir() and directory_files(target) == version.files):
                    raise
        except MlflowException as exc:
            raise StoreError(
                f"registry {self.tracking_uri}: cannot fetch version {version.version}: {exc}"
            ) from exc
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        return target

    # --- aliases -------------------------------------------------------------------------

    def set_alias(
        self,
        alias: str,
        version: int,
        *,
        actor: str,
        reason: str,
        action: Literal["set", "rollback"] = "set",
        expect: Mapping[str, int | None] | None = None,
    ) -> AliasChange:
        """Point ``alias`` at ``version`` and record who moved it, from where, and why.

        ``expect`` is where aliases pointed when the caller decided (``{"champion": 2,
        "challenger": 3}``; None for "at nothing"): if one points elsewhere now, the move is
        refused with AliasMovedError and nothing moves.
        """
        self._check_move(alias, actor, reason, expect)
        with self._moving() as connection:
            aliases = self._expected(expect)
            return self._point(
                connection, alias, version, aliases.get(alias), actor, reason, action
            )

    def history(self, alias: str | None = None) -> list[AliasChange]:
        """Every alias move, oldest first; only ``alias``'s when given."""
        if alias is not None:
            self._check_alias(alias)
        query = sa.select(_history).where(_history.c.model_name == self.name)
        if alias is not None:
            query = query.where(_history.c.alias == alias)
        try:
            with self._engine.connect() as connection:
                rows = connection.execute(query.order_by(_history.c.id)).mappings().all()
        except SQLAlchemyError as exc:
            raise StoreError(f"registry {self.tracking_uri}: cannot read history: {exc}") from exc
        return [_change(row) for row in rows]

    def previous(self, alias: str) -> ModelVersion | None:
        """The version ``alias`` pointed at before its latest move; None if it never moved."""
        self._check_alias(alias)
        try:
            with self._engine.connect() as connection:
                latest = self._latest(connection, alias)
        except SQLAlchemyError as exc:
            raise StoreError(f"registry {self.tracking_uri}: cannot read history: {exc}") from exc
        before = self._before(alias, self._aliases().get(alias), latest)
        return None if before is None else self.get(before)

    def rollback(
        self,
        alias: str,
        *,
        actor: str,
        reason: str,
        to: int | None = None,
        expect: Mapping[str, int | None] | None = None,
    ) -> AliasChange:
        """Point ``alias`` back at the version it held before its latest move.

        ``to`` is the version the caller means to restore, and ``expect`` as for
        :meth:`set_alias`: if the history now leads elsewhere, or an alias has moved, the
        rollback is refused with AliasMovedError and nothing moves.
        """
        self._check_move(alias, actor, reason, expect)
        with self._moving() as connection:
            aliases = self._expected(expect)
            current = aliases.get(alias)
            before = self._before(alias, current, self._latest(connection, alias))
            if before is None:
                raise InputError(f"{alias} has no earlier version to roll back to")
            if to is not None and before != to:
                raise AliasMovedError(
                    f"rolling the {alias} back would restore version {before} now, not version"
                    f" {to}: moved since, so nothing was moved"
                )
            return self._point(connection, alias, before, current, actor, reason, "rollback")

    # --- moving an alias -----------------------------------------------------------------

    @contextmanager
    def _moving(self) -> Iterator[sa.Connection]:
        """A connection to the history table holding the registry's lock on alias moves
        until it commits or closes.

        A move takes it before it reads where the aliases point and keeps it until its
        history entry is committed, so the moves on one registry database happen one after
        another, each seeing the last. On PostgreSQL it is a lock of the history table
        (``SHARE ROW EXCLUSIVE``: it keeps out other movers, not readers). SQLite has one
        writer at a time, and MLflow writes the alias through a connection of its own, so
        there the lock is a file's beside the database (``<database>.moves.lock``), which
        every process on that host shares. Other databases get no lock: there, two moves at
        once can both pass their checks.
        """
        try:
            with self._engine.connect() as connection:
                database = connection.engine.url.database
                if connection.dialect.name == "postgresql":
                    table = connection.dialect.identifier_preparer.format_table(_history)
                    connection.execute(sa.text(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"))
                    yield connection
                elif connection.dialect.name == "sqlite" and database not in (None, "", ":memory:"):
                    with _file_lock(Path(f"{database}.moves.lock")):
                        yield connection
                else:
                    yield connection
        except SQLAlchemyError as exc:
            raise StoreError(f"registry {self.tracking_uri}: cannot move an alias: {exc}") from exc

    def _check_move(
        self, alias: str, actor: str, reason: str, expect: Mapping[str, int | None] | None
    ) -> None:
        self._check_alias(alias)
        for name in expect or {}:
            self._check_alias(name)
        if not actor.strip():
            raise InputError("moving an alias needs an actor: who is moving it")
        if not reason.strip():
            raise InputError("moving an alias needs a reason")

    def _expected(self, expect: Mapping[str, int | None] | None) -> dict[str, int]:
        """Where the aliases point now; AliasMovedError if one is not where ``expect`` says."""
        aliases = self._aliases()
        moved = [
            f"the {name} is {_pointing_at(aliases.get(name))} now, not {_pointing_at(seen)}"
            for name, seen in (expect or {}).items()
            if aliases.get(name) != seen
        ]
        if moved:
            raise AliasMovedError(f"{'; '.join(moved)}: moved since, so nothing was moved")
        return aliases

    def _latest(self, connection: sa.Connection, alias: str) -> AliasChange | None:
        """The latest recorded move of ``alias``."""
        row = (
            connection.execute(
                sa.select(_history)
                .where(_history.c.model_name == self.name, _history.c.alias == alias)
                .order_by(_history.c.id.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        return None if row is None else _change(row)

    def _before(self, alias: str, current: int | None, latest: AliasChange | None) -> int | None:
        """The version ``alias`` held before its latest move (None: it never moved, or came
        from nothing); StoreError if it points elsewhere than its history says."""
        if latest is None:
            return None
        if current != latest.version:
            raise StoreError(
                f"{alias} points at version {current} but its history ends at version"
                f" {latest.version}: it was moved outside the registry; set it again here"
            )
        return latest.previous_version

    def _point(
        self,
        connection: sa.Connection,
        alias: str,
        version: int,
        current: int | None,
        actor: str,
        reason: str,
        action: Literal["set", "rollback"],
    ) -> AliasChange:
        """Point ``alias`` (at ``current`` now) at ``version`` and commit its history entry
        on ``connection``, which holds the move lock; the alias is put back if the entry
        cannot be recorded."""
        target = self.get(version)
        if current == target.version:
            raise InputError(f"{alias} already points at version {target.version}")
        client = self._client
        client.set_registered_model_alias(self.name, alias, str(target.version))
        change = AliasChange(
            alias=alias,
            version=target.version,
            previous_version=current,
            actor=actor,
            reason=reason,
            action=action,
            changed_at=self._clock.now(),
        )
        try:
            connection.execute(_history.insert().values(model_name=self.name, **asdict(change)))
            connection.commit()
        except SQLAlchemyError as exc:
            # An alias move the history does not know of is an unaudited one: undo it.
            if current is None:
                client.delete_registered_model_alias(self.name, alias)
            else:
                client.set_registered_model_alias(self.name, alias, str(current))
            raise StoreError(
                f"registry {self.tracking_uri}: could not record moving {alias} to version"
                f" {target.version}, so it was not moved: {exc}"
            ) from exc
        return change

    # --- helpers -------------------------------------------------------------------------

    def _aliases(self) -> dict[str, int]:
        MlflowException = mlflow_error()

        try:
            model = self._client.get_registered_model(self.name)
        except MlflowException as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return {}
            raise StoreError(f"registry {self.tracking_uri}: {exc.message}") from exc
        return {alias: int(version) for alias, version in model.aliases.items()}

    def _version(self, found: MlflowModelVersion, aliases: Mapping[str, int]) -> ModelVersion:
        tags = found.tags
        try:
            lineage = Lineage.from_dict(json.loads(tags[f"{_TAG}lineage"]))
            files = {str(k): str(v) for k, v in json.loads(tags[f"{_TAG}files"]).items()}
            registered_at = datetime.fromisoformat(tags[f"{_TAG}registered_at"])
        except (KeyError, ValueError, TypeError) as exc:
            raise ModelError(
                f"{self.name} version {found.version} was not registered by fraudops"
                f" (its lineage tags are missing or malformed: {exc})"
            ) from exc
        number = int(found.version)
        return ModelVersion(
            name=self.name,
            version=number,
            lineage=lineage,
            aliases=tuple(sorted(a for a, v in aliases.items() if v == number)),
            registered_at=registered_at,
            files=files,
        )

    @staticmethod
    def _version_number(alias_or_version: str | int) -> int | None:
        if isinstance(alias_or_version, int):
            if alias_or_version < 1:
                raise InputError(f"model versions start at 1, got {alias_or_version}")
            return alias_or_version
        text = alias_or_version.strip()
        if text.isdigit():
            return MlflowRegistry._version_number(int(text))
        MlflowRegistry._check_alias(text, or_version=True)
        return None

    @staticmethod
    def _check_alias(alias: str, *, or_version: bool = False) -> None:
        if alias not in ALIASES:
            versions = " or a version number" if or_version else ""
            raise InputError(
                f"unknown alias {alias!r}: expected one of {', '.join(ALIASES)}{versions}"
            )

    def _missing(self, alias_or_version: str | int) -> str:
        if self._version_number(alias_or_version) is None:
            return f"no version of {self.name} is {alias_or_version} yet ({self.tracking_uri})"
        return f"{self.name} has no version {alias_or_version} ({self.tracking_uri})"


def _change(row: sa.RowMapping) -> AliasChange:
    """A row of the history table as the move it records."""
    return AliasChange(
        alias=row["alias"],
        version=row["version"],
        previous_version=row["previous_version"],
        actor=row["actor"],
        reason=row["reason"],
        action=row["action"],
        changed_at=as_utc(row["changed_at"]),
    )


def _pointing_at(version: int | None) -> str:
    return "unset" if version is None else f"version {version}"


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock of the file at ``path`` (created if missing): other processes,
    and other threads of this one, wait for it."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
