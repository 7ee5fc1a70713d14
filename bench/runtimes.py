"""Single-row scoring runtimes for the default LightGBM model, and XGBoost and logistic ones.

Trains the default LightGBM model (``fit_booster``, ``HYPERPARAMETERS``, 24 features) on the
handbook's latest test-protocol training week (2018-08-15 … 21) of the lake, then times one
row at a time, as the decision service scores, through each runtime: LightGBM's fast
single-row path (``LightGBMScorer.score``), ``Booster.predict``, ONNX Runtime
(``OnnxScorer.score``, and plain ``InferenceSession.run`` for comparison), treelite's GTIL,
a tl2cgen-compiled shared library (its ``Predictor`` and its C ``predict`` called directly)
and lleaves (its ``predict`` and its compiled function called directly). Then an XGBoost
model and the logistic pipeline, each native against ONNX.

Rows cycle through 2,000 different transactions of the test week (2018-08-29 … 09-04), so
branch prediction sees real variety. Each candidate is timed per call (``perf_counter_ns``,
about 0.1 µs of it the clock's own) for ``--calls`` calls (fewer for a slow one: ``--seconds``
a repeat), ``--repeats`` times, candidates taking turns so the shared machine's noise falls
on all of them alike; p50 and p99 are the medians over the repeats, in µs. Every candidate's
single-row scores are compared with the native model's on ``--check-rows`` test rows (max
absolute difference, and how many rows differ by more than 1e-5); the ONNX models also over
the whole test week in one batch. Tools that are not dependencies (treelite, tl2cgen,
lleaves) are skipped, with the reason, when absent or broken.

    .venv/bin/python bench/runtimes.py [--lake /work/data/lake] [--calls 20000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import importlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pandas as pd

from fraudops.decide.onnx_scorer import OnnxScorer
from fraudops.decide.scorer import LightGBMScorer
from fraudops.features import feature_definition
from fraudops.learn.dataset import load_feature_table
from fraudops.learn.onnx_export import (
    INPUT_NAME,
    OUTPUT_NAME,
    lightgbm_to_onnx,
    sklearn_to_onnx,
    xgboost_to_onnx,
)
from fraudops.learn.protocol import prequential_folds, training_rows
from fraudops.learn.train import HYPERPARAMETERS, fit_booster

FloatArray = npt.NDArray[np.float64]
Score = Callable[[FloatArray], float]

TRAIN_START = date(2018, 8, 15)
TIMED_ROWS = 2000
AGREE = 1e-5


@dataclass(frozen=True)
class Candidate:
    """One way to score a row, and the model family it belongs to."""

    name: str
    score: Score
    note: str


@contextlib.contextmanager
def _native_stdout_to_stderr() -> Iterator[None]:
    """Send what native libraries print to stderr: tl2cgen logs to descriptor 1, the JSON's."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _optional(module: str) -> Any:
    """``module``, imported by name: bench-only tools need not be installed (or typed)."""
    return importlib.import_module(module)


def _time(
    candidates: list[Candidate], rows: FloatArray, args: argparse.Namespace
) -> dict[str, dict[str, float]]:
    """Median over repeats of each candidate's per-call p50 and p99, in µs.

    A slow candidate gets fewer calls (enough for ``--seconds`` a repeat, at least 2,000) so
    the run stays within minutes.
    """
    clock = time.perf_counter_ns
    samples: dict[str, list[tuple[float, float]]] = {c.name: [] for c in candidates}
    calls: dict[str, int] = {}
    row_list = list(rows)
    n = len(row_list)
    for candidate in candidates:  # warm every path up: first calls allocate and page in
        started = clock()
        for row in row_list[:1000]:
            candidate.score(row)
        per_call_s = (clock() - started) / 1e9 / min(1000, n)
        calls[candidate.name] = max(2000, min(args.calls, int(args.seconds / per_call_s)))
    for _ in range(args.repeats):
        for candidate in candidates:
            score = candidate.score
            count = calls[candidate.name]
            spent = np.empty(count, dtype=np.int64)
            for i in range(count):
                row = row_list[i % n]
                started = clock()
                score(row)
                spent[i] = clock() - started
            samples[candidate.name].append(
                (float(np.percentile(spent, 50)) / 1e3, float(np.percentile(spent, 99)) / 1e3)
            )
    return {
        name: {
            "p50_us": round(statistics.median(p50 for p50, _ in runs), 2),
            "p99_us": round(statistics.median(p99 for _, p99 in runs), 2),
            "calls_per_repeat": calls[name],
        }
        for name, runs in samples.items()
    }


def _agreement(score: Score, reference: FloatArray, rows: FloatArray) -> dict[str, float | int]:
    actual = np.array([score(row) for row in rows])
    diff = np.abs(actual - reference)
    return {"max_abs_diff": float(diff.max()), "rows_over_1e-5": int((diff > AGREE).sum())}


def _batch_agreement(reference: FloatArray, actual: FloatArray) -> dict[str, float | int]:
    diff = np.abs(actual - reference)
    return {
        "rows": len(diff),
        "max_abs_diff": float(diff.max()),
        "rows_over_1e-5": int((diff > AGREE).sum()),
    }


def _onnx_run(model: bytes, n_features: int) -> Score:
    """``InferenceSession.run`` on a reused float32 feed: the plain way, to compare."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    row = np.zeros((1, n_features), dtype=np.float32)
    feed = {INPUT_NAME: row}
    outputs = [OUTPUT_NAME]

    def score(features: FloatArray) -> float:
        row[0] = features
        return float(session.run(outputs, feed)[0][0])

    return score


def _booster_predict(booster: lgb.Booster, n_features: int) -> Score:
    row = np.zeros((1, n_features))

    def score(features: FloatArray) -> float:
        row[0] = features
        return float(booster.predict(row, num_threads=1)[0])

    return score


def _treelite(booster: lgb.Booster, n_features: int, workdir: Path) -> list[Candidate]:
    """treelite's GTIL, and a tl2cgen-compiled library through its Predictor and directly."""
    treelite = _optional("treelite")
    model = treelite.frontend.from_lightgbm(booster)
    row = np.zeros((1, n_features))

    def gtil(features: FloatArray) -> float:
        row[0] = features
        return float(treelite.gtil.predict(model, row, nthread=1).reshape(-1)[0])

    found = [Candidate("treelite_gtil", gtil, "treelite.gtil.predict, one thread")]
    tl2cgen = _optional("tl2cgen")
    library = workdir / "tl2cgen_model.so"
    started = time.perf_counter()
    tl2cgen.export_lib(model, toolchain="gcc", libpath=str(library), params={}, nthread=1)
    compile_s = time.perf_counter() - started
    predictor = tl2cgen.Predictor(str(library), nthread=1)

    def via_predictor(features: FloatArray) -> float:
        row[0] = features
        return float(predictor.predict(tl2cgen.DMatrix(row, dtype="float64")).reshape(-1)[0])

    # The generated C entry point: predict(union Entry* row, int pred_margin, double* out),
    # an Entry being a double whose low 32 bits read -1 when the value is missing. It adds
    # to *out, so out is zeroed first.
    predict = ctypes.CDLL(str(library)).predict
    predict.restype = None
    predict.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]
    entries = np.zeros(n_features)
    low_words = entries.view(np.int32)[0::2]
    out = np.zeros(1)
    entries_ptr, out_ptr = entries.ctypes.data, out.ctypes.data

    def direct(features: FloatArray) -> float:
        entries[:] = features
        low_words[np.isnan(features)] = -1
        out[0] = 0.0
        predict(entries_ptr, 0, out_ptr)
        return float(out[0])

    note = f"gcc-compiled in {compile_s:.1f} s"
    found.append(Candidate("tl2cgen_predictor", via_predictor, f"{note}; Predictor + DMatrix"))
    found.append(Candidate("tl2cgen_direct", direct, f"{note}; C predict() through ctypes"))
    return found


def _lleaves(booster: lgb.Booster, n_features: int, workdir: Path) -> list[Candidate]:
    """lleaves: the model compiled by LLVM, through ``predict`` and its function directly."""
    lleaves = _optional("lleaves")
    text = workdir / "lleaves_model.txt"
    booster.save_model(str(text))
    model = lleaves.Model(model_file=str(text))
    started = time.perf_counter()
    # Cache-blocking only helps batches; one block for a single row (lleaves' own advice).
    model.compile(cache=str(workdir / "lleaves.bin"), fblocksize=model.num_trees())
    compile_s = time.perf_counter() - started
    row = np.zeros((1, n_features))

    def via_predict(features: FloatArray) -> float:
        row[0] = features
        return float(model.predict(row, n_jobs=1)[0])

    entry = model._c_entry_func  # the compiled forest_root(data, out, start, end)
    flat = np.zeros(n_features)
    out = np.zeros(1)
    flat_ptr = flat.ctypes.data_as(ctypes.POINTER(ctypes.c_double))
    out_ptr = out.ctypes.data_as(ctypes.POINTER(ctypes.c_double))

    def direct(features: FloatArray) -> float:
        flat[:] = features
        out[0] = 0.0
        entry(flat_ptr, out_ptr, 0, 1)
        return float(out[0])

    note = f"LLVM-compiled in {compile_s:.1f} s"
    return [
        Candidate("lleaves_predict", via_predict, f"{note}; Model.predict, n_jobs=1"),
        Candidate("lleaves_direct", direct, f"{note}; forest_root through ctypes"),
    ]


def _lightgbm(
    train: pd.DataFrame, test: FloatArray, names: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    booster = fit_booster(train[names], train["is_fraud"].to_numpy())
    n = len(names)
    onnx_model = lightgbm_to_onnx(booster)
    onnx_scorer = OnnxScorer(onnx_model, "onnx", names)
    candidates = [
        Candidate(
            "lightgbm_fast",
            LightGBMScorer(booster, "native").score,
            "LightGBMScorer.score: LGBM_BoosterPredictForMatSingleRowFast",
        ),
        Candidate("lightgbm_predict", _booster_predict(booster, n), "Booster.predict, 1 thread"),
        Candidate("onnx_iobinding", onnx_scorer.score, "OnnxScorer.score: IOBinding, float32"),
        Candidate("onnx_run", _onnx_run(onnx_model, n), "InferenceSession.run, reused feed"),
    ]
    skipped: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as folder:
        for tool, build in (("treelite", _treelite), ("lleaves", _lleaves)):
            try:
                with _native_stdout_to_stderr():
                    candidates.extend(build(booster, n, Path(folder)))
            except Exception as exc:  # an absent or failing tool is reported, not fatal
                skipped[tool] = f"{type(exc).__name__}: {exc}"
        return _measured(
            lambda rows: np.asarray(booster.predict(rows, num_threads=1), dtype=np.float64),
            candidates,
            skipped,
            test,
            args,
            onnx_scorer,
        )


def _measured(
    native: Callable[[FloatArray], FloatArray],
    candidates: list[Candidate],
    skipped: dict[str, str],
    test: FloatArray,
    args: argparse.Namespace,
    onnx_scorer: OnnxScorer,
) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    timed = test[rng.choice(len(test), size=min(TIMED_ROWS, len(test)), replace=False)]
    checked = test[: args.check_rows]
    reference = np.asarray(native(checked), dtype=np.float64)
    timings = _time(candidates, timed, args)
    results = {
        c.name: {**timings[c.name], **_agreement(c.score, reference, checked), "how": c.note}
        for c in candidates
    }
    fastest = min(results, key=lambda name: results[name]["p50_us"])
    return {
        "candidates": results,
        "fastest_p50": fastest,
        "skipped": skipped,
        "onnx_batch_agreement": _batch_agreement(
            np.asarray(native(test), dtype=np.float64), onnx_scorer.score_batch(test)
        ),
    }


def _xgboost(
    train: pd.DataFrame, test: FloatArray, names: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    import xgboost as xgb

    params = {
        "objective": "binary:logistic",
        "eta": 0.05,
        "max_depth": 3,
        "nthread": 1,
        "tree_method": "hist",
        "seed": 0,
    }
    matrix = xgb.DMatrix(train[names].to_numpy(dtype=np.float64), label=train["is_fraud"])
    booster = xgb.train(params, matrix, num_boost_round=200)
    onnx_scorer = OnnxScorer(xgboost_to_onnx(booster, len(names)), "onnx", names)
    row = np.zeros((1, len(names)))

    def inplace(features: FloatArray) -> float:
        row[0] = features
        return float(booster.inplace_predict(row)[0])

    def native(rows: FloatArray) -> FloatArray:
        return np.asarray(booster.inplace_predict(rows), dtype=np.float64)

    def via_dmatrix(features: FloatArray) -> float:
        row[0] = features
        return float(booster.predict(xgb.DMatrix(row, nthread=1))[0])

    candidates = [
        Candidate("xgboost_inplace", inplace, "Booster.inplace_predict, 1 thread"),
        Candidate("xgboost_dmatrix", via_dmatrix, "Booster.predict on a new DMatrix"),
        Candidate("onnx_iobinding", onnx_scorer.score, "OnnxScorer.score"),
    ]
    return {
        "model": "200 trees of depth 3",
        **_measured(native, candidates, {}, test, args, onnx_scorer),
    }


def _logistic(
    train: pd.DataFrame, test: FloatArray, names: list[str], args: argparse.Namespace
) -> dict[str, Any]:
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(
        SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=1000)
    ).fit(train[names].to_numpy(dtype=np.float64), train["is_fraud"])
    onnx_scorer = OnnxScorer(sklearn_to_onnx(pipeline, len(names)), "onnx", names)
    row = np.zeros((1, len(names)))

    def predict_proba(features: FloatArray) -> float:
        row[0] = features
        return float(pipeline.predict_proba(row)[0, 1])

    def native(rows: FloatArray) -> FloatArray:
        return np.asarray(pipeline.predict_proba(rows)[:, 1], dtype=np.float64)

    candidates = [
        Candidate("sklearn_predict_proba", predict_proba, "Pipeline.predict_proba"),
        Candidate("onnx_iobinding", onnx_scorer.score, "OnnxScorer.score"),
    ]
    return {
        "model": "SimpleImputer + StandardScaler + LogisticRegression",
        **_measured(native, candidates, {}, test, args, onnx_scorer),
    }


def main() -> None:
    """Train the models, time every runtime, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lake", type=Path, default=Path("/work/data/lake"))
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0, help="cap per candidate and repeat")
    parser.add_argument("--check-rows", type=int, default=5_000)
    parser.add_argument("--skip-others", action="store_true", help="LightGBM runtimes only")
    args = parser.parse_args()

    fold = prequential_folds(TRAIN_START)[0]
    definition = feature_definition(7)
    names = list(definition.names)
    started = time.perf_counter()
    frame = load_feature_table(args.lake, fold.train_start, fold.test_end, definition)
    train = training_rows(frame, fold)
    test_start, test_end = fold.test_window
    in_test = ((frame["ts"] >= test_start) & (frame["ts"] < test_end)).to_numpy()
    test = frame.loc[in_test, names].to_numpy(dtype=np.float64)
    report: dict[str, Any] = {
        "train_window": [str(fold.train_start), str(fold.train_end)],
        "test_window": [str(fold.test_start), str(fold.test_end)],
        "train_rows": len(train),
        "test_rows": len(test),
        "test_rows_with_nan": int(np.isnan(test).any(axis=1).sum()),
        "features": len(names),
        "calls_per_repeat_at_most": args.calls,
        "repeats": args.repeats,
        "lightgbm": {
            "model": (
                f"fit_booster, HYPERPARAMETERS ({HYPERPARAMETERS['num_boost_round']} trees,"
                f" {HYPERPARAMETERS['num_leaves']} leaves)"
            ),
            **_lightgbm(train, test, names, args),
        },
    }
    if not args.skip_others:
        report["xgboost"] = _xgboost(train, test, names, args)
        report["logistic"] = _logistic(train, test, names, args)
    report["seconds"] = round(time.perf_counter() - started, 1)
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
