"""Settings: read once from the environment and an optional YAML file, typos fail."""

import re
from pathlib import Path

import pytest

from fraudops.errors import ConfigError
from fraudops.settings import load_settings


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """A FRAUDOPS_* variable, nested with __, overrides the default."""
    monkeypatch.setenv("FRAUDOPS_POLICY__REVIEW_THRESHOLD", "0.3")
    assert load_settings().policy.review_threshold == 0.3


def test_yaml_file_is_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The file named by FRAUDOPS_CONFIG supplies values the environment does not."""
    config = tmp_path / "fraudops.yaml"
    config.write_text("lake_dir: /srv/lake\nfeatures:\n  label_delay_days: 3\n")
    monkeypatch.setenv("FRAUDOPS_CONFIG", str(config))
    settings = load_settings()
    assert (Path("/srv/lake"), 3) == (settings.lake_dir, settings.features.label_delay_days)


def test_unknown_key_in_file_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A typo in the config file is an error at start-up, not a silent default."""
    config = tmp_path / "fraudops.yaml"
    config.write_text("lake_dri: /srv/lake\n")
    monkeypatch.setenv("FRAUDOPS_CONFIG", str(config))
    with pytest.raises(ConfigError, match="lake_dri"):
        load_settings()


def test_thresholds_must_be_ordered(monkeypatch: pytest.MonkeyPatch) -> None:
    """A review threshold above the decline threshold is refused."""
    monkeypatch.setenv("FRAUDOPS_POLICY__REVIEW_THRESHOLD", "0.9")
    monkeypatch.setenv("FRAUDOPS_POLICY__DECLINE_THRESHOLD", "0.5")
    with pytest.raises(ConfigError, match="review_threshold"):
        load_settings()


def test_missing_config_file_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pointing FRAUDOPS_CONFIG at nothing names the path."""
    monkeypatch.setenv("FRAUDOPS_CONFIG", "/nonexistent/fraudops.yaml")
    with pytest.raises(ConfigError, match=re.escape("/nonexistent/fraudops.yaml")):
        load_settings()


def test_one_challenger_source_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """A challenger alias and a challenger directory together are refused at start-up."""
    monkeypatch.setenv("FRAUDOPS_SERVICE__CHALLENGER_ALIAS", "challenger")
    monkeypatch.setenv("FRAUDOPS_SERVICE__CHALLENGER_MODEL_DIR", "models/challenger")
    with pytest.raises(ConfigError, match="challenger_alias or challenger_model_dir"):
        load_settings()
