"""Column mappings: which source column feeds which lake field, and how to read its values.

Two are built in: ``native`` (columns already named like the lake) and ``handbook`` (the
fraud handbook's ``TX_*`` columns, which the simulator writes). Anything else is a YAML file::

    name: acquirer-x
    columns:                      # lake field: source column
      transaction_id: txn_ref
      timestamp: created
      customer_id: card_hash
      terminal_id: pos_id
      amount: amount_cents
      is_fraud: chargeback
    optional: [is_fraud]          # named columns a file may lack
    defaults:                     # constants where the column is absent or empty
      currency: USD
    timestamp:
      zone: America/New_York      # zone of values written without one
      format: auto                # auto (ISO 8601), epoch_seconds, or a strptime pattern
    amount_scale: 0.01            # cents to currency units
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fraudops.errors import MappingError, validation_problems

Target = Literal[
    "transaction_id",
    "timestamp",
    "customer_id",
    "terminal_id",
    "amount",
    "currency",
    "channel",
    "country",
    "merchant_category",
    "terminal_x",
    "terminal_y",
    "is_fraud",
    "fraud_scenario",
    "label_known_at",
]
TextDefault = Literal["currency", "channel", "country", "merchant_category"]

REQUIRED: tuple[Target, ...] = (
    "transaction_id",
    "timestamp",
    "customer_id",
    "terminal_id",
    "amount",
)
"""Fields every mapping must name a column for."""

ALL_TARGETS: tuple[Target, ...] = get_args(Target)

EPOCH_SECONDS = "epoch_seconds"
AUTO = "auto"


class TimestampFormat(BaseModel):
    """How timestamp text is read: its format, and the zone of values written without one."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zone: str = "UTC"
    format: str = AUTO

    @field_validator("zone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {zone!r}") from exc
        return zone

    @field_validator("format")
    @classmethod
    def _usable_format(cls, fmt: str) -> str:
        if fmt not in (AUTO, EPOCH_SECONDS) and "%" not in fmt:
            raise ValueError(f"format {fmt!r} is not auto, epoch_seconds or a strptime pattern")
        return fmt


class ColumnMapping(BaseModel):
    """Which source column feeds each lake field, with defaults and value conventions."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "custom"
    columns: dict[Target, str]
    optional: frozenset[Target] = frozenset()
    defaults: dict[TextDefault, str] = Field(default_factory=dict)
    timestamp: TimestampFormat = TimestampFormat()
    amount_scale: float = Field(default=1.0, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> ColumnMapping:
        missing = [target for target in REQUIRED if target not in self.columns]
        if missing:
            raise ValueError(f"columns must name a source column for {', '.join(missing)}")
        if "currency" not in self.columns and "currency" not in self.defaults:
            raise ValueError(
                "currency needs a column or a default (e.g. defaults: {currency: EUR})"
            )
        required_optional = sorted(set(self.optional) & set(REQUIRED))
        if required_optional:
            raise ValueError(f"required fields cannot be optional: {', '.join(required_optional)}")
        unnamed = sorted(set(self.optional) - set(self.columns))
        if unnamed:
            raise ValueError(f"optional names fields without a column: {', '.join(unnamed)}")
        return self

    def source_column(self, target: Target) -> str | None:
        """The source column that feeds ``target``, if the mapping names one."""
        return self.columns.get(target)

    def required_columns(self) -> list[str]:
        """Source columns a file must have for this mapping to read it."""
        return [col for target, col in self.columns.items() if target not in self.optional]


NATIVE = ColumnMapping(
    name="native",
    columns={target: target for target in ALL_TARGETS},
    optional=frozenset(target for target in ALL_TARGETS if target not in REQUIRED),
    defaults={"currency": "EUR"},
)

HANDBOOK = ColumnMapping(
    name="handbook",
    columns={
        "transaction_id": "TRANSACTION_ID",
        "timestamp": "TX_DATETIME",
        "customer_id": "CUSTOMER_ID",
        "terminal_id": "TERMINAL_ID",
        "amount": "TX_AMOUNT",
        "is_fraud": "TX_FRAUD",
        "fraud_scenario": "TX_FRAUD_SCENARIO",
        "terminal_x": "TERMINAL_X",
        "terminal_y": "TERMINAL_Y",
    },
    optional=frozenset({"terminal_x", "terminal_y"}),
    defaults={"currency": "EUR"},
)

BUILTIN: dict[str, ColumnMapping] = {"native": NATIVE, "handbook": HANDBOOK}


def load_mapping(name_or_path: str) -> ColumnMapping:
    """A built-in mapping by name, or one read from a YAML file; MappingError if neither."""
    if name_or_path in BUILTIN:
        return BUILTIN[name_or_path]
    path = Path(name_or_path)
    if not path.is_file():
        raise MappingError(
            f"unknown mapping {name_or_path!r}: not a built-in ({', '.join(sorted(BUILTIN))})"
            " and no such file"
        )
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MappingError(f"mapping {path}: not readable YAML: {exc}") from exc
    if not isinstance(document, dict):
        raise MappingError(f"mapping {path}: expected a YAML mapping at the top level")
    document.setdefault("name", path.stem)
    try:
        return ColumnMapping.model_validate(document)
    except ValidationError as exc:
        raise MappingError(f"mapping {path}: {validation_problems(exc)}") from exc
