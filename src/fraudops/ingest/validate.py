"""Record validation and cleaning, a column at a time.

Each field is parsed into clean values plus two masks (missing, bad); a record is rejected
for the first reason, in ``REASONS`` order, that any of its fields fails. Only rejected
records go through Python one by one, to write their human-readable detail.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fraudops.ingest.currency import ISO_4217
from fraudops.ingest.mapping import AUTO, EPOCH_SECONDS, ColumnMapping, Target, TimestampFormat
from fraudops.lake import TIMESTAMP
from fraudops.types import MAX_COORDINATE_KM

REASONS = (
    "missing_field",
    "bad_type",
    "bad_timestamp",
    "amount_out_of_range",
    "unknown_currency",
    "coordinate_out_of_range",
    "bad_label",
)
"""Reason codes a field check can give, in the order a record is judged by."""

Mask = npt.NDArray[np.bool_]

_NUMBER = r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$"
_INTEGRAL_TEXT = r"^([+-]?\d+)\.0*$"
_ZONED = r"\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\s*(?:[Zz]|[+-]\d{2}(?::?\d{2})?)$"
_LABEL_TEXT = {"0": False, "1": True, "false": False, "true": True, "0.0": False, "1.0": True}
_MAX_EXACT_INT = 2.0**53


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why one record (by row index in its source table) was turned away."""

    row: int
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class Checked:
    """The valid records of one table, cleaned, and the rejections of the rest.

    ``records`` holds ``_row`` (index in the source table), the transaction fields named as
    in the lake (without ``source``), and ``is_fraud``, ``scenario``, ``known_at`` (null
    where the record carries no label).
    """

    records: pa.Table
    rejections: list[Rejection]


@dataclass(frozen=True, slots=True)
class _Parsed:
    values: pa.ChunkedArray | pa.Array
    missing: Mask
    bad: Mask


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: str
    mask: Mask
    raw: pa.ChunkedArray | None
    explain: Callable[[object], str]


def _mask(values: pa.ChunkedArray | pa.Array) -> Mask:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)


def _none(n: int) -> Mask:
    return np.zeros(n, dtype=bool)


def _nulls(n: int, kind: pa.DataType) -> pa.Array:
    return pa.nulls(n, type=kind)


def _plain(col: pa.ChunkedArray) -> pa.ChunkedArray:
    kind = col.type
    if pa.types.is_dictionary(kind):
        return _plain(col.cast(kind.value_type))
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return col.cast(pa.string())
    return col


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind))


def _trimmed(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Whitespace trimmed, empty text as null."""
    trimmed = pc.utf8_trim_whitespace(col)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _present_but(values: pa.ChunkedArray | pa.Array, ok: pa.ChunkedArray | pa.Array) -> Mask:
    return _mask(pc.and_(pc.is_valid(values), pc.invert(pc.fill_null(ok, False))))


def parse_text(col: pa.ChunkedArray, *, id_like: bool = False) -> _Parsed:
    """Text fields and ids: trimmed; integer-valued numbers (``12``, ``"12.0"``) become ``"12"``."""
    col = _plain(col)
    n = len(col)
    kind = col.type
    if pa.types.is_null(kind):
        return _Parsed(_nulls(n, pa.string()), np.ones(n, dtype=bool), _none(n))
    if _is_text(kind):
        values = _trimmed(col)
        if id_like:
            values = pc.replace_substring_regex(values, pattern=_INTEGRAL_TEXT, replacement=r"\1")
        return _Parsed(values, ~_mask(pc.is_valid(values)), _none(n))
    if pa.types.is_integer(kind):
        return _Parsed(col.cast(pa.string()), ~_mask(pc.is_valid(col)), _none(n))
    if pa.types.is_floating(kind):
        numbers = pc.if_else(pc.is_nan(col), pa.scalar(None, kind), col)
        integral = pc.and_(
            pc.equal(pc.floor(numbers), numbers), pc.less_equal(pc.abs(numbers), _MAX_EXACT_INT)
        )
        whole = pc.if_else(integral, numbers, pa.scalar(None, kind))
        values = whole.cast(pa.int64()).cast(pa.string())
        if not id_like:
            values = pc.if_else(integral, values, numbers.cast(pa.string()))
            return _Parsed(values, ~_mask(pc.is_valid(numbers)), _none(n))
        return _Parsed(values, ~_mask(pc.is_valid(numbers)), _present_but(numbers, integral))
    # Booleans, nested values, binary: none of them is an id or a name.
    return _Parsed(_nulls(n, pa.string()), ~_mask(pc.is_valid(col)), _mask(pc.is_valid(col)))


def parse_number(col: pa.ChunkedArray) -> _Parsed:
    """Numbers from numeric columns or number-shaped text; NaN counts as missing."""
    col = _plain(col)
    n = len(col)
    kind = col.type
    if pa.types.is_null(kind):
        return _Parsed(_nulls(n, pa.float64()), np.ones(n, dtype=bool), _none(n))
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = col.cast(pa.float64())
        numbers = pc.if_else(pc.is_nan(numbers), pa.scalar(None, pa.float64()), numbers)
        finite = pc.is_finite(numbers)
        values = pc.if_else(finite, numbers, pa.scalar(None, pa.float64()))
        return _Parsed(values, ~_mask(pc.is_valid(numbers)), _present_but(numbers, finite))
    if _is_text(kind):
        text = _trimmed(col)
        shaped = pc.match_substring_regex(text, _NUMBER)
        values = pc.if_else(shaped, text, pa.scalar(None, pa.string())).cast(pa.float64())
        finite = pc.is_finite(values)
        values = pc.if_else(finite, values, pa.scalar(None, pa.float64()))
        return _Parsed(values, ~_mask(pc.is_valid(text)), _present_but(text, finite))
    return _Parsed(_nulls(n, pa.float64()), ~_mask(pc.is_valid(col)), _mask(pc.is_valid(col)))


def _from_pandas(times: pd.Series) -> pa.Array:
    return pa.array(times).cast(TIMESTAMP, safe=False)


def _localise(naive: pd.Series, zone: str) -> pd.Series:
    """Naive wall-clock times in ``zone`` as UTC; ambiguous or skipped times become NaT."""
    local: pd.Series = naive.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    utc: pd.Series = local.dt.tz_convert("UTC")
    return utc


def _parse_time_text(text: pa.ChunkedArray, fmt: TimestampFormat) -> pa.Array:
    if fmt.format == EPOCH_SECONDS:
        seconds = parse_number(text).values.to_pandas()
        return _from_pandas(pd.to_datetime(seconds, unit="s", utc=True, errors="coerce"))
    strings = text.to_pandas()
    if fmt.format != AUTO:
        parsed = pd.to_datetime(strings, format=fmt.format, errors="coerce")
        if parsed.dt.tz is None:
            parsed = _localise(parsed, fmt.zone)
        return _from_pandas(parsed.dt.tz_convert("UTC"))
    zoned = np.asarray(
        pc.fill_null(pc.match_substring_regex(text, _ZONED), False).to_numpy(), dtype=bool
    )
    result = pd.Series(pd.NaT, index=strings.index, dtype="datetime64[us, UTC]")
    if (~zoned).any():
        naive = pd.to_datetime(strings[~zoned], format="ISO8601", errors="coerce")
        result[~zoned] = _localise(naive.astype("datetime64[us]"), fmt.zone)
    if zoned.any():
        result[zoned] = pd.to_datetime(strings[zoned], format="ISO8601", utc=True, errors="coerce")
    return _from_pandas(result)


def parse_timestamp(col: pa.ChunkedArray, fmt: TimestampFormat) -> _Parsed:
    """Times as UTC: zoned values converted, naive ones read in the mapping's zone."""
    col = _plain(col)
    n = len(col)
    kind = col.type
    missing = ~_mask(pc.is_valid(col))
    if pa.types.is_null(kind):
        return _Parsed(_nulls(n, TIMESTAMP), missing, _none(n))
    if pa.types.is_date(kind):
        col = col.cast(pa.timestamp("us"))
        kind = col.type
    if pa.types.is_timestamp(kind):
        if kind.tz is not None or fmt.zone == "UTC":
            # Arrow keeps instants in UTC; a naive value read as UTC needs no shift.
            return _Parsed(col.cast(TIMESTAMP, safe=False), missing, _none(n))
        values = _from_pandas(_localise(col.to_pandas(), fmt.zone))
        return _Parsed(values, missing, _present_but(col, pc.is_valid(values)))
    if _is_text(kind):
        text = _trimmed(col)
        values = _parse_time_text(text, fmt)
        return _Parsed(values, ~_mask(pc.is_valid(text)), _present_but(text, pc.is_valid(values)))
    if (pa.types.is_integer(kind) or pa.types.is_floating(kind)) and fmt.format == EPOCH_SECONDS:
        seconds = parse_number(col).values.to_pandas()
        values = _from_pandas(pd.to_datetime(seconds, unit="s", utc=True, errors="coerce"))
        return _Parsed(values, missing, _present_but(col, pc.is_valid(values)))
    return _Parsed(_nulls(n, TIMESTAMP), missing, ~missing)


def parse_label(col: pa.ChunkedArray) -> _Parsed:
    """Fraud labels: booleans, 0/1, or the text 0, 1, true, false (any case)."""
    col = _plain(col)
    n = len(col)
    kind = col.type
    if pa.types.is_null(kind):
        return _Parsed(_nulls(n, pa.bool_()), np.ones(n, dtype=bool), _none(n))
    if pa.types.is_boolean(kind):
        return _Parsed(col, ~_mask(pc.is_valid(col)), _none(n))
    if pa.types.is_integer(kind) or pa.types.is_floating(kind):
        numbers = parse_number(col)
        known = pc.is_in(numbers.values, value_set=pa.array([0.0, 1.0]))
        values = pc.if_else(known, pc.equal(numbers.values, 1.0), pa.scalar(None, pa.bool_()))
        return _Parsed(values, numbers.missing, _present_but(numbers.values, known) | numbers.bad)
    if _is_text(kind):
        text = pc.utf8_lower(_trimmed(col))
        known = pc.is_in(text, value_set=pa.array(list(_LABEL_TEXT)))
        trues = pa.array([k for k, v in _LABEL_TEXT.items() if v])
        values = pc.if_else(known, pc.is_in(text, value_set=trues), pa.scalar(None, pa.bool_()))
        return _Parsed(values, ~_mask(pc.is_valid(text)), _present_but(text, known))
    return _Parsed(_nulls(n, pa.bool_()), ~_mask(pc.is_valid(col)), _mask(pc.is_valid(col)))


def parse_scenario(col: pa.ChunkedArray) -> _Parsed:
    """Fraud scenario numbers: whole numbers from 0 to 32767."""
    numbers = parse_number(col)
    ok = pc.and_(
        pc.equal(pc.floor(numbers.values), numbers.values),
        pc.and_(pc.greater_equal(numbers.values, 0), pc.less_equal(numbers.values, 32767)),
    )
    values = pc.if_else(ok, numbers.values, pa.scalar(None, pa.float64())).cast(pa.int16())
    return _Parsed(values, numbers.missing, numbers.bad | _present_but(numbers.values, ok))


def _scaled(amounts: pa.ChunkedArray | pa.Array, scale: float) -> pa.ChunkedArray | pa.Array:
    if scale == 1.0:
        return amounts
    divisor = round(1 / scale)
    # Dividing by 100 gives 12.34 where multiplying by 0.01 gives 12.340000000000002.
    if divisor > 1 and abs(divisor * scale - 1) < 1e-12:
        return pc.divide(amounts, float(divisor))
    return pc.multiply(amounts, scale)


class _Checker:
    """Collects the field failures of one table and turns them into rejections."""

    def __init__(self, table: pa.Table, mapping: ColumnMapping) -> None:
        self.table = table
        self.mapping = mapping
        self.n = table.num_rows
        self.failures: list[_Failure] = []

    def column(self, target: Target) -> pa.ChunkedArray | None:
        name = self.mapping.source_column(target)
        if name is None or name not in self.table.column_names:
            return None
        return self.table[name]

    def label(self, target: Target) -> str:
        name = self.mapping.source_column(target)
        return target if name in (None, target) else f"{target} ({name})"

    def fail(
        self, reason: str, target: Target, mask: Mask, explain: Callable[[str, object], str]
    ) -> None:
        if mask.any():
            label = self.label(target)
            self.failures.append(
                _Failure(reason, mask, self.column(target), lambda raw: explain(label, raw))
            )

    def rejections(self) -> tuple[Mask, list[Rejection]]:
        ok_rank = len(REASONS)
        rank = np.full(self.n, ok_rank, dtype=np.int8)
        for failure in self.failures:
            rank = np.where(failure.mask, np.minimum(rank, REASONS.index(failure.reason)), rank)
        details: dict[int, list[str]] = {}
        for failure in self.failures:
            rows = np.flatnonzero(failure.mask & (rank == REASONS.index(failure.reason)))
            raws = (
                failure.raw.take(pa.array(rows)).to_pylist()
                if failure.raw is not None
                else [None] * len(rows)
            )
            for row, raw in zip(rows.tolist(), raws, strict=True):
                details.setdefault(row, []).append(failure.explain(raw))
        rejected = sorted(details)
        return rank == ok_rank, [
            Rejection(row, REASONS[rank[row]], "; ".join(details[row])) for row in rejected
        ]


def check(table: pa.Table, mapping: ColumnMapping, max_amount: float) -> Checked:
    """Validate and clean every record of ``table`` read through ``mapping``."""
    checker = _Checker(table, mapping)
    n = table.num_rows

    def field(target: Target, parse: Callable[[pa.ChunkedArray], _Parsed]) -> _Parsed | None:
        col = checker.column(target)
        return None if col is None else parse(col)

    def missing(label: str, raw: object) -> str:
        return f"{label} is missing or empty"

    def required(target: Target, parsed: _Parsed | None, reason: str, what: str) -> pa.Array:
        if parsed is None:  # the column check before validation makes this unreachable
            raise AssertionError(f"required field {target} has no column")
        checker.fail("missing_field", target, parsed.missing, missing)
        checker.fail(reason, target, parsed.bad, lambda label, raw: f"{label} {raw!r} {what}")
        return parsed.values

    ids = {
        target: required(
            target,
            field(target, lambda c: parse_text(c, id_like=True)),
            "bad_type",
            "is not text or a whole number",
        )
        for target in ("transaction_id", "customer_id", "terminal_id")
    }
    ts = required(
        "timestamp",
        field("timestamp", lambda c: parse_timestamp(c, mapping.timestamp)),
        "bad_timestamp",
        _time_hint(mapping.timestamp),
    )
    amount = _scaled(
        required("amount", field("amount", parse_number), "bad_type", "is not a number"),
        mapping.amount_scale,
    )
    # Zero is a real amount: card schemes use zero-value authorisations to verify a card (and
    # fraudsters use them to test one), so only negative and absurd amounts are refused.
    in_range = pc.and_(pc.greater_equal(amount, 0.0), pc.less_equal(amount, max_amount))
    checker.fail(
        "amount_out_of_range",
        "amount",
        _present_but(amount, in_range),
        lambda label, raw: f"{label} {raw!r} is outside [0, {max_amount:g}]",
    )

    texts: dict[str, pa.ChunkedArray | pa.Array] = {}
    for target in ("currency", "channel", "country", "merchant_category"):
        parsed = field(target, parse_text)
        values = parsed.values if parsed is not None else _nulls(n, pa.string())
        if parsed is not None:
            checker.fail(
                "bad_type", target, parsed.bad, lambda lb, raw: f"{lb} {raw!r} is not text"
            )
        default = mapping.defaults.get(target)
        if default is not None:
            values = pc.fill_null(values, default)
        texts[target] = values
    currency = pc.utf8_upper(texts["currency"])
    checker.fail("missing_field", "currency", ~_mask(pc.is_valid(currency)), missing)
    checker.fail(
        "unknown_currency",
        "currency",
        _present_but(currency, pc.is_in(currency, value_set=pa.array(sorted(ISO_4217)))),
        lambda label, raw: f"{label} {raw!r} is not an ISO 4217 code",
    )

    coordinates: dict[str, pa.ChunkedArray | pa.Array] = {}
    coordinate: Target
    for coordinate in ("terminal_x", "terminal_y"):
        parsed = field(coordinate, parse_number)
        coordinates[coordinate] = parsed.values if parsed is not None else _nulls(n, pa.float64())
        if parsed is not None:
            checker.fail(
                "bad_type", coordinate, parsed.bad, lambda lb, raw: f"{lb} {raw!r} is not a number"
            )
            near = pc.less_equal(pc.abs(parsed.values), MAX_COORDINATE_KM)
            checker.fail(
                "coordinate_out_of_range",
                coordinate,
                _present_but(parsed.values, near),
                lambda lb, raw: f"{lb} {raw!r} is outside ±{MAX_COORDINATE_KM:g} km",
            )

    is_fraud = _optional(checker, "is_fraud", parse_label, "is not 0, 1, true or false", pa.bool_())
    scenario = _optional(
        checker,
        "fraud_scenario",
        parse_scenario,
        "is not a whole number from 0 to 32767",
        pa.int16(),
    )
    known = field("label_known_at", lambda c: parse_timestamp(c, mapping.timestamp))
    known_at = ts if known is None else pc.coalesce(known.values, ts)
    if known is not None:
        checker.fail(
            "bad_timestamp",
            "label_known_at",
            known.bad,
            lambda label, raw: f"{label} {raw!r} {_time_hint(mapping.timestamp)}",
        )

    valid, rejections = checker.rejections()
    keep = pa.array(valid)
    columns: dict[str, pa.ChunkedArray | pa.Array] = {
        "_row": pa.array(np.flatnonzero(valid), pa.int64()),
        **ids,
        "ts": ts,
        "amount": amount,
        "currency": currency,
        "channel": texts["channel"],
        "country": texts["country"],
        "merchant_category": texts["merchant_category"],
        **coordinates,
        "is_fraud": is_fraud,
        "scenario": scenario,
        "known_at": pc.if_else(pc.is_valid(is_fraud), known_at, pa.scalar(None, TIMESTAMP)),
    }
    records = pa.table(
        {
            name: values if name == "_row" else values.filter(keep)
            for name, values in columns.items()
        }
    )
    return Checked(records, rejections)


def _optional(
    checker: _Checker,
    target: Target,
    parse: Callable[[pa.ChunkedArray], _Parsed],
    what: str,
    kind: pa.DataType,
) -> pa.ChunkedArray | pa.Array:
    col = checker.column(target)
    if col is None:
        return _nulls(checker.n, kind)
    parsed = parse(col)
    checker.fail("bad_label", target, parsed.bad, lambda label, raw: f"{label} {raw!r} {what}")
    return parsed.values


def _time_hint(fmt: TimestampFormat) -> str:
    if fmt.format == EPOCH_SECONDS:
        return "is not a time in epoch seconds"
    if fmt.format == AUTO:
        return "is not a time (expected ISO 8601 or 'YYYY-MM-DD HH:MM:SS')"
    return f"is not a time in the format {fmt.format!r}"
