"""The baseline for the decision service's overhead: FastAPI, a request model and one score.

One POST endpoint parses the same JSON body as the service's ``/v1/transactions`` with a
minimal pydantic model and answers the LightGBM score of one FIXED, precomputed feature row:
no features, no state, no policy, no decision log, no metrics, no logging. Whatever the
service's latency is above this one's, at the same rate in the same run, is what the system
adds. It runs the way the service does: uvicorn, one worker, uvloop, httptools, no access log.

    .venv/bin/python bench/bare_app.py --model-dir M [--host 127.0.0.1] [--port 8001]
        [--features '[0.0, null, …]']
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from fraudops.decide.ensemble_scorer import load_scorer

PATH = "/v1/transactions"


class TransactionIn(BaseModel):
    """The request body: the transaction fields the service's endpoint takes."""

    transaction_id: str
    timestamp: datetime
    customer_id: str
    terminal_id: str
    amount: float
    terminal_x: float | None = None
    terminal_y: float | None = None


class ScoreOut(BaseModel):
    """The response: the fixed row's fraud probability under the model."""

    transaction_id: str
    score: float
    model_version: str


def create_bare_app(model_dir: Path, features: Sequence[float | None] | None = None) -> FastAPI:
    """The bare app serving the model in ``model_dir`` on ``features`` (default: all unknown).

    ``None`` in ``features`` means unknown (NaN), as in the feature stage's output.
    """
    scorer = load_scorer(model_dir)
    row = (
        np.full(len(scorer.feature_names), math.nan)
        if features is None
        else np.array([math.nan if v is None else v for v in features], dtype=np.float64)
    )
    scorer.score(row)  # refuses a row of the wrong length now rather than on every request
    app = FastAPI(title="fraudops bare baseline", openapi_url=None, docs_url=None)

    @app.post(PATH)
    async def score(tx: TransactionIn) -> ScoreOut:
        return ScoreOut(
            transaction_id=tx.transaction_id, score=scorer.score(row), model_version=scorer.version
        )

    @app.get("/readyz")
    async def ready() -> dict[str, str]:
        return {"status": "ready"}

    return app


def main() -> None:
    """Serve the bare app until interrupted (SIGTERM/SIGINT stop uvicorn gracefully)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--features", default=None, help="the fixed row as a JSON list")
    args = parser.parse_args()
    features = None if args.features is None else json.loads(args.features)
    uvicorn.run(
        create_bare_app(args.model_dir, features),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        ws="none",
        lifespan="off",
        access_log=False,
        log_level="warning",
        workers=1,
    )


if __name__ == "__main__":
    main()
