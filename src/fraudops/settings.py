"""The one place configuration is read: environment (``FRAUDOPS_*``) and an optional YAML file.

Settings are read once at the edge (the CLI, later the app factory) and passed inward as
plain values; nothing in the package reads the environment on its own. Unknown keys fail
at start-up, so a typo in a config file is an error rather than a silent default.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

CONFIG_FILE_ENV = "FRAUDOPS_CONFIG"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicySettings(_Section):
    """Thresholds that turn a calibrated fraud probability into an action."""

    review_threshold: float = Field(default=0.2, ge=0.0, le=1.0)
    decline_threshold: float = Field(default=0.8, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> PolicySettings:
        if self.review_threshold > self.decline_threshold:
            raise ValueError("review_threshold must not exceed decline_threshold")
        return self


class FeatureSettings(_Section):
    """How the feature definition is parameterised."""

    label_delay_days: int = Field(default=7, ge=0, le=90)


class Settings(BaseSettings):
    """Everything fraudops can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix="FRAUDOPS_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Path("data")
    lake_dir: Path = Path("data/lake")
    model_dir: Path = Path("models/latest")
    policy: PolicySettings = PolicySettings()
    features: FeatureSettings = FeatureSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        config_file = os.environ.get(CONFIG_FILE_ENV)
        if config_file:
            sources += (YamlConfigSettingsSource(settings_cls, yaml_file=Path(config_file)),)
        return sources


def load_settings() -> Settings:
    """Read settings from the environment and ``$FRAUDOPS_CONFIG``; raise ConfigError if bad."""
    from pydantic import ValidationError

    from fraudops.errors import ConfigError, validation_problems

    config_file = os.environ.get(CONFIG_FILE_ENV)
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"{CONFIG_FILE_ENV}={config_file}: no such file")
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(f"invalid configuration: {validation_problems(exc)}") from exc
