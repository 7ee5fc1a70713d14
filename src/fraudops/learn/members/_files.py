"""A member's directory: its model in the library's native format, and ``member.json``.

Layout::

    <native files>   e.g. model.txt (LightGBM), model.json (XGBoost), model.pt (PyTorch)
    member.json      kind, name, feature names, the learner's parameters and each
                     native file's SHA-256

``member.json`` is written last, so a directory with one holds a whole member, and the
hashes are checked before any file is parsed: some native loaders abort the process on a
damaged file instead of raising.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fraudops.errors import ModelError, ModelNotFoundError, validation_problems

MEMBER_FILE = "member.json"
MEMBER_FORMAT = 1


class MemberManifest(BaseModel):
    """What ``member.json`` holds; unknown keys are an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = Field(default=MEMBER_FORMAT, ge=1, le=MEMBER_FORMAT)
    kind: str = Field(min_length=1)
    name: str = Field(min_length=1)
    feature_names: list[str] = Field(min_length=1)
    params: dict[str, Any]
    files: dict[str, str]


@dataclass(frozen=True, slots=True)
class StoredMember:
    """A member directory as read back: its manifest and its native files' bytes."""

    manifest: MemberManifest
    files: dict[str, bytes]


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def _write(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def write_member(
    directory: Path,
    *,
    kind: str,
    name: str,
    feature_names: tuple[str, ...],
    params: Mapping[str, Any],
    files: Mapping[str, bytes],
) -> None:
    """Write ``files`` into ``directory`` (created if needed), then ``member.json``."""
    manifest = MemberManifest(
        kind=kind,
        name=name,
        feature_names=list(feature_names),
        params=dict(params),
        files={file: _sha256(content) for file, content in files.items()},
    )
    directory.mkdir(parents=True, exist_ok=True)
    (directory / MEMBER_FILE).unlink(missing_ok=True)
    for file, content in files.items():
        _write(directory / file, content)
    _write(directory / MEMBER_FILE, (manifest.model_dump_json(indent=2) + "\n").encode())


def read_member(directory: Path, kind: str) -> StoredMember:
    """Read and check a member directory written by ``write_member`` for ``kind``."""
    manifest_path = directory / MEMBER_FILE
    if not manifest_path.is_file():
        raise ModelNotFoundError(f"no {kind} member at {directory}: {MEMBER_FILE} is missing")
    try:
        raw = json.loads(manifest_path.read_bytes())
    except (OSError, ValueError) as exc:  # JSON and Unicode errors are ValueErrors
        raise ModelError(f"{manifest_path}: unreadable: {exc}") from exc
    try:
        manifest = MemberManifest.model_validate(raw)
    except ValidationError as exc:
        raise ModelError(f"{manifest_path}: {validation_problems(exc)}") from exc
    if manifest.kind != kind:
        raise ModelError(f"{directory} holds a {manifest.kind} member, not {kind}")
    files: dict[str, bytes] = {}
    for file, digest in manifest.files.items():
        try:
            content = (directory / file).read_bytes()
        except OSError as exc:
            raise ModelError(f"{directory / file}: unreadable: {exc}") from exc
        if _sha256(content) != digest:
            raise ModelError(
                f"{directory / file}: content does not match {MEMBER_FILE}'s SHA-256"
                " (corrupt or replaced file)"
            )
        files[file] = content
    return StoredMember(manifest=manifest, files=files)


def parse_json(stored: StoredMember, file: str, schema: type[BaseModel]) -> Any:
    """A native JSON file of ``stored`` validated against ``schema``, or ModelError."""
    try:
        return schema.model_validate_json(stored.files[file])
    except KeyError as exc:
        raise ModelError(f"{stored.manifest.name}: {file} is missing from the member") from exc
    except ValidationError as exc:
        raise ModelError(f"{stored.manifest.name}/{file}: {validation_problems(exc)}") from exc


def native_file(stored: StoredMember, file: str) -> bytes:
    """The bytes of one native file of ``stored``, or ModelError when it is not listed."""
    try:
        return stored.files[file]
    except KeyError as exc:
        raise ModelError(f"{stored.manifest.name}: {file} is missing from the member") from exc
