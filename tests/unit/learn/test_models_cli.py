"""``fraudops models`` on the command line: register, list, move an alias, read its history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.learn.artifact import directory_files, load_model_dir
from tests.conftest import TrainedLake
from tests.unit.learn.mlflow_store import fresh_mlflow_db

runner = CliRunner()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """An empty registry directory."""
    fresh_mlflow_db(tmp_path / "registry")
    return tmp_path / "registry"


def models(registry: Path, *args: str) -> tuple[int, str]:
    """Run ``fraudops models`` on ``registry``; the exit code and what it printed."""
    result = runner.invoke(app, ["models", *args, "--registry", str(registry)])
    return result.exit_code, result.output


def test_register_alias_list_and_history(registry: Path, trained_lake: TrainedLake) -> None:
    """A registered model lists with its lineage; moving an alias shows in list and history."""
    code, output = models(
        registry, "register", str(trained_lake.model_dir), "--trained-by", "ana", "--json"
    )
    assert 0 == code, output
    assert (1, "ana") == (
        json.loads(output)["version"],
        json.loads(output)["lineage"]["trained_by"],
    )
    code, output = models(
        registry, "alias", "champion", "1", "--actor", "ben", "--reason", "first model"
    )
    assert 0 == code, output
    code, output = models(registry, "list", "--json")
    [version] = json.loads(output)["versions"]
    expected = (1, ["champion"], trained_lake.report.model_version)
    assert expected == (
        version["version"],
        version["aliases"],
        version["lineage"]["artifact_version"],
    )
    code, output = models(registry, "history", "--json")
    [change] = json.loads(output)["changes"]
    assert ("champion", None, 1, "ben", "first model") == (
        change["alias"],
        change["previous_version"],
        change["version"],
        change["actor"],
        change["reason"],
    )
    code, output = models(registry, "list")
    assert (0, True) == (code, "champion" in output)


def test_an_unknown_alias_is_a_clean_error(registry: Path) -> None:
    """A misspelt alias exits 2 naming the aliases there are."""
    code, output = models(registry, "alias", "champoin", "1", "--actor", "ana", "--reason", "x")
    assert (2, True) == (code, "unknown alias 'champoin'" in output)


def test_an_alias_move_needs_a_reason(registry: Path) -> None:
    """Without --reason the command does not run: the history must say why."""
    code, _ = models(registry, "alias", "champion", "1", "--actor", "ana")
    assert 2 == code


def test_an_empty_registry_lists_nothing(registry: Path) -> None:
    """``list --json`` on a new registry is an empty list, not an error."""
    code, output = models(registry, "list", "--json")
    assert (0, []) == (code, json.loads(output)["versions"])


def test_pull_writes_the_champion_where_the_service_loads_it(
    registry: Path, trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """``pull champion --out DIR`` leaves the champion's files in DIR, loadable as they are."""
    models(registry, "register", str(trained_lake.model_dir), "--trained-by", "ana")
    models(registry, "alias", "champion", "1", "--actor", "ana", "--reason", "first")
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "stale.txt").write_text("old model", encoding="utf-8")
    code, output = models(registry, "pull", "champion", "--out", str(tmp_path / "served"))
    assert 0 == code, output
    assert directory_files(trained_lake.model_dir) == directory_files(tmp_path / "served")
    expected = load_model_dir(trained_lake.model_dir).manifest
    assert expected == load_model_dir(tmp_path / "served").manifest


def test_pull_of_an_unset_alias_fails_and_leaves_the_directory(
    registry: Path, tmp_path: Path
) -> None:
    """Pulling an alias no version holds exits 2 and does not touch the target."""
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "model.txt").write_text("current", encoding="utf-8")
    code, output = models(registry, "pull", "champion", "--out", str(tmp_path / "served"))
    assert (2, True) == (code, "no version of fraudops is champion yet" in output)
    assert "current" == (tmp_path / "served" / "model.txt").read_text(encoding="utf-8")
