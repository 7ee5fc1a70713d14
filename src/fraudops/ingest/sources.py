"""Finding source files and reading each into one Arrow table, or failing with a SourceError.

A source is read whole before anything is validated, so a file that breaks midway
contributes nothing: its earlier rows are not ingested, and the run reports it failed.
"""

from __future__ import annotations

import csv
import glob
import gzip
import io
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from fraudops.errors import SourceError
from fraudops.ingest.mapping import EPOCH_SECONDS, ColumnMapping

CSV_SUFFIXES = (".csv", ".csv.gz")
JSONL_SUFFIXES = (".jsonl", ".ndjson", ".jsonl.gz", ".ndjson.gz")
PARQUET_SUFFIXES = (".parquet",)
SUFFIXES = CSV_SUFFIXES + JSONL_SUFFIXES + PARQUET_SUFFIXES
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One file to read, named as the caller would recognise it."""

    name: str
    path: Path


@dataclass(frozen=True, slots=True)
class Unmatched:
    """A source argument that names no readable file."""

    name: str
    error: str


@dataclass(frozen=True, slots=True)
class EarlyReject:
    """A record rejected while reading, before it had fields to validate."""

    location: str
    reason: str
    detail: str
    raw: str


@dataclass
class RawBatch:
    """The records of one source as read: a table, plus where each record sat in the file."""

    name: str
    kind: str
    table: pa.Table
    unit: str
    positions: Callable[[], Sequence[int]]
    early_rejects: list[EarlyReject] = field(default_factory=list)
    raw_text: Sequence[str] | None = None
    _known_positions: Sequence[int] | None = field(default=None, repr=False)

    @property
    def received(self) -> int:
        """Records seen in the file, whether or not they parsed."""
        rows: int = self.table.num_rows
        return rows + len(self.early_rejects)

    def locations(self, rows: Sequence[int]) -> list[str]:
        """``line N`` / ``row N`` for each table row index."""
        if self._known_positions is None:
            self._known_positions = self.positions()
        positions = self._known_positions
        return [f"{self.unit} {positions[row]}" for row in rows]


def _supported(path: Path) -> bool:
    return path.name.lower().endswith(SUFFIXES)


def expand(sources: Sequence[str]) -> list[SourceFile | Unmatched]:
    """Files, directories (recursively, sorted) and globs, in the order given."""
    found: list[SourceFile | Unmatched] = []
    for source in sources:
        if _GLOB_CHARS & set(source):
            matches = [Path(m) for m in sorted(glob.glob(source, recursive=True))]
            files = [f for m in matches for f in _files_under(m)]
            if not files:
                found.append(Unmatched(source, "matches no .csv, .parquet or .jsonl files"))
            found.extend(SourceFile(str(f), f) for f in files)
            continue
        path = Path(source)
        if path.is_dir():
            files = _files_under(path)
            if not files:
                found.append(Unmatched(source, "directory holds no .csv, .parquet or .jsonl files"))
            found.extend(SourceFile(str(f), f) for f in files)
        elif path.is_file():
            if _supported(path):
                found.append(SourceFile(source, path))
            else:
                found.append(Unmatched(source, f"unsupported file type; expected {SUFFIXES}"))
        else:
            found.append(Unmatched(source, "no such file or directory"))
    return found


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if _supported(path) else []
    return sorted(p for p in path.rglob("*") if p.is_file() and _supported(p))


def read_source(source: SourceFile, mapping: ColumnMapping) -> RawBatch:
    """Read one file whole; SourceError names the file (and line) if it cannot be read."""
    lower = source.path.name.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        batch = _read_parquet(source)
    elif lower.endswith(CSV_SUFFIXES):
        batch = _read_csv(source)
    else:
        batch = _read_jsonl(source, mapping)
    _check_columns(batch, mapping)
    return batch


def _check_columns(batch: RawBatch, mapping: ColumnMapping) -> None:
    if batch.kind == "jsonl" and batch.table.num_rows == 0:
        return  # no record parsed, so no columns to miss; the rejects say why
    present = set(batch.table.column_names)
    if batch.kind == "jsonl":
        # A key no record carries is as absent as a missing CSV column, even where the reader
        # kept an empty column for it.
        present = {name for name in present if batch.table[name].null_count < batch.table.num_rows}
    missing = [col for col in mapping.required_columns() if col not in present]
    if missing:
        what = "columns" if batch.kind != "jsonl" else "fields (absent from every record)"
        raise SourceError(
            batch.name,
            f"missing required {what} {', '.join(missing)} for mapping {mapping.name!r}",
            line=1 if batch.kind == "csv" else None,
        )


def _read_parquet(source: SourceFile) -> RawBatch:
    try:
        table = pq.read_table(source.path)
    except (pa.ArrowException, OSError) as exc:
        raise SourceError(source.name, f"not a readable Parquet file: {exc}") from exc
    rows = table.num_rows
    return RawBatch(source.name, "parquet", table, "row", lambda: range(1, rows + 1))


def _open_binary(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".gz"):
        return gzip.GzipFile(path, "rb")
    return path.open("rb")


def _content_lines(path: Path, first: int) -> list[int]:
    """Line numbers (from ``first`` on) that hold something, as the Arrow readers count records."""
    with _open_binary(path) as handle:
        return [n for n, line in enumerate(handle, start=1) if n >= first and line.strip()]


def _decode(raw: bytes, name: str, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(
            name,
            f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
            " (save the file as UTF-8)",
            line=line,
        ) from exc


def _csv_header(source: SourceFile) -> list[str]:
    try:
        with _open_binary(source.path) as handle:
            first = handle.readline()
    except (OSError, EOFError) as exc:
        raise SourceError(source.name, f"cannot read: {exc}") from exc
    text = _decode(first, source.name, 1).lstrip("\ufeff")
    header = next(csv.reader([text]), [])
    if not [name for name in header if name.strip()]:
        raise SourceError(source.name, "no header row", line=1)
    return header


def _read_csv(source: SourceFile) -> RawBatch:
    header = _csv_header(source)
    convert = pacsv.ConvertOptions(
        column_types={name: pa.string() for name in header}, strings_can_be_null=False
    )
    try:
        table = pacsv.read_csv(str(source.path), convert_options=convert)
    except (pa.ArrowException, OSError, EOFError) as exc:
        raise _locate_csv_problem(source, len(header), exc) from exc
    path = source.path
    return RawBatch(source.name, "csv", table, "line", lambda: _content_lines(path, first=2))


def _locate_csv_problem(source: SourceFile, width: int, exc: Exception) -> SourceError:
    """Walk the file line by line to name the first line that breaks it."""
    try:
        with _open_binary(source.path) as handle:
            for number, raw in enumerate(handle, start=1):
                text = _decode(raw, source.name, number)
                if number == 1 or not text.strip("\r\n"):
                    continue
                fields = next(csv.reader(io.StringIO(text)), [])
                if len(fields) != width:
                    return SourceError(
                        source.name, f"expected {width} fields, found {len(fields)}", line=number
                    )
    except SourceError as located:
        return located
    except (OSError, EOFError, csv.Error) as walk_error:
        return SourceError(source.name, f"not a readable CSV file: {walk_error}")
    return SourceError(source.name, f"not a readable CSV file: {exc}")


def _read_jsonl(source: SourceFile, mapping: ColumnMapping) -> RawBatch:
    # Arrow would turn timestamp-like text into naive timestamps and lose the zone, so the
    # timestamp columns stay text and are parsed by the mapping's rules.
    text_columns = []
    if mapping.timestamp.format != EPOCH_SECONDS:
        for target in ("timestamp", "label_known_at"):
            column = mapping.columns.get(target)
            if column is not None:
                text_columns.append(pa.field(column, pa.string()))
    options = pajson.ParseOptions(
        explicit_schema=pa.schema(text_columns), unexpected_field_behavior="infer"
    )
    try:
        with pa.input_stream(str(source.path), compression="detect") as stream:
            table = pajson.read_json(stream, parse_options=options)
        # The JSON reader lets invalid UTF-8 through; full validation catches it.
        table.validate(full=True)
    except (pa.ArrowException, OSError, EOFError):
        # A bad line, mixed types or a non-object value: read line by line to find which.
        return _read_jsonl_by_line(source)
    path = source.path
    return RawBatch(source.name, "jsonl", table, "line", lambda: _content_lines(path, first=1))


def _read_jsonl_by_line(source: SourceFile) -> RawBatch:
    records: list[dict[str, str | None]] = []
    lines: list[int] = []
    raw_text: list[str] = []
    rejects: list[EarlyReject] = []
    try:
        for number, text in _jsonl_lines(source):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                detail = f"not valid JSON: {exc.msg} at column {exc.colno}"
                rejects.append(EarlyReject(f"line {number}", "malformed_line", detail, text))
                continue
            if not isinstance(value, dict):
                detail = f"a JSON {type(value).__name__} is not a record"
                rejects.append(EarlyReject(f"line {number}", "malformed_line", detail, text))
                continue
            nested = sorted(k for k, v in value.items() if isinstance(v, dict | list))
            if nested:
                detail = f"fields {', '.join(nested)} hold nested values, not scalars"
                rejects.append(EarlyReject(f"line {number}", "bad_type", detail, text))
                continue
            records.append({key: _scalar_text(v) for key, v in value.items()})
            lines.append(number)
            raw_text.append(text)
    except (OSError, EOFError) as exc:
        raise SourceError(source.name, f"cannot read: {exc}") from exc
    names = list(dict.fromkeys(key for record in records for key in record))
    table = pa.table(
        {name: pa.array([r.get(name) for r in records], pa.string()) for name in names}
    )
    return RawBatch(source.name, "jsonl", table, "line", lambda: lines, rejects, raw_text)


def _jsonl_lines(source: SourceFile) -> Iterator[tuple[int, str]]:
    with _open_binary(source.path) as handle:
        for number, raw in enumerate(handle, start=1):
            text = _decode(raw, source.name, number).strip()
            if text:
                yield number, text


def _scalar_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    # JSON spelling keeps true/false and numbers as the file wrote them.
    return json.dumps(value)
