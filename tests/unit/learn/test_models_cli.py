"""``fraudops models`` on the command line: register, list, move an alias, read its history."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.learn.artifact import directory_files, load_model_dir
from fraudops.learn.registry import open_registry
from tests.conftest import TrainedLake
from tests.unit.learn.mlflow_store import fresh_mlflow_db

runner = CliRunner()


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """An empty registry directory."""
    fresh_mlflow_db(tmp_path / "registry")
    return tmp_path / "registry"


def make_champion(registry: Path, version: int) -> None:
    """Point the champion at ``version`` as a promotion would (the CLI's ``alias`` may not)."""
    store = open_registry(registry)
    try:
        store.set_alias("champion", version, actor="ana", reason="first model")
    finally:
        store.close()


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
        registry, "alias", "challenger", "1", "--actor", "ben", "--reason", "first model"
    )
    assert 0 == code, output
    code, output = models(registry, "list", "--json")
    [version] = json.loads(output)["versions"]
    expected = (1, ["challenger"], trained_lake.report.model_version)
    assert expected == (
        version["version"],
        version["aliases"],
        version["lineage"]["artifact_version"],
    )
    code, output = models(registry, "history", "--json")
    [change] = json.loads(output)["changes"]
    assert ("challenger", None, 1, "ben", "first model") == (
        change["alias"],
        change["previous_version"],
        change["version"],
        change["actor"],
        change["reason"],
    )
    code, output = models(registry, "list")
    assert (0, True) == (code, "challenger" in output)


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
    """``pull champion --out DIR`` replaces the model in DIR with the champion's files,
    loadable as they are."""
    models(registry, "register", str(trained_lake.model_dir), "--trained-by", "ana")
    make_champion(registry, 1)
    (tmp_path / "served").mkdir()
    (tmp_path / "served" / "manifest.json").write_text("{}", encoding="utf-8")
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
    (tmp_path / "served" / "manifest.json").write_text("{}", encoding="utf-8")
    (tmp_path / "served" / "model.txt").write_text("current", encoding="utf-8")
    code, output = models(registry, "pull", "champion", "--out", str(tmp_path / "served"))
    assert (2, True) == (code, "no version of fraudops is champion yet" in output)
    assert "current" == (tmp_path / "served" / "model.txt").read_text(encoding="utf-8")


def one_line_error(code: int, output: str) -> tuple[int, int, str]:
    """Exit code, how many lines were printed, and the first of them."""
    lines = output.strip().splitlines()
    return code, len(lines), lines[0] if lines else ""


def test_alias_cannot_move_the_champion(registry: Path, trained_lake: TrainedLake) -> None:
    """``alias champion`` would skip a lead's approval and the audit trail: it exits 2 in
    one line pointing to promote and rollback, and the champion stays unset; the challenger
    can still be set."""
    models(registry, "register", str(trained_lake.model_dir), "--trained-by", "ana")
    code, lines, line = one_line_error(
        *models(registry, "alias", "champion", "1", "--actor", "anyone", "--reason", "x")
    )
    assert (2, 1, True, True) == (
        code,
        lines,
        "fraudops models promote --approve" in line,
        "fraudops models rollback" in line,
    ), line
    code, output = models(registry, "list", "--json")
    assert [] == json.loads(output)["versions"][0]["aliases"]
    code, output = models(registry, "history", "--json")
    assert [] == json.loads(output)["changes"]
    code, output = models(registry, "alias", "challenger", "1", "--actor", "ana", "--reason", "y")
    assert 0 == code, output


def test_a_damaged_model_is_refused_at_registration(
    registry: Path, trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """A model whose member file was changed after training is refused when it is
    registered, naming the file, and nothing is registered."""
    damaged = tmp_path / "bad"
    shutil.copytree(trained_lake.model_dir, damaged)
    model_file = damaged / "members" / "lightgbm" / "model.txt"
    with model_file.open("a", encoding="utf-8") as handle:
        handle.write("garbage")
    code, lines, line = one_line_error(*models(registry, "register", str(damaged)))
    assert (2, 1, True) == (code, lines, str(model_file) in line), line
    code, output = models(registry, "list", "--json")
    assert [] == json.loads(output)["versions"]


def test_registering_the_same_model_again_returns_its_version(
    registry: Path, trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """The same model (by its model_version), registered again, even from a copy, keeps
    version 1 and says it was already registered; no second version is made."""
    first = models(registry, "register", str(trained_lake.model_dir), "--json")
    copy = tmp_path / "copy"
    shutil.copytree(trained_lake.model_dir, copy)
    again = models(registry, "register", str(copy), "--json")
    human = models(registry, "register", str(copy))
    _, output = models(registry, "list", "--json")
    assert [(1, False), (1, True)] == [
        (json.loads(out)["version"], json.loads(out)["already_registered"])
        for out in (first[1], again[1])
    ]
    assert (0, True, 1) == (
        human[0],
        "already registered as fraudops version 1" in human[1],
        len(json.loads(output)["versions"]),
    )


@pytest.mark.parametrize("command", [["list"], ["history"], ["pull", "1", "--out", "served"]])
def test_a_registry_that_is_not_there_is_refused_not_created(
    tmp_path: Path, command: list[str]
) -> None:
    """A mistyped --registry is one line naming it, not a new empty registry."""
    typo = tmp_path / "registyr"
    code, lines, line = one_line_error(*models(typo, *command))
    assert (2, 1, True, False) == (code, lines, str(typo) in line, typo.exists()), line


def test_a_registry_uri_to_a_missing_sqlite_file_is_refused(tmp_path: Path) -> None:
    """``--registry-uri sqlite:///typo.db`` names the file that is not there, creating none."""
    typo = tmp_path / "typo.db"
    result = runner.invoke(app, ["models", "list", "--registry-uri", f"sqlite:///{typo}"])
    code, lines, line = one_line_error(result.exit_code, result.output)
    assert (2, 1, True, False) == (code, lines, "does not exist" in line, typo.exists()), line


def test_pull_refuses_a_file_the_working_directory_and_a_foreign_directory(
    registry: Path, trained_lake: TrainedLake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``pull --out`` replaces only an absent, empty or model directory: a file, ``.`` and a
    directory of other things are each refused in one line, and left as they were."""
    models(registry, "register", str(trained_lake.model_dir))
    afile = tmp_path / "afile"
    afile.write_text("keep me", encoding="utf-8")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me too", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    outcomes = [
        one_line_error(*models(registry, "pull", "1", "--out", str(out)))[:2]
        for out in (afile, Path("."), precious)
    ]
    assert [(2, 1)] * 3 == outcomes
    assert ("keep me", ["notes.txt"]) == (
        afile.read_text(encoding="utf-8"),
        sorted(p.name for p in precious.iterdir()),
    )


def test_list_prints_its_table_whole_on_stdout(
    registry: Path, trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """``models list > file`` gets the table (it is the result, so it goes to stdout), with
    the model's version label whole rather than cut at 80 columns."""
    models(registry, "register", str(trained_lake.model_dir), "--trained-by", "ana")
    result = runner.invoke(app, ["models", "list", "--registry", str(registry)])
    assert (0, True, True) == (
        result.exit_code,
        trained_lake.report.model_version in result.stdout,
        "registered models (1)" in result.stdout,
    ), result.output


def test_history_of_a_version_number_says_it_takes_an_alias(registry: Path) -> None:
    """``history 3`` is refused saying it takes champion or challenger, not offering the
    version number it does not take."""
    code, output = models(registry, "history", "3")
    assert (2, True, False) == (
        code,
        "expected one of champion, challenger" in output,
        "version number" in output,
    ), output


def test_the_registry_defaults_to_the_services(
    registry: Path, trained_lake: TrainedLake, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --registry, the commands use ``service.registry_dir``: the registry the
    service follows."""
    models(registry, "register", str(trained_lake.model_dir))
    monkeypatch.setenv("FRAUDOPS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FRAUDOPS_SERVICE__REGISTRY_DIR", str(registry))
    result = runner.invoke(app, ["models", "list", "--json"])
    assert (0, 1) == (result.exit_code, len(json.loads(result.stdout)["versions"])), result.output
