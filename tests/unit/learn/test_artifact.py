"""The model directory: written whole, read back checked, refused with a clear reason."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pytest

from fraudops.errors import InputError, ModelError, ModelNotFoundError
from fraudops.learn import artifact
from fraudops.learn.artifact import (
    ManifestMetrics,
    check_model_destination,
    load_model_dir,
    new_manifest,
    save_model_dir,
)

HASH = "a" * 64
CREATED = datetime(2018, 9, 1, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    """A tiny fitted model on three named features."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 3))
    y = (x[:, 0] > 1).astype(float)
    data = lgb.Dataset(x, label=y, feature_name=["f0", "f1", "f2"])
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "seed": 0}
    return lgb.train(params, data, num_boost_round=5)


def _save(path: Path, booster: lgb.Booster) -> None:
    manifest = new_manifest(
        booster,
        feature_definition_hash=HASH,
        label_delay_days=7,
        train_start=date(2018, 8, 15),
        train_end=date(2018, 8, 21),
        metrics=ManifestMetrics(mean={"roc_auc": 0.9}, std={"roc_auc": 0.01}, folds=[]),
        hyperparameters={"num_leaves": 7},
        created_at=CREATED,
    )
    save_model_dir(path, booster, manifest)


def test_model_directory_round_trips(tmp_path: Path, booster: lgb.Booster) -> None:
    """A saved model loads back with its manifest and predicts identically."""
    _save(tmp_path / "m", booster)
    loaded = load_model_dir(tmp_path / "m", definition_hash=HASH)
    x = np.random.default_rng(2).normal(size=(20, 3))
    assert (["f0", "f1", "f2"], date(2018, 8, 15), 7) == (
        loaded.manifest.feature_names,
        loaded.manifest.train_start,
        loaded.manifest.label_delay_days,
    )
    assert loaded.booster is not None
    np.testing.assert_array_equal(booster.predict(x), loaded.booster.predict(x))


def test_model_version_names_date_and_content(tmp_path: Path, booster: lgb.Booster) -> None:
    """The version is lgbm-<created date>-<8 hex of the model text hash>."""
    _save(tmp_path / "m", booster)
    manifest = load_model_dir(tmp_path / "m", definition_hash=HASH).manifest
    expected = f"lgbm-20180901-{manifest.model_sha256[:8]}"
    assert expected == manifest.model_version


def test_missing_directory_is_model_not_found(tmp_path: Path) -> None:
    """No directory at all is a ModelNotFoundError naming the path."""
    with pytest.raises(ModelNotFoundError, match="no model at"):
        load_model_dir(tmp_path / "nowhere", definition_hash=HASH)


def test_directory_without_manifest_is_model_not_found(tmp_path: Path) -> None:
    """A directory that never got its manifest holds no (whole) model."""
    (tmp_path / "m").mkdir()
    with pytest.raises(ModelNotFoundError, match=r"manifest\.json is missing"):
        load_model_dir(tmp_path / "m", definition_hash=HASH)


def test_unknown_manifest_key_is_refused(tmp_path: Path, booster: lgb.Booster) -> None:
    """A manifest with a key the schema does not know is a ModelError naming the key."""
    _save(tmp_path / "m", booster)
    path = tmp_path / "m" / "manifest.json"
    document = json.loads(path.read_text())
    document["treshold"] = 0.5
    path.write_text(json.dumps(document))
    with pytest.raises(ModelError, match="treshold"):
        load_model_dir(tmp_path / "m", definition_hash=HASH)


def test_feature_definition_mismatch_names_both_hashes(
    tmp_path: Path, booster: lgb.Booster
) -> None:
    """A model built on other features is refused, naming its hash and the current one."""
    _save(tmp_path / "m", booster)
    with pytest.raises(ModelError, match=f"{HASH}.*{'b' * 64}"):
        load_model_dir(tmp_path / "m", definition_hash="b" * 64)


def test_corrupt_model_file_is_refused_before_parsing(tmp_path: Path, booster: lgb.Booster) -> None:
    """A truncated model.txt is caught by its hash, not handed to LightGBM."""
    _save(tmp_path / "m", booster)
    model = tmp_path / "m" / "model.txt"
    model.write_text(model.read_text()[:200])
    with pytest.raises(ModelError, match="model_sha256"):
        load_model_dir(tmp_path / "m", definition_hash=HASH)


def test_git_commit_is_none_without_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a git executable the code version is still recorded, the commit is None."""
    monkeypatch.setenv("PATH", "")
    assert artifact.git_commit() is None


def _save_ensemble(path: Path, booster: lgb.Booster) -> None:
    from fraudops.learn.artifact import save_ensemble_dir
    from fraudops.learn.members import LightGBMMember

    save_ensemble_dir(
        path,
        [LightGBMMember("lightgbm", booster, {})],
        onnx={},
        combiner={"kind": "single", "member": "lightgbm"},
        calibrator=None,
        feature_definition_hash=HASH,
        label_delay_days=7,
        train_start=date(2018, 8, 15),
        train_end=date(2018, 8, 21),
        metrics=ManifestMetrics(mean={}, std={}, folds=[]),
        hyperparameters={},
        created_at=CREATED,
    )


def test_format_2_directory_round_trips(tmp_path: Path, booster: lgb.Booster) -> None:
    """A format-2 model loads back with its LightGBM member as the explaining booster."""
    _save_ensemble(tmp_path / "m", booster)
    loaded = load_model_dir(tmp_path / "m", definition_hash=HASH)
    x = np.random.default_rng(3).normal(size=(20, 3))
    assert loaded.booster is not None
    np.testing.assert_array_equal(booster.predict(x), loaded.booster.predict(x))


def test_format_2_corrupt_member_file_is_refused(tmp_path: Path, booster: lgb.Booster) -> None:
    """A damaged member file is caught by the manifest's hash before LightGBM parses it."""
    _save_ensemble(tmp_path / "m", booster)
    model = tmp_path / "m" / "members" / "lightgbm" / "model.txt"
    model.write_text(model.read_text()[:100])
    with pytest.raises(ModelError, match=r"model\.txt: content does not match"):
        load_model_dir(tmp_path / "m", definition_hash=HASH)


def test_format_2_missing_file_is_refused(tmp_path: Path, booster: lgb.Booster) -> None:
    """A file the manifest lists but the directory lacks is named in the error."""
    _save_ensemble(tmp_path / "m", booster)
    (tmp_path / "m" / "members" / "lightgbm" / "member.json").unlink()
    with pytest.raises(ModelError, match=r"member\.json: listed in the manifest but missing"):
        load_model_dir(tmp_path / "m", definition_hash=HASH)


def test_a_directory_that_is_not_a_model_is_never_replaced(
    tmp_path: Path, booster: lgb.Booster
) -> None:
    """Saving over a non-empty directory without a manifest is refused and deletes nothing."""
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="holds no fraudops model"):
        _save_ensemble(precious, booster)
    assert ["keep.txt"] == [p.name for p in precious.iterdir()]


def test_an_earlier_model_or_an_empty_directory_is_replaced(
    tmp_path: Path, booster: lgb.Booster
) -> None:
    """A model directory is overwritten by the next model, and an empty one is filled."""
    (tmp_path / "empty").mkdir()
    _save_ensemble(tmp_path / "model", booster)
    _save_ensemble(tmp_path / "model", booster)
    _save_ensemble(tmp_path / "empty", booster)
    assert [True, True] == [
        (tmp_path / name / "manifest.json").is_file() for name in ("model", "empty")
    ]


@pytest.mark.parametrize("out", [".", "sub/model", ".."])
def test_a_model_may_not_be_written_into_or_around_the_lake(tmp_path: Path, out: str) -> None:
    """The lake itself, a directory inside it and one holding it are refused as --out."""
    lake = tmp_path / "data" / "lake"
    lake.mkdir(parents=True)
    with pytest.raises(InputError, match="cannot be written into the lake"):
        check_model_destination(lake / out, lake=lake)
