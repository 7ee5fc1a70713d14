"""``fraudops serve --model-alias``: the service starts on the model the registry names."""

from __future__ import annotations

from pathlib import Path

import httpx2
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.learn.artifact import load_model_dir
from fraudops.learn.registry import open_registry
from fraudops.types import Transaction
from tests.conftest import TrainedLake
from tests.unit.api.conftest import HEADERS, body_of
from tests.unit.api.server import running_server
from tests.unit.learn.mlflow_store import fresh_mlflow_db


def test_serve_loads_the_champion_by_alias(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """Registered and made champion, the model answers decisions under its own version."""
    registry = tmp_path / "registry"
    fresh_mlflow_db(registry)
    register = ["models", "register", str(trained_lake.model_dir), "--registry", str(registry)]
    result = CliRunner().invoke(app, [*register, "--trained-by", "ana"])
    assert 0 == result.exit_code, result.output
    # As a lead's promotion does: the CLI's `models alias` does not move the champion.
    store = open_registry(registry)
    store.set_alias("champion", 1, actor="ana", reason="first model")
    store.close()
    args = ["--model-alias", "champion", "--registry", str(registry)]
    with running_server(tmp_path, None, model_args=args) as server:
        response = httpx2.post(
            f"{server.url}/v1/transactions", json=body_of(transactions[0]), headers=HEADERS
        )
        server.terminate()
    expected = (200, load_model_dir(trained_lake.model_dir).manifest.model_version, "model")
    assert expected == (
        response.status_code,
        response.json()["model_version"],
        response.json()["source"],
    )
