"""The MLflow store behind tuning and the registry: a store it cannot open is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudops.errors import FraudopsError
from fraudops.learn.tracking import mlflow_client


def test_a_file_that_is_no_database_is_a_clean_error(tmp_path: Path) -> None:
    """A registry database file holding something else fails with a fraudops error."""
    (tmp_path / "mlflow.db").write_text("garbage!\n")
    with pytest.raises(FraudopsError, match="is not a SQLite database"):
        mlflow_client(f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_an_unreachable_database_fails_at_once_in_one_line() -> None:
    """A server that refuses connections is a StoreError of one line, with no password."""
    with pytest.raises(FraudopsError) as caught:
        mlflow_client("postgresql+psycopg://nobody:secret@127.0.0.1:1/x")
    message = str(caught.value)
    assert (1, False, True) == (
        len(message.splitlines()),
        "secret" in message,
        "refused" in message.lower() or "failed" in message.lower(),
    )
