"""Run a real Prometheus server for a test, scraping given targets, and query it.

``running_prometheus`` starts the Debian ``prometheus`` binary on a free loopback port with
its data in the test's temporary folder, scraping every second under ``job="fraudops"``
(the job the alert rules aggregate by), and stops it afterwards. ``wait_for_result`` polls
the HTTP query API until an expression returns what the test waits for.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx
import yaml

from tests.services import free_port, require_program

PROMETHEUS_DIR = Path(__file__).resolve().parents[3] / "deploy" / "prometheus"
"""The deployed Prometheus configuration, rules and rule tests."""
RULES_FILE = PROMETHEUS_DIR / "rules" / "fraudops.rules.yml"
"""The deployed recording rules and alerts, to pass as ``rule_files``."""

Result = list[dict[str, Any]]
"""The ``data.result`` of an instant query: one dict per series (``metric``, ``value``)."""


@contextmanager
def running_prometheus(
    tmp_path: Path,
    targets: Sequence[str],
    rule_files: Sequence[Path] = (),
    *,
    job: str = "fraudops",
    interval_s: int = 1,
    start_timeout_s: float = 30.0,
) -> Iterator[str]:
    """Run Prometheus scraping ``targets`` (``host:port``, path /metrics); yield its base URL.

    Scrapes and rule evaluations happen every ``interval_s`` seconds. Skips the test (fails
    it in CI) when the ``prometheus`` program is missing; raises if the server exits or is
    not ready within ``start_timeout_s``, with its log in the message.
    """
    program = require_program("prometheus", "prometheus")
    folder = tmp_path / "prometheus"
    folder.mkdir()
    config = {
        "global": {
            "scrape_interval": f"{interval_s}s",
            "scrape_timeout": f"{interval_s}s",
            "evaluation_interval": f"{interval_s}s",
        },
        "rule_files": [str(Path(path).resolve()) for path in rule_files],
        "scrape_configs": [
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": list(targets)}],
            }
        ],
    }
    config_path = folder / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    base_url = f"http://127.0.0.1:{free_port()}"
    log_path = folder / "prometheus.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                program,
                f"--config.file={config_path}",
                f"--storage.tsdb.path={folder / 'data'}",
                f"--web.listen-address={base_url.removeprefix('http://')}",
                "--log.level=warn",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_ready(process, base_url, log_path, start_timeout_s)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(
    process: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout_s: float
) -> None:
    """Return once Prometheus answers /-/ready; raise if it exits or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = log_path.read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"prometheus exited with {process.returncode}:\n{log}")
        try:
            if httpx.get(f"{base_url}/-/ready", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.1)
    log = log_path.read_text(encoding="utf-8", errors="replace")
    raise RuntimeError(f"prometheus not ready after {timeout_s} s:\n{log}")


def query(base_url: str, expr: str) -> Result:
    """The result of the instant query ``expr`` now."""
    response = httpx.get(f"{base_url}/api/v1/query", params={"query": expr}, timeout=5.0)
    response.raise_for_status()
    body = response.json()
    if body.get("status") != "success":
        raise RuntimeError(f"query {expr!r} failed: {body}")
    result: Result = body["data"]["result"]
    return result


def wait_for_result(
    base_url: str,
    expr: str,
    done: Callable[[Result], bool] = bool,
    *,
    timeout_s: float = 30.0,
) -> Result:
    """Poll ``expr`` until ``done(result)`` (by default: any series); return that result.

    Raises AssertionError with the last result when ``timeout_s`` passes first.
    """
    deadline = time.monotonic() + timeout_s
    result = query(base_url, expr)
    while not done(result):
        if time.monotonic() > deadline:
            raise AssertionError(f"{expr!r} still gives {result} after {timeout_s} s")
        # Prometheus offers no notification of a scrape: polling at a fraction of the
        # scrape interval is the event loop here.
        time.sleep(0.2)
        result = query(base_url, expr)
    return result


def values(result: Result) -> list[float]:
    """The sample values of an instant query result, in its order."""
    return [float(series["value"][1]) for series in result]
