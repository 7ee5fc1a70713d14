"""De-duplication by transaction id: within a source, across the run, and against the lake.

The first record of an id wins. A later record with the same id is a duplicate; if its
content differs from the winner's it is also counted as a conflicting duplicate.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from fraudops.lake import LABELS_DIR, TRANSACTIONS, TRANSACTIONS_DIR, has_table, parquet_glob
from fraudops.types import LabelSource

CONTENT = tuple(name for name in TRANSACTIONS.names if name not in ("transaction_id", "source"))
"""Fields compared to tell a repeated record from a different one under the same id."""


@dataclass(frozen=True, slots=True)
class DuplicateCounts:
    """How many records of one source were duplicates, by where the first copy was."""

    within_source: int = 0
    across_sources: int = 0
    in_lake: int = 0
    conflicting_duplicates: int = 0

    @property
    def total(self) -> int:
        return self.within_source + self.across_sources + self.in_lake

    def to_dict(self) -> dict[str, int]:
        return {
            "within_source": self.within_source,
            "across_sources": self.across_sources,
            "in_lake": self.in_lake,
            "conflicting_duplicates": self.conflicting_duplicates,
        }


@dataclass(frozen=True, slots=True)
class Deduplicated:
    """The records of a source that are new, and the dataset labels still to write."""

    accepted: pa.Table
    labels: pa.Table
    counts: DuplicateCounts


def _same(a: pa.ChunkedArray | pa.Array, b: pa.ChunkedArray | pa.Array) -> pa.Array:
    both_null = pc.and_(pc.is_null(a), pc.is_null(b))
    return pc.or_(pc.fill_null(pc.equal(a, b), False), both_null)


def _all_same(left: pa.Table, right: pa.Table) -> pa.Array:
    same = pa.array(np.ones(left.num_rows, dtype=bool))
    for name in CONTENT:
        same = pc.and_(same, _same(left[name], right[name]))
    return same


class SeenIds:
    """Ids accepted so far: in the lake before this run, and earlier in this run."""

    def __init__(self, lake: Path) -> None:
        self._lake = lake
        self._run: list[pa.Table] = []

    def split(self, records: pa.Table) -> Deduplicated:
        """Keep the first record of each new id; count the rest by where the first copy was."""
        n = records.num_rows
        position = pa.array(np.arange(n, dtype=np.int64))
        records = records.append_column("_pos", position)
        if len(pc.unique(records["transaction_id"])) == n:
            # The common case, and grouping a million ids costs seconds: nothing repeats.
            repeated = np.zeros(n, dtype=bool)
            conflict = repeated
            unique = records
        else:
            first = records.group_by("transaction_id", use_threads=False).aggregate(
                [("_pos", "min")]
            )
            first_ids = first["transaction_id"].combine_chunks()
            first_pos = pc.take(
                first["_pos_min"], pc.index_in(records["transaction_id"], value_set=first_ids)
            )
            repeated = _mask(pc.not_equal(position, first_pos))
            winners = records.take(first_pos)
            conflict = repeated & ~_mask(_all_same(records, winners))
            unique = records.filter(pa.array(~repeated))

        in_run = self._in_run(unique)
        lake_state = self._in_lake(unique, ~in_run)
        in_lake = lake_state > 0
        new = unique.filter(pa.array(~in_run & ~in_lake))
        counts = DuplicateCounts(
            within_source=int(repeated.sum()),
            across_sources=int(in_run.sum()),
            in_lake=int(in_lake.sum()),
            conflicting_duplicates=int(conflict.sum())
            + self._conflicts_in_run(unique.filter(pa.array(in_run)))
            + int((lake_state == 2).sum()),
        )
        # A record already in the lake unchanged may still bring its label: that is how a
        # re-run completes one that crashed after writing transactions but before labels.
        label_rows = unique.filter(pa.array(~in_run & (lake_state != 2)))
        labels = self._unlabelled(label_rows.filter(pc.is_valid(label_rows["is_fraud"])))
        self._run.append(new.select(["transaction_id", *CONTENT]))
        return Deduplicated(new.drop_columns(["_pos"]), labels, counts)

    def _run_table(self) -> pa.Table | None:
        if not self._run:
            return None
        return pa.concat_tables(self._run)

    def _in_run(self, records: pa.Table) -> npt.NDArray[np.bool_]:
        seen = self._run_table()
        if seen is None:
            return np.zeros(records.num_rows, dtype=bool)
        return _mask(
            pc.is_in(records["transaction_id"], value_set=seen["transaction_id"].combine_chunks())
        )

    def _conflicts_in_run(self, repeats: pa.Table) -> int:
        seen = self._run_table()
        if seen is None or repeats.num_rows == 0:
            return 0
        earlier = seen.take(
            pc.index_in(
                repeats["transaction_id"], value_set=seen["transaction_id"].combine_chunks()
            )
        )
        return int((~_mask(_all_same(repeats, earlier))).sum())

    def _in_lake(
        self, records: pa.Table, candidates: npt.NDArray[np.bool_]
    ) -> npt.NDArray[np.int8]:
        """0: not in the lake; 1: in the lake unchanged; 2: in the lake with other content."""
        result = np.zeros(records.num_rows, dtype=np.int8)
        if not has_table(self._lake, TRANSACTIONS_DIR) or not candidates.any():
            return result
        batch = records.select(["_pos", "transaction_id", *CONTENT]).filter(pa.array(candidates))
        same = " AND ".join(f"l.{c} IS NOT DISTINCT FROM b.{c}" for c in CONTENT)
        with duckdb.connect() as con:
            con.register("batch", batch)
            found = con.sql(
                f"""
                SELECT b._pos AS pos, bool_and({same}) AS same
                FROM batch b
                JOIN read_parquet(?, hive_partitioning = false) l USING (transaction_id)
                GROUP BY b._pos
                """,
                params=[parquet_glob(self._lake, TRANSACTIONS_DIR)],
            ).to_arrow_table()
        # _pos indexes the source's records; map it back to rows of ``records``.
        row_of = pc.index_in(found["pos"], value_set=records["_pos"].combine_chunks())
        rows = np.asarray(row_of.to_numpy(zero_copy_only=False), dtype=np.int64)
        same_flags = _mask(found["same"])
        result[rows] = np.where(same_flags, 1, 2)
        return result

    def _unlabelled(self, labelled: pa.Table) -> pa.Table:
        """Dataset labels for ``labelled`` records whose id has none in the lake yet."""
        labels = pa.table(
            {
                "transaction_id": labelled["transaction_id"],
                "is_fraud": labelled["is_fraud"],
                "source": pa.array([LabelSource.DATASET.value] * labelled.num_rows, pa.string()),
                "known_at": labelled["known_at"],
                "scenario": labelled["scenario"],
            }
        )
        if labels.num_rows == 0 or not has_table(self._lake, LABELS_DIR):
            return labels
        with duckdb.connect() as con:
            con.register("batch", labels.select(["transaction_id"]))
            known = con.sql(
                """
                SELECT DISTINCT l.transaction_id
                FROM read_parquet(?, hive_partitioning = false) l
                JOIN batch b USING (transaction_id)
                WHERE l.source = ?
                """,
                params=[parquet_glob(self._lake, LABELS_DIR), LabelSource.DATASET.value],
            ).to_arrow_table()
        if known.num_rows == 0:
            return labels
        fresh = pc.invert(
            pc.is_in(labels["transaction_id"], value_set=known["transaction_id"].combine_chunks())
        )
        return labels.filter(fresh)


def _mask(values: pa.ChunkedArray | pa.Array) -> npt.NDArray[np.bool_]:
    return np.asarray(pc.fill_null(values, False).to_numpy(zero_copy_only=False), dtype=bool)
