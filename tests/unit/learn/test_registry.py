"""The MLflow-backed model registry: versions, lineage, aliases, their history and rollback."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from fraudops.clock import ManualClock
from fraudops.errors import (
    AliasMovedError,
    InputError,
    ModelError,
    ModelNotFoundError,
    StoreError,
)
from fraudops.learn.artifact import directory_files, load_model_dir
from fraudops.learn.registry import (
    AliasChange,
    Lineage,
    MlflowRegistry,
    Registry,
    lineage_from_model_dir,
    open_registry,
    registry_dir,
)
from fraudops.settings import ServiceSettings, Settings
from tests.conftest import TrainedLake
from tests.services import postgres_schema_url
from tests.unit.learn.mlflow_store import fresh_mlflow_db

START = datetime(2018, 10, 1, 9, 0, tzinfo=UTC)


def lineage(trained_by: str = "ana", ap: float = 0.72) -> Lineage:
    """A lineage as training would record it."""
    return Lineage(
        train_start=date(2018, 8, 15),
        train_end=date(2018, 8, 21),
        feature_definition_hash="f" * 64,
        code_version="0.1.0",
        git_commit="abc123def456",
        metrics={"average_precision": ap, "card_precision_at_100": 0.31},
        trained_by=trained_by,
        created_at=START - timedelta(hours=1),
        artifact_version="lgbm-20181001-0123abcd",
    )


def model_dir(root: Path, text: str) -> Path:
    """A model directory with a model file, a manifest and a nested file."""
    root.mkdir(parents=True)
    (root / "model.txt").write_text(text, encoding="utf-8")
    (root / "manifest.json").write_text(json.dumps({"model": text}), encoding="utf-8")
    (root / "extra").mkdir()
    (root / "extra" / "calibration.json").write_text("[0.1, 0.9]\n", encoding="utf-8")
    return root


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when a test moves it."""
    return ManualClock(START)


@pytest.fixture
def registry(tmp_path: Path, clock: ManualClock) -> MlflowRegistry:
    """An empty registry on its own SQLite database."""
    uri = fresh_mlflow_db(tmp_path / "registry")
    return MlflowRegistry(
        uri,
        artifact_root=tmp_path / "registry" / "artifacts",
        cache_dir=tmp_path / "registry" / "cache",
        clock=clock,
    )


@pytest.fixture(scope="session")
def three_versions(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry directory holding versions 1, 2 and 3 (registered once per session)."""
    root = tmp_path_factory.mktemp("three")
    registry = MlflowRegistry(
        fresh_mlflow_db(root / "registry"),
        artifact_root=root / "registry" / "artifacts",
        cache_dir=root / "registry" / "cache",
        clock=ManualClock(START),
    )
    for n in (1, 2, 3):
        registry.register(model_dir(root / f"m{n}", f"model {n}"), lineage=lineage(ap=n / 10))
    return root / "registry"


@pytest.fixture
def three(three_versions: Path, tmp_path: Path, clock: ManualClock) -> MlflowRegistry:
    """A registry of its own holding versions 1, 2 and 3 (their files shared, read only)."""
    database = tmp_path / "mlflow.db"
    shutil.copyfile(three_versions / "mlflow.db", database)
    return MlflowRegistry(
        f"sqlite:///{database}",
        artifact_root=three_versions / "artifacts",
        cache_dir=tmp_path / "cache",
        clock=clock,
    )


def test_mlflow_registry_is_a_registry(registry: MlflowRegistry) -> None:
    """MlflowRegistry implements the Registry protocol (checked by mypy, used by callers)."""
    seam: Registry = registry
    assert [] == seam.versions()


def test_register_keeps_lineage_and_numbers_versions(
    registry: MlflowRegistry, tmp_path: Path
) -> None:
    """Each registration is the next version, and reads back with the lineage it was given."""
    first = registry.register(model_dir(tmp_path / "a", "a"), lineage=lineage("ana"))
    second = registry.register(model_dir(tmp_path / "b", "b"), lineage=lineage("ben"))
    assert [(1, "ana"), (2, "ben")] == [
        (v.version, v.lineage.trained_by) for v in registry.versions()
    ]
    assert lineage("ana") == first.lineage == registry.get(1).lineage
    assert (START, ()) == (second.registered_at, second.aliases)


def test_load_dir_gives_the_registered_files(registry: MlflowRegistry, tmp_path: Path) -> None:
    """load_dir hands out a directory whose files match the registered ones by SHA-256."""
    source = model_dir(tmp_path / "m", "the model")
    registry.register(source, lineage=lineage())
    registry.set_alias("champion", 1, actor="ana", reason="first model")
    loaded = registry.load_dir("champion")
    assert directory_files(source) == directory_files(loaded)
    assert loaded == registry.load_dir(1)


def test_load_dir_serves_a_trained_model_to_its_loader(
    registry: MlflowRegistry, trained_lake: TrainedLake
) -> None:
    """A registered training output loads with the service's own loader, lineage intact."""
    found = lineage_from_model_dir(trained_lake.model_dir, trained_by="ci")
    registered = registry.register(trained_lake.model_dir, lineage=found)
    registry.set_alias("champion", registered.version, actor="ci", reason="first model")
    artifact = load_model_dir(registry.load_dir("champion"))
    expected = load_model_dir(trained_lake.model_dir).manifest
    assert expected == artifact.manifest
    assert (expected.model_version, expected.train_start) == (
        registered.lineage.artifact_version,
        registered.lineage.train_start,
    )


def test_load_dir_replaces_a_tampered_copy(registry: MlflowRegistry, tmp_path: Path) -> None:
    """A cached copy that no longer matches is fetched again rather than handed out."""
    source = model_dir(tmp_path / "m", "the model")
    registry.register(source, lineage=lineage())
    loaded = registry.load_dir(1)
    (loaded / "model.txt").write_text("tampered", encoding="utf-8")
    assert directory_files(source) == directory_files(registry.load_dir(1))


def test_load_dir_refuses_a_corrupt_artifact_store(
    registry: MlflowRegistry, tmp_path: Path
) -> None:
    """If the stored files changed after registration, load_dir says so instead of serving."""
    registry.register(model_dir(tmp_path / "m", "the model"), lineage=lineage())
    [stored] = (registry.artifact_root).rglob("model.txt")
    stored.write_text("bit rot", encoding="utf-8")
    with pytest.raises(ModelError, match=r"differs from what was registered.*model\.txt"):
        registry.load_dir(1)


def test_aliases_point_at_versions(three: MlflowRegistry) -> None:
    """get(alias) is the version the alias was set to, and the version lists its aliases."""
    three.set_alias("champion", 2, actor="ana", reason="best AP")
    three.set_alias("challenger", 3, actor="ana", reason="shadow it")
    assert (2, 3) == (three.get("champion").version, three.get("challenger").version)
    assert [(), ("champion",), ("challenger",)] == [v.aliases for v in three.versions()]


def test_history_records_alias_moves_in_order(three: MlflowRegistry, clock: ManualClock) -> None:
    """Every move is recorded with where the alias came from, who moved it, why and when."""
    three.set_alias("champion", 1, actor="ana", reason="first")
    clock.advance(timedelta(days=1))
    three.set_alias("challenger", 3, actor="ben", reason="try it")
    clock.advance(timedelta(days=1))
    three.set_alias("champion", 2, actor="ben", reason="better AP")
    expected = [
        ("champion", None, 1, "ana", "first", "set", START),
        ("challenger", None, 3, "ben", "try it", "set", START + timedelta(days=1)),
        ("champion", 1, 2, "ben", "better AP", "set", START + timedelta(days=2)),
    ]
    assert expected == [
        (c.alias, c.previous_version, c.version, c.actor, c.reason, c.action, c.changed_at)
        for c in three.history()
    ]
    assert [1, 2] == [c.version for c in three.history("champion")]


def test_history_survives_reopening(three: MlflowRegistry) -> None:
    """The history lives in the database: another registry on the same URI reads it."""
    three.set_alias("champion", 1, actor="ana", reason="first")
    three.close()
    again = MlflowRegistry(
        three.tracking_uri, artifact_root=three.artifact_root, cache_dir=three.cache_dir
    )
    assert [(1, "ana")] == [(c.version, c.actor) for c in again.history()]


def test_rollback_restores_the_previous_champion(three: MlflowRegistry) -> None:
    """One rollback points the champion back at the version it held before its last move."""
    three.set_alias("champion", 1, actor="ana", reason="first")
    three.set_alias("champion", 3, actor="ana", reason="newer")
    previous = three.previous("champion")
    change = three.rollback("champion", actor="oncall", reason="v3 declines too much")
    assert (1, 1, 3, "rollback") == (
        previous.version if previous else None,
        three.get("champion").version,
        change.previous_version,
        change.action,
    )
    assert ["set", "set", "rollback"] == [c.action for c in three.history("champion")]


def test_rollback_without_an_earlier_version_is_refused(three: MlflowRegistry) -> None:
    """An alias set once has nothing to roll back to: a clear error, and nothing moves."""
    three.set_alias("champion", 2, actor="ana", reason="first")
    assert three.previous("champion") is None
    with pytest.raises(InputError, match="no earlier version"):
        three.rollback("champion", actor="ana", reason="undo")
    assert 2 == three.get("champion").version


def test_an_alias_moved_outside_the_registry_blocks_rollback(three: MlflowRegistry) -> None:
    """If MLflow's alias no longer matches the history, rollback says so instead of guessing."""
    three.set_alias("champion", 1, actor="ana", reason="first")
    three.set_alias("champion", 2, actor="ana", reason="second")
    three._client.set_registered_model_alias(three.name, "champion", "3")
    with pytest.raises(StoreError, match="moved outside the registry"):
        three.rollback("champion", actor="ana", reason="undo")


def test_a_move_decided_on_a_champion_that_has_moved_is_refused(three: MlflowRegistry) -> None:
    """A move expecting champion 1 while the champion is 2 is refused (409) and moves
    nothing: the caller decided on a view that is out of date."""
    three.set_alias("champion", 1, actor="ana", reason="first")
    three.set_alias("champion", 2, actor="ben", reason="second")
    with pytest.raises(AliasMovedError, match="the champion is version 2 now, not version 1"):
        three.set_alias("champion", 3, actor="ana", reason="third", expect={"champion": 1})
    assert (409, 2, 2) == (
        AliasMovedError.http_status,
        three.get("champion").version,
        len(three.history()),
    )


def test_a_promotion_of_a_challenger_that_has_moved_is_refused(three: MlflowRegistry) -> None:
    """Promoting version 2, the challenger the caller saw, after the challenger moved to 3
    is refused; so is expecting no champion when there is one."""
    three.set_alias("champion", 1, actor="ana", reason="first")
    three.set_alias("challenger", 2, actor="ana", reason="shadow it")
    three.set_alias("challenger", 3, actor="ben", reason="newer")
    seen = {"champion": 1, "challenger": 2}
    with pytest.raises(AliasMovedError, match="the challenger is version 3 now, not version 2"):
        three.set_alias("champion", 2, actor="lea", reason="better AP", expect=seen)
    with pytest.raises(AliasMovedError, match="the champion is version 1 now, not unset"):
        three.set_alias("champion", 3, actor="lea", reason="better AP", expect={"champion": None})
    assert 1 == three.get("champion").version


def test_a_second_rollback_decided_on_the_same_view_is_refused(three: MlflowRegistry) -> None:
    """Two rollbacks "to version 1" decided while 2 was champion: the first restores 1, the
    second is refused instead of rolling back to 2 again."""
    three.set_alias("champion", 1, actor="ana", reason="first")
    three.set_alias("champion", 2, actor="ana", reason="second")
    three.rollback("champion", actor="lea", reason="alerts", to=1, expect={"champion": 2})
    with pytest.raises(AliasMovedError, match="the champion is version 1 now, not version 2"):
        three.rollback("champion", actor="ada", reason="alerts", to=1, expect={"champion": 2})
    assert (1, ["set", "set", "rollback"]) == (
        three.get("champion").version,
        [c.action for c in three.history("champion")],
    )


def test_a_rollback_that_would_restore_another_version_is_refused(
    three: MlflowRegistry,
) -> None:
    """A rollback "to version 1" once the champion's history leads to 3 is refused, though
    the champion is the 2 the caller saw."""
    three.set_alias("champion", 1, actor="ana", reason="first")
    three.set_alias("champion", 2, actor="ana", reason="second")
    three.set_alias("champion", 3, actor="ben", reason="third")
    three.set_alias("champion", 2, actor="ben", reason="back to second")
    with pytest.raises(AliasMovedError, match="would restore version 3 now, not version 1"):
        three.rollback("champion", actor="lea", reason="alerts", to=1, expect={"champion": 2})
    assert (2, 4) == (three.get("champion").version, len(three.history()))


@pytest.fixture(params=["sqlite", "postgresql"])
def two_movers(
    request: pytest.FixtureRequest, three: MlflowRegistry, tmp_path: Path
) -> Iterator[tuple[MlflowRegistry, MlflowRegistry]]:
    """Two registries (as two processes would open) on one database, SQLite or PostgreSQL,
    holding versions 1 and 2, with champion 2 moved there from 1."""
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            uri, artifacts = three.tracking_uri, three.artifact_root
        else:
            uri, artifacts = stack.enter_context(postgres_schema_url()), tmp_path / "artifacts"
        first, second = (
            MlflowRegistry(uri, artifact_root=artifacts, cache_dir=tmp_path / name)
            for name in ("first", "second")
        )
        for registry in (first, second):
            stack.callback(registry.close)
        if request.param == "postgresql":
            for n in (1, 2):
                first.register(model_dir(tmp_path / f"m{n}", f"model {n}"), lineage=lineage())
        first.set_alias("champion", 1, actor="ana", reason="first")
        first.set_alias("champion", 2, actor="ana", reason="second")
        yield first, second


def test_of_two_concurrent_moves_decided_on_one_view_only_the_first_is_made(
    two_movers: tuple[MlflowRegistry, MlflowRegistry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """lea's and ada's rollbacks "to version 1" overlap: lea's reads the aliases and then
    takes half a second to move; ada's, started meanwhile, waits for it and is refused, so
    the champion is rolled back once."""
    lea, ada = two_movers
    read = lea._aliases

    def slow_read() -> dict[str, int]:
        aliases = read()
        time.sleep(0.5)
        return aliases

    monkeypatch.setattr(lea, "_aliases", slow_read)

    def roll_back(registry: MlflowRegistry, delay_s: float) -> AliasChange | str:
        time.sleep(delay_s)
        try:
            return registry.rollback(
                "champion", actor="x", reason="alerts", to=1, expect={"champion": 2}
            )
        except AliasMovedError as exc:
            return str(exc)

    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(roll_back, lea, 0.0)
        second = pool.submit(roll_back, ada, 0.1)
        made, refused = first.result(), second.result()
    assert isinstance(made, AliasChange), made
    assert "the champion is version 1 now, not version 2" in str(refused), refused
    assert (1, ["set", "set", "rollback"]) == (
        ada.get("champion").version,
        [c.action for c in ada.history("champion")],
    )


def test_the_registry_directory_is_the_services_else_under_data_dir(tmp_path: Path) -> None:
    """service.registry_dir (``fraudops serve --registry``) names the registry; without it,
    it is <data_dir>/registry."""
    named = Settings(data_dir=tmp_path, service=ServiceSettings(registry_dir=tmp_path / "reg"))
    assert (tmp_path / "reg", tmp_path / "registry") == (
        registry_dir(named),
        registry_dir(Settings(data_dir=tmp_path)),
    )


@pytest.mark.parametrize(
    ("alias_or_version", "error", "message"),
    [
        ("champoin", InputError, "unknown alias 'champoin'"),
        ("champion", ModelNotFoundError, "no version of fraudops is champion yet"),
        (7, ModelNotFoundError, "fraudops has no version 7"),
        ("7", ModelNotFoundError, "fraudops has no version 7"),
        (0, InputError, "model versions start at 1"),
    ],
)
def test_unknown_alias_or_version_is_a_clear_error(
    three: MlflowRegistry, alias_or_version: str | int, error: type[Exception], message: str
) -> None:
    """A misspelt alias, an unset alias and a missing version each say what was wrong."""
    with pytest.raises(error, match=message):
        three.get(alias_or_version)
    with pytest.raises(error, match=message):
        three.load_dir(alias_or_version)


def test_an_alias_cannot_point_at_a_missing_version(three: MlflowRegistry) -> None:
    """Setting an alias to a version that does not exist fails and records nothing."""
    with pytest.raises(ModelNotFoundError, match="no version 9"):
        three.set_alias("champion", 9, actor="ana", reason="typo")
    assert [] == three.history()


@pytest.mark.parametrize(
    ("actor", "reason", "message"),
    [(" ", "why", "needs an actor"), ("ana", "", "needs a reason")],
)
def test_moving_an_alias_needs_an_actor_and_a_reason(
    three: MlflowRegistry, actor: str, reason: str, message: str
) -> None:
    """An alias move without who or why is refused: the history must be able to say."""
    with pytest.raises(InputError, match=message):
        three.set_alias("champion", 1, actor=actor, reason=reason)


def test_setting_an_alias_to_its_current_version_is_refused(three: MlflowRegistry) -> None:
    """A move to where the alias already points is a mistake, not a history entry."""
    three.set_alias("champion", 1, actor="ana", reason="first")
    with pytest.raises(InputError, match="already points at version 1"):
        three.set_alias("champion", 1, actor="ana", reason="again")
    assert 1 == len(three.history())


def test_registering_a_missing_or_empty_directory_fails(
    registry: MlflowRegistry, tmp_path: Path
) -> None:
    """Only a directory with files can be registered."""
    with pytest.raises(ModelNotFoundError, match="not a directory"):
        registry.register(tmp_path / "absent", lineage=lineage())
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="holds no files"):
        registry.register(tmp_path / "empty", lineage=lineage())
    assert [] == registry.versions()


def test_lineage_from_a_model_directory(trained_lake: TrainedLake, tmp_path: Path) -> None:
    """The lineage of a training output is what its manifest records, plus who trained it."""
    manifest = load_model_dir(trained_lake.model_dir).manifest
    found = lineage_from_model_dir(trained_lake.model_dir, trained_by="ana")
    assert (
        manifest.train_start,
        manifest.train_end,
        manifest.feature_definition_hash,
        manifest.git_commit,
        manifest.metrics.mean,
        "ana",
    ) == (
        found.train_start,
        found.train_end,
        found.feature_definition_hash,
        found.git_commit,
        found.metrics,
        found.trained_by,
    )
    copy = tmp_path / "copy"
    shutil.copytree(trained_lake.model_dir, copy)
    (copy / "manifest.json").unlink()
    with pytest.raises(ModelNotFoundError, match=r"manifest\.json is missing"):
        lineage_from_model_dir(copy, trained_by="ana")


def test_a_registry_in_a_relative_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_registry works from a relative path, as the CLI's default data/registry is."""
    fresh_mlflow_db(tmp_path / "reg")
    model_dir(tmp_path / "m", "relative")
    monkeypatch.chdir(tmp_path)
    registry = open_registry(Path("reg"))
    registry.register(Path("m"), lineage=lineage())
    assert directory_files(Path("m")) == directory_files(registry.load_dir(1))


QUIET_RUN = """
from datetime import UTC, date, datetime
from pathlib import Path
from fraudops.learn.registry import Lineage, open_registry
registry = open_registry(Path("reg"))
lineage = Lineage(date(2018, 8, 15), date(2018, 8, 21), "f", "0.1.0", None, {}, "ana",
                  datetime(2018, 10, 1, tzinfo=UTC))
registry.register(Path("m"), lineage=lineage)
registry.set_alias("champion", 1, actor="ana", reason="first")
registry.load_dir("champion")
"""


@pytest.mark.slow
def test_mlflow_writes_only_where_it_is_told_and_says_nothing(tmp_path: Path) -> None:
    """No telemetry id in the home directory, nothing in the working directory but the
    registry asked for, and nothing on stderr (no table-creation chatter, no progress bar)."""
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    fresh_mlflow_db(work / "reg")
    model_dir(work / "m", "quiet")
    telling = ("MLFLOW_", "DO_NOT_TRACK", "XDG_", "CI", "PYTEST_", "GITHUB_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(telling)}
    env["HOME"] = str(home)
    done = subprocess.run(
        [sys.executable, "-c", QUIET_RUN],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (0, "") == (done.returncode, done.stderr)
    assert ([], ["m", "reg"]) == (sorted(os.listdir(home)), sorted(os.listdir(work)))
