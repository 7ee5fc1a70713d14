"""Review fixtures: a review database on SQLite and on a real PostgreSQL, and its stores."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from fraudops.clock import ManualClock
from fraudops.review.audit import SqlAuditTrail
from fraudops.review.database import ReviewDatabase
from fraudops.review.desk import ReviewDesk
from fraudops.review.ratelimit import SqlSignInLimiter
from fraudops.review.store import SqlCaseStore
from fraudops.review.users import Role, SqlUserStore

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def database(sql_url: str) -> Iterator[ReviewDatabase]:
    """A migrated review database, closed after the test."""
    db = ReviewDatabase(sql_url)
    yield db
    db.close()


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[ReviewDatabase]:
    """A migrated review database in SQLite only, for tests of logic that is not SQL."""
    db = ReviewDatabase(f"sqlite:///{tmp_path}/review.db")
    yield db
    db.close()


@pytest.fixture
def store(database: ReviewDatabase) -> SqlCaseStore:
    """The case store on each database."""
    return SqlCaseStore(database)


@pytest.fixture
def audit(database: ReviewDatabase) -> SqlAuditTrail:
    """The audit trail on each database."""
    return SqlAuditTrail(database)


@pytest.fixture
def clock() -> ManualClock:
    """A clock standing at T0 until moved."""
    return ManualClock(T0)


@pytest.fixture
def hasher() -> PasswordHasher:
    """argon2id with tiny costs: the same code path as production, a millisecond a hash."""
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def users(database: ReviewDatabase, hasher: PasswordHasher) -> SqlUserStore:
    """The user store on each database."""
    return SqlUserStore(database, hasher)


PASSWORD = "correct horse battery"


@pytest.fixture
def desk(database: ReviewDatabase, users: SqlUserStore, clock: ManualClock) -> ReviewDesk:
    """A review desk on each database with ann and bob (analysts), lea (lead), ada (admin)."""
    for name, role in (
        ("ann", Role.ANALYST),
        ("bob", Role.ANALYST),
        ("lea", Role.LEAD),
        ("ada", Role.ADMIN),
    ):
        users.add(name, role, PASSWORD, by="cli:test", now=clock.now())
    return ReviewDesk(
        SqlCaseStore(database),
        users,
        SqlAuditTrail(database),
        clock,
        SqlSignInLimiter(database, clock, max_failures=3, window=timedelta(minutes=10)),
        lock_ttl=timedelta(minutes=15),
        daily_capacity=3,
    )
