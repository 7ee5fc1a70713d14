"""Column mappings: the built-ins, YAML files, and loud failure on a bad one."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudops.errors import MappingError
from fraudops.ingest import load_mapping


def test_builtin_mappings_load_by_name() -> None:
    """``native`` and ``handbook`` are available by name."""
    expected = ("TX_DATETIME", "timestamp")
    actual = (
        load_mapping("handbook").columns["timestamp"],
        load_mapping("native").columns["timestamp"],
    )
    assert expected == actual


def test_yaml_mapping_reads_columns_defaults_zone_and_scale(tmp_path: Path) -> None:
    """A YAML file sets target→source columns, defaults, timestamp rules and amount scale."""
    path = tmp_path / "acquirer.yaml"
    path.write_text(
        "columns:\n"
        "  transaction_id: ref\n  timestamp: created\n  customer_id: card\n"
        "  terminal_id: pos\n  amount: cents\n"
        "defaults: {currency: USD}\n"
        "timestamp: {zone: America/New_York, format: '%d/%m/%Y %H:%M'}\n"
        "amount_scale: 0.01\n",
        encoding="utf-8",
    )
    mapping = load_mapping(str(path))
    expected = ("ref", "USD", "America/New_York", 0.01, "acquirer")
    assert expected == (
        mapping.columns["transaction_id"],
        mapping.defaults["currency"],
        mapping.timestamp.zone,
        mapping.amount_scale,
        mapping.name,
    )


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("colums: {}\n", "colums"),
        (
            "columns: {transaction_id: a, timestamp: b, customer_id: c, terminal_id: d,"
            " amount: e, amuont: f}\ndefaults: {currency: EUR}\n",
            "amuont",
        ),
        ("columns: {transaction_id: a}\ndefaults: {currency: EUR}\n", "amount"),
        (
            "columns: {transaction_id: a, timestamp: b, customer_id: c, terminal_id: d,"
            " amount: e}\n",
            "currency",
        ),
        (
            "columns: {transaction_id: a, timestamp: b, customer_id: c, terminal_id: d,"
            " amount: e}\ndefaults: {currency: EUR}\ntimestamp: {zone: Mars/Olympus}\n",
            "Mars/Olympus",
        ),
        ("- just\n- a list\n", "top level"),
        ("columns: [unclosed\n", "YAML"),
    ],
)
def test_bad_mapping_file_fails_naming_the_problem(
    tmp_path: Path, text: str, fragment: str
) -> None:
    """A typo, a missing required column, a bad zone or broken YAML raise MappingError."""
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingError) as caught:
        load_mapping(str(path))
    assert fragment in str(caught.value)


def test_unknown_mapping_name_fails_listing_builtins() -> None:
    """A name that is neither built in nor a file says what exists."""
    with pytest.raises(MappingError, match="handbook, native"):
        load_mapping("handbok")
