"""The offline engine: the feature table for training, in one DuckDB query over the lake.

The query is generated from the definition. Windowed aggregates are RANGE frames over the
integer microsecond timestamp ``t``, so ``(t − w, t)`` — the history, same-time peers
excluded — is exactly ``RANGE BETWEEN w − 1 PRECEDING AND 1 PRECEDING`` with no interval
arithmetic or time zone in the way. A card's many aggregates search each width's start once
and then frame by peer groups (GROUPS), far fewer searches for DuckDB. Fraud counts join
the small set of fraud-label spans (when each transaction was known to be fraud) on
terminal and time, so a label counts at ``t`` only if it was the latest label known by ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from fraudops import lake as lake_layout
from fraudops.errors import LakeError
from fraudops.features import windows
from fraudops.features.definition import (
    DEFAULT_FEATURES,
    Aggregate,
    Entity,
    Feature,
    FeatureDefinition,
    Kind,
)
from fraudops.progress import Progress, no_progress

KEY_COLUMNS = ("transaction_id", "ts", "customer_id", "terminal_id", "is_fraud", "scenario")
"""The columns before the features in every feature table."""

_FOREVER = 2**63 - 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def _micros(moment: datetime) -> int:
    return (moment - _EPOCH) // _MICROSECOND


def _history_frame(window: int | None) -> str:
    if window is None:  # the earlier peer groups: the same rows, without a RANGE search
        return "groups between unbounded preceding and 1 preceding"
    return f"range between {window - 1} preceding and 1 preceding"


_PACK = 2**31
"""A peer-group number times this plus a row count (each below 2³¹): both in one bigint."""


def _select(rows: str, tag: str, columns: list[str]) -> str:
    listed = ",\n    ".join(columns)
    return f"(select _n{tag}.*,\n    {listed}\n  from {rows} _n{tag})"


@dataclass
class _Partition:
    """The window aggregates over one partition, each computed once."""

    name: str
    history: dict[tuple[str, int | None], str] = field(default_factory=dict)
    framed: dict[tuple[str, str], str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.history) + len(self.framed)

    def select(self, rows: str, tag: str) -> str:
        """``rows`` with this partition's aggregates as columns, named by their aliases."""
        over = f"partition by {self.name} order by t"
        columns = [f"{e} over ({over} {frame}) as {a}" for (e, frame), a in self.framed.items()]
        if all(e == "count(*)" or w is None for e, w in self.history):
            columns += [
                f"{e} over ({over} {_history_frame(w)}) as {a}"
                for (e, w), a in self.history.items()
            ]
            return _select(rows, tag, columns)
        # A RANGE frame costs DuckDB a search per row and aggregate. So each width's
        # start is searched once — its peer group and the rows before it, packed in one
        # first_value — and the aggregates are framed in peer groups (GROUPS), no search.
        group, before = f"_g{tag}", f"_b{tag}"
        rows = _select(
            rows,
            f"{tag}a",
            [f"dense_rank() over ({over}) as {group}", f"rank() over ({over}) - 1 as {before}"],
        )
        widths = sorted({w for _, w in self.history if w is not None})
        starts = {w: f"_s{tag}_{i}" for i, w in enumerate(widths)}
        first = f"first_value({group} * {_PACK} + {before})"
        rows = _select(
            rows,
            f"{tag}b",
            [f"{first} over ({over} {_history_frame(w)}) as {s}" for w, s in starts.items()],
        )
        # An empty history has no first row; 0 groups back frames nothing either.
        for (expression, window), alias in self.history.items():
            start = (
                "unbounded"
                if window is None
                else f"coalesce({group} - {starts[window]} // {_PACK}, 0)"
            )
            if expression != "count(*)":
                sql = f"{expression} over ({over} groups between {start} preceding and 1 preceding)"
            elif window is None:
                sql = before
            else:
                sql = f"coalesce({before} - {starts[window]} % {_PACK}, 0)"
            columns.append(f"{sql} as {alias}")
        return _select(rows, tag, columns)


@dataclass
class _Query:
    """Collects the window aggregates the features need, each computed once."""

    partitions: dict[str, _Partition] = field(default_factory=dict)
    risk_counts: dict[str, str] = field(default_factory=dict)
    windows: int = 0

    def history(self, expression: str, partition: str, window: int | None) -> str:
        """``expression`` over the partition's rows in ``(t − window, t)``, unbounded if None."""
        return self._alias(self._partition(partition).history, (expression, window))

    def window(self, expression: str, partition: str, frame: str) -> str:
        return self._alias(self._partition(partition).framed, (expression, frame))

    def _partition(self, name: str) -> _Partition:
        return self.partitions.setdefault(name, _Partition(name))

    def _alias(self, aliases: dict[tuple[str, Any], str], key: tuple[str, Any]) -> str:
        alias = aliases.get(key)
        if alias is None:
            alias = aliases[key] = f"_w{self.windows}"
            self.windows += 1
        return alias

    def windowed(self, rows: str) -> str:
        """``rows`` with every aggregate, nested one partition at a time.

        DuckDB sorts each window's whole input, the columns of the windows below it
        included, so the partition with the most aggregates goes last (outermost).
        """
        for depth, partition in enumerate(sorted(self.partitions.values(), key=len)):
            rows = partition.select(rows, str(depth))
        return rows

    def fraud_count(self, window: int, delay: int) -> str:
        return self._fraud_aggregate("count(*)", window, delay)

    def first_fraud(self, window: int, delay: int) -> str:
        return self._fraud_aggregate("min(f.fraud_t)", window, delay)

    def _fraud_aggregate(self, expression: str, window: int, delay: int) -> str:
        condition = f"f.fraud_t > q.t - {delay + window} and f.fraud_t <= q.t - {delay}"
        sql = f"{expression} filter (where {condition})"
        alias = self.risk_counts.get(sql)
        if alias is None:
            alias = self.risk_counts[sql] = f"_f{len(self.risk_counts)}"
        return alias


def _window_us(feature: Feature) -> int:
    window = feature.window_us
    if window is None:  # pragma: no cover - the definition validates this
        raise ValueError(f"feature {feature.name!r} needs a window")
    return window


def _delayed_count(query: _Query, feature: Feature) -> str:
    window, delay = _window_us(feature), feature.delay_us
    if windows.delayed_includes_current(delay):
        count = query.history("count(*)", "terminal_id", window)
        return f"({count} + 1)"
    frame = f"range between {delay + window - 1} preceding and {delay} preceding"
    return query.window("count(*)", "terminal_id", frame)


def _feature_sql(query: _Query, feature: Feature, with_prior: bool) -> str:
    """The SQL expression of one feature over the windowed rows."""
    key = (feature.kind, feature.entity, feature.aggregate)
    window = feature.window_us
    card = "customer_id"
    if key == (Kind.POINT, Entity.TRANSACTION, Aggregate.AMOUNT):
        return "amount"
    if key == (Kind.POINT, Entity.TRANSACTION, Aggregate.IS_WEEKEND):
        day = windows.MICROS_PER_DAY
        return f"case when (t // {day} + 3) % 7 >= 5 then 1.0 else 0.0 end"
    if key == (Kind.POINT, Entity.TRANSACTION, Aggregate.IS_NIGHT):
        return f"case when (t // {windows.MICROS_PER_HOUR}) % 24 <= 6 then 1.0 else 0.0 end"
    if key == (Kind.WINDOW, Entity.CARD, Aggregate.COUNT):
        return f"({query.history('count(*)', card, window)} + 1)"
    if key == (Kind.WINDOW, Entity.CARD, Aggregate.MEAN_AMOUNT):
        count = query.history("count(*)", card, window)
        total = query.history("sum(amount)", card, window)
        return f"((coalesce({total}, 0) + amount) / ({count} + 1))"
    if key == (Kind.WINDOW, Entity.TERMINAL, Aggregate.COUNT):
        return f"({query.history('count(*)', 'terminal_id', window)} + 1)"
    if key == (Kind.DELAYED, Entity.TERMINAL, Aggregate.COUNT):
        return _delayed_count(query, feature)
    if key == (Kind.DELAYED, Entity.TERMINAL, Aggregate.FRAUD_RATE):
        count = _delayed_count(query, feature)
        frauds = query.fraud_count(_window_us(feature), feature.delay_us)
        return f"case when {count} > 0 then coalesce({frauds}, 0) / {count} else 0.0 end"
    if key == (Kind.HISTORY, Entity.CARD, Aggregate.AMOUNT_TO_MEAN):
        count = query.history("count(*)", card, window)
        total = query.history("sum(amount)", card, window)
        return f"case when {count} > 0 and {total} <> 0 then amount / ({total} / {count}) end"
    if key == (Kind.HISTORY, Entity.CARD, Aggregate.AMOUNT_ZSCORE):
        count = query.history("count(*)", card, window)
        total = query.history("sum(amount)", card, window)
        std = query.history("stddev_pop(amount)", card, window)
        # stddev_pop is exactly 0 when every amount is equal (its running mean never
        # moves): the condition online tests as min == max.
        return f"case when {count} >= 2 and {std} > 0 then (amount - {total} / {count}) / {std} end"
    if key == (Kind.HISTORY, Entity.CARD, Aggregate.SECONDS_SINCE_LAST):
        last = query.history("max(t)", card, window)
        if with_prior and window is None:
            last = f"coalesce({last}, prior_t)"
        return f"((t - {last}) / {windows.MICROS_PER_SECOND})"
    if key == (Kind.HISTORY, Entity.CARD, Aggregate.IS_NEW_TERMINAL):
        previous = query.history("max(t)", "customer_id, terminal_id", None)
        return f"case when {previous} > t - {window} then 0.0 else 1.0 end"
    if key == (Kind.HISTORY, Entity.CARD, Aggregate.DISTANCE_TO_MEAN_LOCATION):
        mean_x = query.history("avg(lx)", card, window)
        mean_y = query.history("avg(ly)", card, window)
        distance = f"sqrt((lx - {mean_x}) * (lx - {mean_x}) + (ly - {mean_y}) * (ly - {mean_y}))"
        grid = windows.DISTANCE_GRID  # the online engine's snap_distance, in SQL
        return f"(floor({distance} * {grid} + 0.5) / {grid})"
    if key == (Kind.HISTORY, Entity.CARD, Aggregate.PEAK_TO_MEAN):
        peak = query.history("max(amount)", card, window)
        count = query.history("count(*)", card, feature.baseline_us)
        total = query.history("sum(amount)", card, feature.baseline_us)
        return f"case when {count} > 0 and {total} <> 0 then {peak} / ({total} / {count}) end"
    if key == (Kind.DELAYED, Entity.TERMINAL, Aggregate.SECONDS_SINCE_FIRST_FRAUD):
        first = query.first_fraud(_window_us(feature), feature.delay_us)
        return f"((t - {first}) / {windows.MICROS_PER_SECOND})"
    raise ValueError(f"feature {feature.name!r}: {key} has no offline form")  # pragma: no cover


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def feature_sql(
    definition: FeatureDefinition,
    tx_glob: str,
    labels_glob: str | None,
    *,
    start_us: int | None,
    end_us: int | None,
    with_prior: bool,
) -> str:
    """The whole offline query; ``with_prior`` joins each card's last ts before the lookback."""
    query = _Query()
    features = [_feature_sql(query, feature, with_prior) for feature in definition.features]
    horizon = max(definition.horizon_us(Entity.CARD), definition.horizon_us(Entity.TERMINAL))
    read_from = None if start_us is None else start_us - horizon
    scope = ["true"]
    if read_from is not None:
        first_day = datetime.fromtimestamp(read_from // 1_000_000, UTC).date() - timedelta(days=1)
        scope += [f"day >= date '{first_day.isoformat()}'", f"epoch_us(ts) >= {read_from}"]
    if end_us is not None:
        scope.append(f"epoch_us(ts) < {end_us}")
    wanted = "true" if start_us is None else f"t >= {start_us}"
    wanted_q = "true" if start_us is None else f"q.t >= {start_us}"

    read = (
        f"read_parquet({_literal(tx_glob)}, hive_partitioning = true, hive_types = {{'day': DATE}})"
    )
    prior_cte = ""
    prior_column = ""
    prior_join = ""
    if with_prior and read_from is not None:
        prior_cte = (
            f"prior as (select customer_id, max(epoch_us(ts)) as prior_t from {read} "
            f"where epoch_us(ts) < {read_from} group by customer_id),"
        )
        prior_column = ", prior.prior_t"
        prior_join = "left join prior using (customer_id)"

    if labels_glob is None:
        labels_cte = (
            "labels as (select null::varchar as transaction_id, null::boolean as is_fraud, "
            "null::bigint as k, null::smallint as scenario where false),"
        )
    else:
        labels_cte = (
            "labels as (select transaction_id, is_fraud, epoch_us(known_at) as k, scenario "
            f"from read_parquet({_literal(labels_glob)}, hive_partitioning = true, "
            "hive_types = {'day': DATE})),"
        )

    risk_cte = "risk as (select null::varchar as transaction_id where false)"
    if query.risk_counts:
        delayed = [f for f in definition.features if f.kind is Kind.DELAYED]
        nearest = min(f.delay_us for f in delayed)
        farthest = max(f.delay_us + _window_us(f) for f in delayed)
        counts = ", ".join(f"{sql} as {alias}" for sql, alias in query.risk_counts.items())
        risk_cte = f"""risk as (
  select q.transaction_id, {counts}
  from windowed q join terminal_frauds f
    on q.terminal_id = f.terminal_id
   and f.fraud_t <= q.t - {nearest} and f.fraud_t > q.t - {farthest} and f.fraud_t < q.t
   and f.known_from < q.t and q.t <= f.known_until
  where {wanted_q}
  group by q.transaction_id
)"""
    feature_columns = ",\n  ".join(
        f"({sql})::double as {_quote(name)}"
        for sql, name in zip(features, definition.names, strict=True)
    )
    return f"""
with
{prior_cte}
src as (
  select transaction_id, ts, epoch_us(ts) as t, customer_id, terminal_id, amount::double as amount,
    case when terminal_x is not null and terminal_y is not null then terminal_x end as lx,
    case when terminal_x is not null and terminal_y is not null then terminal_y end as ly
  from {read} where {" and ".join(scope)}
),
{labels_cte}
target as (
  -- the latest label whatever its known_at; a fraud label wins a tie
  select transaction_id,
    (max(k * 2 + is_fraud::bigint) % 2)::tinyint as is_fraud,
    arg_max(scenario, k * 2 + is_fraud::bigint) filter (where scenario is not null) as scenario
  from labels group by transaction_id
),
label_steps as (
  select transaction_id, k, bool_or(is_fraud) as fraud from labels
  where transaction_id in (select transaction_id from labels where is_fraud)
  group by transaction_id, k
),
fraud_spans as (
  -- each fraud label holds from its known_at until the next label of its transaction
  select transaction_id, k as known_from,
    coalesce(lead(k) over (partition by transaction_id order by k), {_FOREVER}) as known_until,
    fraud
  from label_steps
),
terminal_frauds as (
  -- a label known before its transaction is ignored, as online (it arrives first)
  select s.terminal_id, s.t as fraud_t, f.known_from, f.known_until
  from fraud_spans f join src s using (transaction_id)
  where f.fraud and f.known_from >= s.t
),
windowed as (
  select * from {query.windowed(f"(select src.*{prior_column} from src {prior_join})")}
),
{risk_cte}
select w.transaction_id, w.ts, w.customer_id, w.terminal_id,
  coalesce(target.is_fraud, 0)::tinyint as is_fraud,
  coalesce(target.scenario, 0)::smallint as scenario,
  {feature_columns}
from (select * from windowed where {wanted}) w
left join risk using (transaction_id)
left join target using (transaction_id)
order by w.ts, w.transaction_id
"""


def build_feature_table(
    lake: Path,
    definition: FeatureDefinition = DEFAULT_FEATURES,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: Progress = no_progress,
) -> pd.DataFrame:
    """The point-in-time correct feature table of every transaction with ``start ≤ ts < end``.

    Columns: transaction_id, ts, customer_id, terminal_id, is_fraud (int8, the latest label
    whatever its known_at: the training target), scenario (int16), then the definition's
    features (float64, NaN for unknown), sorted by (ts, transaction_id). History before
    ``start`` feeds the windows.
    """
    if not lake_layout.has_table(lake, lake_layout.TRANSACTIONS_DIR):
        raise LakeError(f"{lake}: no transactions in the lake")
    labels_glob = (
        lake_layout.parquet_glob(lake, lake_layout.LABELS_DIR)
        if lake_layout.has_table(lake, lake_layout.LABELS_DIR)
        else None
    )
    sql = feature_sql(
        definition,
        lake_layout.parquet_glob(lake, lake_layout.TRANSACTIONS_DIR),
        labels_glob,
        start_us=None if start is None else _micros(start),
        end_us=None if end is None else _micros(end),
        with_prior=start is not None,
    )
    progress("features", 0, 1)
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        # DuckDB's own bar writes to stderr under ours and costs ~0.7 s of a 10 s build.
        con.execute("set enable_progress_bar = false")
        # Arrow, not .df(): it hands string columns to pandas without a per-row copy.
        table: pd.DataFrame = con.sql(sql).to_arrow_table().to_pandas()
    progress("features", 1, 1)
    return table
