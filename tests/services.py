"""Reach the real services and programs tests need, or skip with a reason (fail in CI).

On a laptop without Redis, PostgreSQL or Prometheus the tests that need them skip and
say what is missing; with ``CI=true`` the same absence is a failure, so CI can never go
green by quietly skipping the tests that matter.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import make_url

REDIS_URL = os.environ.get("FRAUDOPS_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
POSTGRES_URL = os.environ.get(
    "FRAUDOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def in_ci() -> bool:
    """Whether this run is CI, where a missing service is a failure."""
    return os.environ.get("CI", "").lower() == "true"


def unavailable(reason: str) -> NoReturn:
    """Skip the test with ``reason``, or fail it in CI."""
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)


def reachable(host: str, port: int, timeout_s: float = 0.5) -> bool:
    """Whether a TCP connection to ``host:port`` opens."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def require_port(name: str, host: str, port: int) -> None:
    """Skip (fail in CI) unless ``name`` listens on ``host:port``."""
    if not reachable(host, port):
        unavailable(f"{name} is not reachable on {host}:{port}")


def require_program(name: str, package: str) -> str:
    """The path of program ``name``; skip (fail in CI) if Debian's ``package`` is missing."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"{name} is not installed (Debian package {package!r}; .ci/run installs it)")
    return path


@contextmanager
def postgres_schema_url() -> Iterator[str]:
    """A URL into a fresh schema of the shared test database, dropped with everything after.

    The schema is the connection's ``search_path``, so tables, version tables and triggers
    land there and no other test's are touched. Skips (fails in CI) without PostgreSQL.
    """
    url = make_url(POSTGRES_URL)
    require_port("PostgreSQL", url.host or "127.0.0.1", url.port or 5432)
    schema = f"fraudops_test_{uuid.uuid4().hex[:12]}"
    admin = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
