"""The model directory: the fitted model and the manifest that says what it is.

Two layouts, told apart by the manifest's ``format``::

    format 1 (a single LightGBM booster)
    model.txt         the booster in LightGBM's native text format
    manifest.json

    format 2 (what ``fraudops train`` writes: members, how they combine, the calibration)
    members/<name>/   each member in its library's native format (``learn.members``)
    members/<name>.onnx   the member exported to ONNX, for members the service does not
                      score natively
    manifest.json     the members, the combiner and calibrator (plain JSON), and every
                      file's SHA-256

Both manifests hold the version, features and their definition hash, label delay,
training window, metrics, code version, creation time and hyperparameters. The manifest
is written last, so a directory with a manifest holds a whole model, and every file's
hash is checked before any is parsed: LightGBM aborts the process on some damaged files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import lightgbm as lgb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import fraudops
from fraudops.errors import InputError, ModelError, ModelNotFoundError, validation_problems

MODEL_FILE = "model.txt"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 2
MEMBERS_DIR = "members"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ManifestMetrics(_Strict):
    """Test metrics from training: the mean and spread over folds, and each fold."""

    mean: dict[str, float]
    std: dict[str, float]
    folds: list[dict[str, Any]]


class MemberEntry(_Strict):
    """One member of a format-2 model: where its native files and its ONNX export lie."""

    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    directory: str = Field(min_length=1)
    onnx: str | None = None


class Manifest(_Strict):
    """What a model directory holds; unknown keys are an error, not silently ignored."""

    format: int = Field(default=1, ge=1, le=MANIFEST_FORMAT)
    model_version: str = Field(min_length=1)
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    """Format 1: of ``model.txt``; format 2: of the ``files`` table, so of every file."""
    files: dict[str, str] = Field(default_factory=dict)
    """Format 2: each file's path relative to the directory, and its SHA-256."""
    members: list[MemberEntry] = Field(default_factory=list)
    combiner: dict[str, Any] | None = None
    calibrator: dict[str, Any] | None = None
    feature_names: list[str] = Field(min_length=1)
    feature_definition_hash: str = Field(min_length=1)
    label_delay_days: int = Field(ge=0)
    train_start: date
    train_end: date
    metrics: ManifestMetrics
    code_version: str
    git_commit: str | None
    created_at: datetime
    hyperparameters: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ModelArtifact:
    """A loaded model directory.

    ``booster`` is the format-1 model, or a format-2 model's LightGBM member (the one whose
    per-feature contributions give the reasons); None when a format-2 model has none.
    """

    path: Path
    manifest: Manifest
    booster: lgb.Booster | None

    def file(self, relative: str) -> Path:
        """A file of the directory, named as in the manifest."""
        return self.path / relative


def model_text(booster: lgb.Booster) -> str:
    """The booster in LightGBM's native text format, as written to ``model.txt``."""
    return str(booster.model_to_string())


def sha256(text: str) -> str:
    """Hex SHA-256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_version(booster: lgb.Booster, created_at: datetime) -> str:
    """``lgbm-<YYYYMMDD>-<first 8 hex of the model text's SHA-256>``."""
    return f"lgbm-{created_at:%Y%m%d}-{sha256(model_text(booster))[:8]}"


def git_commit() -> str | None:
    """The short commit of the source tree, or None when git or the repository is absent."""
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(fraudops.__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = completed.stdout.strip()
    return commit or None


def code_version() -> str:
    """The installed fraudops version."""
    return fraudops.__version__


def new_manifest(
    booster: lgb.Booster,
    *,
    feature_definition_hash: str,
    label_delay_days: int,
    train_start: date,
    train_end: date,
    metrics: ManifestMetrics,
    hyperparameters: dict[str, Any],
    created_at: datetime,
) -> Manifest:
    """The manifest for a freshly trained ``booster``, versioned by its content and date."""
    return Manifest(
        model_version=model_version(booster, created_at),
        model_sha256=sha256(model_text(booster)),
        feature_names=list(booster.feature_name()),
        feature_definition_hash=feature_definition_hash,
        label_delay_days=label_delay_days,
        train_start=train_start,
        train_end=train_end,
        metrics=metrics,
        code_version=code_version(),
        git_commit=git_commit(),
        created_at=created_at,
        hyperparameters=hyperparameters,
    )


def _write(path: Path, text: str) -> None:
    _write_bytes(path, text.encode("utf-8"))


def _write_bytes(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def save_model_dir(path: Path, booster: lgb.Booster, manifest: Manifest) -> None:
    """Write ``booster`` and ``manifest`` into ``path`` (created if needed)."""
    if list(booster.feature_name()) != manifest.feature_names:
        raise ModelError(
            f"model features {booster.feature_name()} differ from the manifest's"
            f" {manifest.feature_names}"
        )
    text = model_text(booster)
    if sha256(text) != manifest.model_sha256:
        raise ModelError("the manifest's model_sha256 does not match the model being saved")
    path.mkdir(parents=True, exist_ok=True)
    (path / MANIFEST_FILE).unlink(missing_ok=True)
    _write(path / MODEL_FILE, text)
    _write(path / MANIFEST_FILE, manifest.model_dump_json(indent=2) + "\n")


def _read_manifest(path: Path) -> Manifest:
    manifest_path = path / MANIFEST_FILE
    if not path.is_dir():
        raise ModelNotFoundError(f"no model at {path}: not a directory")
    if not manifest_path.is_file():
        raise ModelNotFoundError(f"no model at {path}: {MANIFEST_FILE} is missing")
    try:
        raw = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{manifest_path}: unreadable manifest: {exc}") from exc
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ModelError(f"{manifest_path}: invalid manifest: {validation_problems(exc)}") from exc


class SavableMember(Protocol):
    """A fitted ensemble member as the model directory needs it (see ``learn.members``)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def feature_names(self) -> tuple[str, ...]: ...

    def save(self, directory: Path) -> None: ...


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def directory_files(root: Path) -> dict[str, str]:
    """Every file under ``root`` (POSIX relative path) and its SHA-256."""
    return {
        path.relative_to(root).as_posix(): file_sha256(path)
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _file_table(path: Path) -> dict[str, str]:
    """The files a format-2 manifest lists: all but itself and unfinished temporary files."""
    return {
        name: digest
        for name, digest in directory_files(path).items()
        if name != MANIFEST_FILE and not Path(name).name.startswith(".")
    }


def check_model_destination(path: Path, *, lake: Path | None = None) -> None:
    """Refuse ``path`` as the place to write a model unless replacing it loses nothing.

    Writing a model replaces the directory, so it must not exist yet, be empty, or hold a
    fraudops model (its manifest says so). ``lake`` is the directory the model is trained
    from: the model may lie neither in it nor around it.
    """
    if lake is not None:
        out, source = path.resolve(), lake.resolve()
        if out == source or source in out.parents or out in source.parents:
            raise InputError(
                f"--out {path}: the model cannot be written into the lake {lake}, inside it"
                " or around it; choose another directory"
            )
    if not path.exists():
        return
    if not path.is_dir():
        raise InputError(f"--out {path}: exists and is not a directory; choose another path")
    if any(path.iterdir()) and not (path / MANIFEST_FILE).is_file():
        raise InputError(
            f"--out {path}: a directory that holds no fraudops model ({MANIFEST_FILE} is"
            " missing); only a model directory or an empty one is replaced"
        )


def save_ensemble_dir(
    path: Path,
    members: Sequence[SavableMember],
    *,
    onnx: Mapping[str, bytes],
    combiner: dict[str, Any],
    calibrator: dict[str, Any] | None,
    feature_definition_hash: str,
    label_delay_days: int,
    train_start: date,
    train_end: date,
    metrics: ManifestMetrics,
    hyperparameters: dict[str, Any],
    created_at: datetime,
) -> Manifest:
    """Write a format-2 model into ``path`` and return its manifest.

    ``path`` must be absent, empty or an earlier model directory, which is replaced
    (``check_model_destination``): anything else is refused, never deleted.

    ``onnx`` maps member names to their ONNX export, for the members the service scores
    through ONNX Runtime. The version is content-addressed over every file written.
    """
    if not members:
        raise ModelError("a model needs at least one member")
    names = [member.name for member in members]
    if len(set(names)) != len(names):
        raise ModelError(f"member names must be unique, got {names}")
    feature_names = members[0].feature_names
    for member in members[1:]:
        if member.feature_names != feature_names:
            raise ModelError(
                f"member {member.name} reads {list(member.feature_names)}, not the first"
                f" member's {list(feature_names)}"
            )
    unknown = set(onnx) - set(names)
    if unknown:
        raise ModelError(f"ONNX exports for unknown members: {sorted(unknown)}")
    check_model_destination(path)
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)
    entries = []
    for member in members:
        directory = f"{MEMBERS_DIR}/{member.name}"
        member.save(path / directory)
        exported = None
        if member.name in onnx:
            exported = f"{MEMBERS_DIR}/{member.name}.onnx"
            _write_bytes(path / exported, onnx[member.name])
        entries.append(
            MemberEntry(name=member.name, kind=member.kind, directory=directory, onnx=exported)
        )
    files = _file_table(path)
    digest = sha256(json.dumps(files, sort_keys=True))
    prefix = "lgbm" if [e.kind for e in entries] == ["lightgbm"] else "ens"
    manifest = Manifest(
        format=MANIFEST_FORMAT,
        model_version=f"{prefix}-{created_at:%Y%m%d}-{digest[:8]}",
        model_sha256=digest,
        files=files,
        members=entries,
        combiner=combiner,
        calibrator=calibrator,
        feature_names=list(feature_names),
        feature_definition_hash=feature_definition_hash,
        label_delay_days=label_delay_days,
        train_start=train_start,
        train_end=train_end,
        metrics=metrics,
        code_version=code_version(),
        git_commit=git_commit(),
        created_at=created_at,
        hyperparameters=hyperparameters,
    )
    _write(path / MANIFEST_FILE, manifest.model_dump_json(indent=2) + "\n")
    return manifest


def _check_files(path: Path, manifest: Manifest) -> None:
    if sha256(json.dumps(manifest.files, sort_keys=True)) != manifest.model_sha256:
        raise ModelError(f"{path}: the manifest's files table does not match its model_sha256")
    for relative, expected in manifest.files.items():
        file = path / relative
        if not file.is_file():
            raise ModelError(f"{file}: listed in the manifest but missing")
        if file_sha256(file) != expected:
            raise ModelError(
                f"{file}: content does not match the manifest's SHA-256"
                " (corrupt or replaced model file)"
            )
    listed = {entry.directory for entry in manifest.members}
    for entry in manifest.members:
        if entry.onnx is not None and entry.onnx not in manifest.files:
            raise ModelError(f"{path}: member {entry.name}'s ONNX file is not in the manifest")
    if not manifest.members or len(listed) != len(manifest.members):
        raise ModelError(f"{path}: a format-2 manifest needs members with distinct directories")


def _parse_booster(text: str, where: Path) -> lgb.Booster:
    try:
        return lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as exc:
        raise ModelError(f"{where}: not a LightGBM model: {exc}") from exc


def load_model_dir(path: Path, *, definition_hash: str | None = None) -> ModelArtifact:
    """Load and check a model directory.

    ``definition_hash`` is the feature definition the caller will compute features with;
    by default, the current definition at the model's label delay. A model trained on
    other features is refused rather than fed columns it never saw.
    """
    manifest = _read_manifest(path)
    booster = (
        _load_format_1(path, manifest) if manifest.format == 1 else _load_format_2(path, manifest)
    )
    if booster is not None and list(booster.feature_name()) != manifest.feature_names:
        raise ModelError(
            f"{path}: model features {booster.feature_name()} differ from the manifest's"
            f" {manifest.feature_names}"
        )
    if definition_hash is None:
        from fraudops.learn.dataset import feature_definition

        definition_hash = feature_definition(manifest.label_delay_days).definition_hash()
    if definition_hash != manifest.feature_definition_hash:
        raise ModelError(
            f"{path}: model was trained on feature definition {manifest.feature_definition_hash}"
            f" but the current definition is {definition_hash}; retrain the model"
        )
    return ModelArtifact(path=path, manifest=manifest, booster=booster)


def _load_format_1(path: Path, manifest: Manifest) -> lgb.Booster:
    model_path = path / MODEL_FILE
    if not model_path.is_file():
        raise ModelError(f"{path}: {MODEL_FILE} is missing next to {MANIFEST_FILE}")
    try:
        text = model_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{model_path}: unreadable model: {exc}") from exc
    # LightGBM aborts the whole process on some malformed model files, so a damaged file
    # must be caught before it is parsed.
    if sha256(text) != manifest.model_sha256:
        raise ModelError(
            f"{model_path}: content does not match the manifest's model_sha256"
            " (corrupt or replaced model file)"
        )
    return _parse_booster(text, model_path)


def _load_format_2(path: Path, manifest: Manifest) -> lgb.Booster | None:
    try:
        _check_files(path, manifest)
    except OSError as exc:
        raise ModelError(f"{path}: unreadable model file: {exc}") from exc
    explainer = next((e for e in manifest.members if e.kind == "lightgbm"), None)
    if explainer is None:
        return None
    model_path = path / explainer.directory / MODEL_FILE
    try:
        text = model_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{model_path}: unreadable model: {exc}") from exc
    return _parse_booster(text, model_path)
