"""Fixtures for the ingestion tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """An empty lake directory."""
    return tmp_path / "lake"
