"""What the MLflow-backed registry costs a process that only loads the champion at start.

Each figure is taken in a fresh interpreter (imports are cached per process), a few times:

- ``import_s``: importing MLflow the way fraudops does (telemetry off, SQL stores), in a
  process that has already imported the model loaders (LightGBM, pandas, scikit-learn);
- ``open_s``: opening an existing registry database (no migrations);
- ``load_dir_cold_s``: ``load_dir('champion')`` into an empty cache (download and check);
- ``load_dir_warm_s``: the same with the checked copy already cached;
- ``startup_s``: everything a service would pay at start: import, open, load_dir (warm);
- ``rss_mb``: the resident memory the MLflow import adds.

    .venv/bin/python bench/registry.py --model-dir M [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

PROBE = r"""
import json, sys, time
from pathlib import Path
def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
# What the service imports anyway (the model loaders) comes first, outside the figures.
import fraudops.learn.artifact
from fraudops.learn.tracking import _import_mlflow
before = rss_kb()
t0 = time.perf_counter()
_import_mlflow()
t1 = time.perf_counter()
rss = rss_kb()
from fraudops.learn.registry import open_registry
registry = open_registry(Path(sys.argv[1]))
registry.versions()
t2 = time.perf_counter()
path = registry.load_dir("champion")
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "open_s": t2 - t1, "load_dir_s": t3 - t2,
                  "startup_s": t3 - t0, "rss_mb": (rss - before) / 1024, "dir": str(path)}))
"""


def probe(root: Path) -> dict[str, float]:
    """One fresh interpreter's figures."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, str(root)], capture_output=True, text=True, check=True
    )
    values: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from fraudops.learn.registry import lineage_from_model_dir, open_registry

    root = Path(tempfile.mkdtemp(prefix="fraudops-bench-registry-"))
    try:
        registry = open_registry(root)
        version = registry.register(
            args.model_dir, lineage=lineage_from_model_dir(args.model_dir, trained_by="bench")
        )
        registry.set_alias("champion", version.version, actor="bench", reason="benchmark")
        registry.close()
        cold, warm = [], []
        for _ in range(args.repeats):
            shutil.rmtree(root / "cache", ignore_errors=True)
            cold.append(probe(root))
            warm.append(probe(root))
        model_bytes = sum(p.stat().st_size for p in args.model_dir.rglob("*") if p.is_file())

        def median(runs: list[dict[str, float]], key: str) -> float:
            return round(statistics.median(run[key] for run in runs), 3)

        print(
            json.dumps(
                {
                    "repeats": args.repeats,
                    "model_bytes": model_bytes,
                    "import_s": median(cold + warm, "import_s"),
                    "open_s": median(cold + warm, "open_s"),
                    "load_dir_cold_s": median(cold, "load_dir_s"),
                    "load_dir_warm_s": median(warm, "load_dir_s"),
                    "startup_warm_s": median(warm, "startup_s"),
                    "rss_mb": median(cold + warm, "rss_mb"),
                },
                indent=2,
            )
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
