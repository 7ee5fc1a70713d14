"""``fraudops models``: the model registry's versions, lineage and aliases."""

from __future__ import annotations

import getpass
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from fraudops.cli._common import console, emit_json, fail_cleanly
from fraudops.errors import ModelError

if TYPE_CHECKING:
    from fraudops.learn.registry import MlflowRegistry

models = typer.Typer(
    help="The model registry: versions with their lineage, and the champion/challenger aliases.",
    no_args_is_help=True,
)

RegistryDir = Annotated[
    Path | None,
    typer.Option("--registry", help="Registry directory (default <data_dir>/registry)."),
]
RegistryUri = Annotated[
    str | None,
    typer.Option(help="Database URL of the registry (default sqlite in --registry)."),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _registry(root: Path | None, uri: str | None) -> MlflowRegistry:
    from fraudops.learn.registry import open_registry
    from fraudops.settings import load_settings

    return open_registry(root or load_settings().data_dir / "registry", uri=uri)


@models.command("list")
@fail_cleanly
def list_versions(
    registry: RegistryDir = None, registry_uri: RegistryUri = None, json_output: JsonOutput = False
) -> None:
    """List every registered version with its lineage and aliases."""
    versions = _registry(registry, registry_uri).versions()
    if json_output:
        emit_json({"versions": [version.as_dict() for version in versions]})
        return
    table = Table(title=f"registered models ({len(versions)})")
    for column in ("version", "aliases", "model", "trained", "by", "AP", "git"):
        table.add_column(column)
    for version in versions:
        lineage = version.lineage
        ap = lineage.metrics.get("average_precision")
        table.add_row(
            str(version.version),
            ", ".join(version.aliases),
            lineage.artifact_version or "",
            f"{lineage.train_start}…{lineage.train_end}",
            lineage.trained_by,
            "" if ap is None else f"{ap:.3f}",
            lineage.git_commit or "",
        )
    console.print(table)


@models.command("register")
@fail_cleanly
def register(
    model: Annotated[Path, typer.Argument(help="Model directory written by `fraudops train`.")],
    trained_by: Annotated[
        str | None, typer.Option(help="Who trained it (default: the current user).")
    ] = None,
    registry: RegistryDir = None,
    registry_uri: RegistryUri = None,
    json_output: JsonOutput = False,
) -> None:
    """Register a model directory as a new version, with the lineage its manifest records."""
    from fraudops.learn.registry import lineage_from_model_dir

    lineage = lineage_from_model_dir(model, trained_by=trained_by or getpass.getuser())
    version = _registry(registry, registry_uri).register(model, lineage=lineage)
    if json_output:
        emit_json(version.as_dict())
        return
    console.print(f"registered {model} as {version.name} version {version.version}")


@models.command("alias")
@fail_cleanly
def alias(
    name: Annotated[str, typer.Argument(help="champion or challenger.")],
    version: Annotated[int, typer.Argument(min=1, help="The version it should point at.")],
    actor: Annotated[str, typer.Option(help="Who is moving the alias.")],
    reason: Annotated[str, typer.Option(help="Why, for the history.")],
    registry: RegistryDir = None,
    registry_uri: RegistryUri = None,
    json_output: JsonOutput = False,
) -> None:
    """Point an alias at a version; the move is kept in the alias history."""
    change = _registry(registry, registry_uri).set_alias(name, version, actor=actor, reason=reason)
    if json_output:
        emit_json(change.as_dict())
        return
    before = "nothing" if change.previous_version is None else f"version {change.previous_version}"
    console.print(f"{change.alias}: {before} → version {change.version} ({change.actor})")


@models.command("history")
@fail_cleanly
def history(
    name: Annotated[
        str | None, typer.Argument(help="champion or challenger (default: both).")
    ] = None,
    registry: RegistryDir = None,
    registry_uri: RegistryUri = None,
    json_output: JsonOutput = False,
) -> None:
    """Every alias move, oldest first: which version, from which, who and why."""
    changes = _registry(registry, registry_uri).history(name)
    if json_output:
        emit_json({"changes": [change.as_dict() for change in changes]})
        return
    table = Table(title="alias history")
    for column in ("when", "alias", "from", "to", "action", "who", "why"):
        table.add_column(column)
    for change in changes:
        table.add_row(
            f"{change.changed_at:%Y-%m-%d %H:%M:%S}",
            change.alias,
            "" if change.previous_version is None else str(change.previous_version),
            str(change.version),
            change.action,
            change.actor,
            change.reason,
        )
    console.print(table)


@models.command("pull")
@fail_cleanly
def pull(
    name: Annotated[str, typer.Argument(help="champion, challenger or a version number.")],
    out: Annotated[Path, typer.Option(help="Directory to write the model into (replaced).")],
    registry: RegistryDir = None,
    registry_uri: RegistryUri = None,
    json_output: JsonOutput = False,
) -> None:
    """Copy the version an alias points at into a directory the service loads at start.

    The service then needs neither MLflow nor the registry database to start.
    """
    from fraudops.learn.registry import directory_files

    source_registry = _registry(registry, registry_uri)
    version = source_registry.get(name)
    source = source_registry.load_dir(version.version)
    staging = out.with_name(f".{out.name}.pulling")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    if directory_files(staging) != version.files:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelError(f"copy of {version.name} version {version.version} in {staging} differs")
    if out.exists():
        shutil.rmtree(out)
    staging.replace(out)
    if json_output:
        emit_json({"version": version.version, "aliases": list(version.aliases), "out": out})
        return
    console.print(f"{name}: version {version.version} → {out}")
