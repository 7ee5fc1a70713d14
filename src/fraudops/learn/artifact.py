"""The model directory: a LightGBM model and the manifest that says what it is.

Layout::

    model.txt       the booster in LightGBM's native text format
    manifest.json   version, features and their definition hash, label delay, training
                    window, metrics, code version, creation time, hyperparameters

The manifest is written last, so a directory with a manifest holds a whole model.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import lightgbm as lgb
from pydantic import BaseModel, ConfigDict, Field, ValidationError

import fraudops
from fraudops.errors import ModelError, ModelNotFoundError, validation_problems

MODEL_FILE = "model.txt"
MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ManifestMetrics(_Strict):
    """Test metrics from training: the mean and spread over folds, and each fold."""

    mean: dict[str, float]
    std: dict[str, float]
    folds: list[dict[str, Any]]


class Manifest(_Strict):
    """What a model directory holds; unknown keys are an error, not silently ignored."""

    format: int = Field(default=MANIFEST_FORMAT, ge=1, le=MANIFEST_FORMAT)
    model_version: str = Field(min_length=1)
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
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
    """A loaded model directory."""

    path: Path
    manifest: Manifest
    booster: lgb.Booster


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
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
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


def load_model_dir(path: Path, *, definition_hash: str | None = None) -> ModelArtifact:
    """Load and check a model directory.

    ``definition_hash`` is the feature definition the caller will compute features with;
    by default, the current definition at the model's label delay. A model trained on
    other features is refused rather than fed columns it never saw.
    """
    manifest = _read_manifest(path)
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
    try:
        booster = lgb.Booster(model_str=text)
    except lgb.basic.LightGBMError as exc:
        raise ModelError(f"{model_path}: not a LightGBM model: {exc}") from exc
    if list(booster.feature_name()) != manifest.feature_names:
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
