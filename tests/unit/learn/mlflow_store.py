"""A fresh MLflow database per test, copied from one migrated once per test process.

Creating MLflow's schema runs its whole migration history (seconds); a copy of the file
takes milliseconds and is the same empty store.
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
from pathlib import Path

from fraudops.learn.tracking import mlflow_client


@functools.cache
def _template() -> Path:
    root = Path(tempfile.mkdtemp(prefix="fraudops-mlflow-"))
    atexit.register(shutil.rmtree, root, True)
    database = root / "mlflow.db"
    mlflow_client(f"sqlite:///{database}")
    return database


def fresh_mlflow_db(directory: Path) -> str:
    """Put an empty, migrated ``mlflow.db`` in ``directory``; return its URI."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / "mlflow.db"
    shutil.copyfile(_template(), target)
    return f"sqlite:///{target.resolve()}"
