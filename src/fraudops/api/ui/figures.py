"""What the dashboard draws: decisions over time and the review desk's outcomes, from SQL.

Read-only aggregates, computed in the database (a day of decisions is never loaded row by
row): decisions per period by action, by source (model or a fallback) and degraded; the
verdicts given in the window; and how long the waiting cases have waited. The decision
log and the review database may be different databases, so each has its engine; tables
are described by the columns read (as ``review.decisions`` does), so the writers' schemas
stay theirs. A source that fails is named in ``problems`` and the rest is still shown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import SQLAlchemyError

from fraudops.errors import InputError
from fraudops.sql import create_engine, store_error, utc

_log = structlog.get_logger("fraudops.review_ui")

_decisions = sa.table(
    "decisions",
    sa.column("decided_at", sa.DateTime(timezone=True)),
    sa.column("action", sa.String),
    sa.column("source", sa.String),
    sa.column("degraded", sa.Boolean),
)
_cases = sa.table(
    "review_cases",
    sa.column("kind", sa.String),
    sa.column("status", sa.String),
    sa.column("decided_at", sa.DateTime(timezone=True)),
    sa.column("escalated_at", sa.DateTime(timezone=True)),
    sa.column("verdict", sa.String),
    sa.column("verdict_at", sa.DateTime(timezone=True)),
)

WINDOWS: dict[str, tuple[timedelta, timedelta]] = {
    "24h": (timedelta(hours=24), timedelta(hours=1)),
    "7d": (timedelta(days=7), timedelta(hours=6)),
    "30d": (timedelta(days=30), timedelta(days=1)),
}
"""The dashboard's windows: name → (length, period of one bar)."""

AGE_BINS: tuple[tuple[str, timedelta | None], ...] = (
    ("< 1 h", timedelta(hours=1)),
    ("1–4 h", timedelta(hours=4)),
    ("4–24 h", timedelta(hours=24)),
    ("> 1 d", None),
)


@dataclass(frozen=True)
class DashboardFigures:
    """Decisions per period in ``[start, end)`` and the review outcomes of the window."""

    start: datetime
    end: datetime
    period: timedelta
    periods: tuple[datetime, ...]
    by_action: dict[str, list[int]] = field(default_factory=dict)
    by_source: dict[str, list[int]] = field(default_factory=dict)
    degraded: list[int] = field(default_factory=list)
    verdicts: dict[str, int] = field(default_factory=dict)
    """Verdicts given in the window on review cases: fraud, legitimate, escalate."""
    sample_verdicts: dict[str, int] = field(default_factory=dict)
    """Verdicts given in the window on audit-sample cases (approved decisions)."""
    waiting_ages: list[tuple[str, int]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def totals(self) -> list[int]:
        """Decisions per period."""
        return [
            sum(values[i] for values in self.by_action.values()) for i in range(len(self.periods))
        ]

    @property
    def decisions(self) -> int:
        """Decisions in the window."""
        return sum(self.totals)

    @property
    def degraded_rates(self) -> list[float | None]:
        """The share of degraded decisions per period (None where there were none)."""
        return [d / t if t else None for d, t in zip(self.degraded, self.totals, strict=True)]

    @property
    def degraded_rate(self) -> float | None:
        """The share of the window's decisions that were degraded."""
        total = self.decisions
        return sum(self.degraded) / total if total else None

    @property
    def review_precision(self) -> float | None:
        """The share of review verdicts (fraud or legitimate) that confirmed fraud."""
        return _share(self.verdicts.get("fraud", 0), self.verdicts.get("legitimate", 0))

    @property
    def sample_fraud_rate(self) -> float | None:
        """The share of audited approvals found to be fraud: fraud the policy let through."""
        return _share(
            self.sample_verdicts.get("fraud", 0), self.sample_verdicts.get("legitimate", 0)
        )


def _share(hits: int, misses: int) -> float | None:
    return hits / (hits + misses) if hits + misses else None


def window(name: str, now: datetime) -> tuple[datetime, datetime, timedelta]:
    """The window ``name`` ends at ``now`` rounded up to its period: (start, end, period)."""
    if name not in WINDOWS:
        raise InputError(f"window must be one of {', '.join(WINDOWS)}, got {name!r}")
    length, period = WINDOWS[name]
    now = utc(now)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    periods_passed = -(-(now - epoch) // period)  # ceiling division of timedeltas
    end = epoch + period * periods_passed
    return end - length, end, period


class SqlDashboardSource:
    """The dashboard's figures from the decision log and the review database."""

    def __init__(self, decision_log_url: str, review_url: str) -> None:
        self._log = create_engine(decision_log_url, what="decision log")
        self._review = create_engine(review_url, what="review database")

    def figures(self, now: datetime, window_name: str = "24h") -> DashboardFigures:
        """The figures of window ``window_name`` (``24h``, ``7d`` or ``30d``) up to ``now``."""
        start, end, period = window(window_name, now)
        count = int((end - start) / period)
        periods = tuple(start + i * period for i in range(count))
        figures = DashboardFigures(start=start, end=end, period=period, periods=periods)
        try:
            self._decisions(figures, count)
        except SQLAlchemyError as exc:
            figures.problems.append(str(store_error("read decisions", exc, what="decision log")))
        try:
            self._review_outcomes(figures, utc(now))
        except SQLAlchemyError as exc:
            figures.problems.append(str(store_error("read verdicts", exc, what="review store")))
        for problem in figures.problems:
            _log.error("review_ui.dashboard_source_failed", error=problem)
        return figures

    def close(self) -> None:
        """Release connections."""
        self._log.dispose()
        self._review.dispose()

    def _decisions(self, figures: DashboardFigures, count: int) -> None:
        c = _decisions.c
        seconds = int(figures.period.total_seconds())
        bucket = _period_index(self._log.dialect.name, c.decided_at, figures.start, seconds)
        query = (
            sa.select(bucket.label("bucket"), c.action, c.source, c.degraded, sa.func.count())
            .where(c.decided_at >= utc(figures.start), c.decided_at < utc(figures.end))
            .group_by(sa.literal_column("bucket"), c.action, c.source, c.degraded)
        )
        with self._log.connect() as connection:
            rows = connection.execute(query).all()
        figures.degraded.extend([0] * count)
        for index, action, source, degraded, n in rows:
            i = min(max(int(index), 0), count - 1)
            figures.by_action.setdefault(action, [0] * count)[i] += n
            figures.by_source.setdefault(source, [0] * count)[i] += n
            if degraded:
                figures.degraded[i] += n

    def _review_outcomes(self, figures: DashboardFigures, now: datetime) -> None:
        c = _cases.c
        start, end = utc(figures.start), utc(figures.end)
        verdicts = (
            sa.select(c.kind, c.verdict, sa.func.count())
            .where(c.verdict.is_not(None), c.verdict_at >= start, c.verdict_at < end)
            .group_by(c.kind, c.verdict)
        )
        escalations = (
            sa.select(c.kind, sa.func.count())
            .where(c.escalated_at >= start, c.escalated_at < end)
            .group_by(c.kind)
        )
        waiting = c.status != "closed"
        ages: list[Any] = []
        newer: timedelta | None = timedelta(0)
        for _, older in AGE_BINS:
            younger_than = c.decided_at > now - older if older is not None else sa.true()
            older_than = c.decided_at <= now - newer if newer is not None else sa.true()
            ages.append(sa.func.sum(sa.case((waiting & younger_than & older_than, 1), else_=0)))
            newer = older
        with self._review.connect() as connection:
            verdict_rows = connection.execute(verdicts).all()
            escalation_rows = connection.execute(escalations).all()
            age_row = connection.execute(sa.select(*ages)).one()
        for kind, verdict, n in verdict_rows:
            target = figures.verdicts if kind == "review" else figures.sample_verdicts
            target[verdict] = target.get(verdict, 0) + n
        for kind, n in escalation_rows:
            target = figures.verdicts if kind == "review" else figures.sample_verdicts
            target["escalate"] = target.get("escalate", 0) + n
        figures.waiting_ages.extend(
            (label, int(n or 0)) for (label, _), n in zip(AGE_BINS, age_row, strict=True)
        )


def _period_index(
    dialect: str, column: sa.ColumnElement[Any], start: datetime, seconds: int
) -> sa.ColumnElement[Any]:
    """Which period of ``seconds`` since ``start`` a time falls in, computed in SQL."""
    start_epoch = int(start.timestamp())
    if dialect == "sqlite":
        # SQLite keeps UTC times as text; strftime('%s') reads them as Unix seconds.
        epoch = sa.cast(sa.func.strftime("%s", column), sa.Integer)
        return (epoch - start_epoch) // seconds
    epoch_pg = sa.extract("epoch", column)
    return sa.func.floor((epoch_pg - start_epoch) / seconds)
