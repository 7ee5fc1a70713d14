"""The one place configuration is read: environment (``FRAUDOPS_*``) and an optional YAML file.

Settings are read once at the edge (the CLI, later the app factory) and passed inward as
plain values; nothing in the package reads the environment on its own. Unknown keys fail
at start-up, so a typo in a config file is an error rather than a silent default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
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
    file: Path | None = None
    """A policy file (``learn.thresholds.write_policy_file``) whose thresholds replace the
    two above; read and checked when the service starts."""

    @model_validator(mode="after")
    def _ordered(self) -> PolicySettings:
        if self.review_threshold > self.decline_threshold:
            raise ValueError("review_threshold must not exceed decline_threshold")
        given = self.model_fields_set & {"review_threshold", "decline_threshold"}
        if self.file is not None and given:
            raise ValueError(
                f"set either a policy file or {' and '.join(sorted(given))}, not both:"
                " the file's thresholds would silently replace them"
            )
        return self


class FeatureSettings(_Section):
    """How the feature definition is parameterised."""

    label_delay_days: int = Field(default=7, ge=0, le=90)


class ServiceSettings(_Section):
    """The decision service: where it listens and the limits every decision runs under."""

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    deadline_ms: float = Field(default=50.0, gt=0.0)
    model_timeout_ms: float = Field(default=20.0, gt=0.0)
    store_timeout_ms: float = Field(default=20.0, gt=0.0)
    max_in_flight: int = Field(default=64, ge=1)
    max_loop_lag_ms: float = Field(default=25.0, gt=0.0)
    """Shed while the event loop runs this late (smoothed): work is queueing uncounted."""
    batch_max_items: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)
    """The largest request body read; a larger one is refused (413) before it is parsed."""
    max_future_s: float = Field(default=300.0, ge=0.0)
    """How far ahead of the service's clock a transaction's time (or a label's ``known_at``)
    may be; further is refused (422): a time in the future would age the windows of its card
    and terminal by that much, and a payment cannot have happened yet."""
    warmup_rows: int = Field(default=200, ge=0)
    shutdown_grace_s: float = Field(default=10.0, ge=0.0)
    fallback_model_dir: Path | None = None
    model_alias: str | None = None
    """Serve the registry's model under this alias (``champion``) instead of ``model_dir``,
    and follow it: when the alias moves, the new model is loaded, warmed and swapped in
    between decisions, without a restart."""
    registry_dir: Path | None = None
    """The registry ``model_alias`` is read from; None: ``<data_dir>/registry``."""
    alias_poll_s: float = Field(default=10.0, gt=0.0)
    """How often the registry is asked where ``model_alias`` points."""
    challenger_alias: str | None = None
    """Score the registry's model under this alias (``challenger``) in shadow, and follow it
    as ``model_alias`` is followed; instead of ``challenger_model_dir``."""
    challenger_model_dir: Path | None = None
    """A challenger scored in shadow after each decision (logged to ``shadow_scores`` in the
    decision log's database, never acted on); None: no shadow."""
    shadow_queue_size: int = Field(default=10_000, ge=1)
    """Decided transactions waiting for the shadow challenger; beyond it they are dropped."""
    rules_file: Path | None = None
    """A YAML rule set; None means the rule set shipped with the package."""
    static_review_amount: float = Field(default=500.0, ge=0.0)
    """The last fallback reviews transactions at or above this amount and approves the rest."""
    isolate_models: bool = False
    """Run every model on its own threads, even those whose latency is bounded."""
    recent_decisions: int = Field(default=100_000, ge=0)
    """How many recent decisions are kept in memory for idempotent retries and lookups."""
    replica_recent_s: float = Field(default=300.0, ge=0.0)
    """With the state in Redis: how long any replica answers a retry with the first
    decision, kept in Redis (about 350 bytes a transaction; 0: off, and each replica then
    knows only its own)."""

    @model_validator(mode="after")
    def _one_challenger(self) -> ServiceSettings:
        if self.challenger_alias is not None and self.challenger_model_dir is not None:
            raise ValueError(
                "set either challenger_alias or challenger_model_dir, not both: the shadow"
                " scores one challenger"
            )
        return self


class BreakerSettings(_Section):
    """When a circuit breaker opens, and how long before it lets one call through again."""

    failure_threshold: int = Field(default=5, ge=1)
    reset_timeout_s: float = Field(default=5.0, gt=0.0)


class ScoreGuardSettings(_Section):
    """How many identical scores in a row mean a model is stuck on a constant."""

    constant_run: int = Field(default=200, ge=2)


class StateSettings(_Section):
    """Where the online feature state lives: this process, or Redis shared by replicas."""

    backend: Literal["memory", "redis"] = "memory"
    redis_url: str = "redis://127.0.0.1:6379/0"
    key_prefix: str = "fraudops"
    write_delay_ms: float = Field(default=5.0, ge=0.0)
    """Redis: how long a transaction's state write may wait to share the next read's round
    trip (0 writes at once); a crash loses at most this much of the state's writes."""


class DecisionLogSettings(_Section):
    """The append-only decision log and the buffer that carries it through outages."""

    url: str = "sqlite:///data/decisions.db"
    buffer_size: int = Field(default=20_000, ge=1)
    batch_size: int = Field(default=500, ge=1)
    flush_interval_ms: float = Field(default=200.0, gt=0.0)
    spill_dir: Path = Path("data/decision-spill")
    """Where decisions go when the buffer overflows; replayed into the database later."""


class ApiSettings(_Section):
    """Who may call the API: SHA-256 hashes of the API keys (``fraudops keys new``)."""

    key_hashes: tuple[str, ...] = ()
    allow_anonymous: bool = False
    """Serve without keys; for a laptop only, and logged loudly at start."""


class ReviewSettings(_Section):
    """The review desk: where cases, users and the audit trail live, and how the queue runs."""

    url: str | None = None
    """The review database (SQLite or PostgreSQL URL); None: ``<data_dir>/review.db``."""
    audit_sample_rate: float = Field(default=0.002, ge=0.0, le=1.0)
    """The share of approved decisions also reviewed, so missed fraud can be estimated."""
    sla_minutes: int = Field(default=240, ge=1)
    """How long after its decision a case is due."""
    daily_capacity: int = Field(default=100, ge=0)
    """Review cases the team can work in a day."""
    lock_minutes: int = Field(default=15, ge=1)
    """How long a case stays locked to the analyst who opened it, unless renewed."""
    intake_interval_s: float = Field(default=1.0, gt=0.0)
    intake_settle_s: float = Field(default=30.0, ge=0.0)
    """Decisions younger than this are left for the next pass (they may still be buffered)."""
    intake_batch_size: int = Field(default=500, ge=1)
    session_secret: SecretStr | None = None
    """Signs the review UI's session cookies; the UI does not start without one."""
    session_max_age_s: int = Field(default=8 * 3600, ge=60)
    sign_in_max_failures: int = Field(default=5, ge=1)
    """Failed sign-ins a username may have within ``sign_in_window_s`` before it is refused
    (429)."""
    sign_in_max_client_failures: int = Field(default=25, ge=1)
    """Failed sign-ins an address may have within ``sign_in_window_s``, across every username
    tried from it, before it is refused (429): well above the per-username limit, since a
    whole office can share one address and one analyst's typos must not lock out the rest."""
    sign_in_window_s: float = Field(default=900.0, gt=0.0)

    def database_url(self, data_dir: Path) -> str:
        """The review database's URL: ``url``, else a SQLite file under ``data_dir``."""
        return self.url or f"sqlite:///{data_dir / 'review.db'}"


class ObservabilitySettings(_Section):
    """Logs, traces and metrics."""

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    otlp_endpoint: str | None = None
    """An OTLP/HTTP traces endpoint (``http://collector:4318/v1/traces``); None: no export."""
    service_name: str = "fraudops"
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    """The share of traces exported when an OTLP endpoint is set."""


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
    service: ServiceSettings = ServiceSettings()
    breaker: BreakerSettings = BreakerSettings()
    score_guard: ScoreGuardSettings = ScoreGuardSettings()
    state: StateSettings = StateSettings()
    decision_log: DecisionLogSettings = DecisionLogSettings()
    api: ApiSettings = ApiSettings()
    review: ReviewSettings = ReviewSettings()
    observability: ObservabilitySettings = ObservabilitySettings()

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
