"""``fraudops serve`` as a real process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx2

from fraudops.api.auth import key_hash
from tests.services import free_port
from tests.unit.api.conftest import KEY


@dataclass
class Server:
    """A running service process."""

    process: subprocess.Popen[bytes]
    port: int
    database: Path

    @property
    def url(self) -> str:
        """The service's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def terminate(self, timeout_s: float = 20.0) -> int:
        """Send SIGTERM and wait for the process to exit; its exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout_s)


@contextmanager
def running_server(
    tmp_path: Path, model_dir: Path | None, *, model_args: list[str] | None = None, **env: str
) -> Iterator[Server]:
    """Start ``fraudops serve`` on ``model_dir`` (or ``model_args``), wait until it is ready."""
    port = free_port()
    database = tmp_path / "decisions.db"
    environment = {
        **os.environ,
        "FRAUDOPS_API__KEY_HASHES": f'["{key_hash(KEY)}"]',
        "FRAUDOPS_DECISION_LOG__URL": f"sqlite:///{database}",
        "FRAUDOPS_DECISION_LOG__SPILL_DIR": str(tmp_path / "spill"),
        "FRAUDOPS_OBSERVABILITY__LOG_LEVEL": "WARNING",
        "FRAUDOPS_SERVICE__WARMUP_ROWS": "5",
        "FRAUDOPS_DATA_DIR": str(tmp_path / "data"),
        **env,
    }
    command = [
        str(Path(sys.executable).parent / "fraudops"), "serve",
        *(model_args if model_args is not None else ["--model-dir", str(model_dir)]),
        "--host", "127.0.0.1", "--port", str(port),
    ]  # fmt: skip
    log_file = (tmp_path / "serve.log").open("wb")
    process = subprocess.Popen(command, env=environment, stdout=log_file, stderr=log_file)
    server = Server(process, port, database)
    try:
        _wait_ready(server, tmp_path / "serve.log")
        yield server
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log_file.close()


def _wait_ready(server: Server, log: Path, timeout_s: float = 60.0) -> None:
    give_up = time.monotonic() + timeout_s
    while time.monotonic() < give_up:
        if server.process.poll() is not None:
            raise RuntimeError(f"fraudops serve exited early:\n{log.read_text()}")
        try:
            if httpx2.get(f"{server.url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"fraudops serve was not ready in {timeout_s} s:\n{log.read_text()}")
