"""Reach the real services and programs tests need, or skip with a reason (fail in CI).

On a laptop without Redis, PostgreSQL or Prometheus the tests that need them skip and
say what is missing; with ``CI=true`` the same absence is a failure, so CI can never go
green by quietly skipping the tests that matter.
"""

from __future__ import annotations

import os
import shutil
import socket
from typing import NoReturn

import pytest

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
