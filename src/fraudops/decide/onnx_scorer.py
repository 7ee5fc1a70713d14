"""An ONNX model as a Scorer, through ONNX Runtime on the calling thread.

Any binary classifier exported to ONNX can be served: the graphs ``learn.onnx_export``
writes (LightGBM, XGBoost, scikit-learn, PyTorch) and models trained elsewhere (TensorFlow
through tf2onnx, for instance). The graph must take one float or double tensor
``[N, n_features]`` (or ``[1, n_features]``) and give, as its only floating-point output or
the one named, the positive-class probability shaped ``[N]``, ``[N, 1]``, or ``[N, 2]`` (class
probabilities, column 1 positive, as scikit-learn's converters write). Both are checked when
the model is loaded, by its declared shapes and by scoring one row of zeros.

Which runtime serves one row fastest (``bench/runtimes.py``: the default LightGBM model, 24
features, 200 trees of 7 leaves, trained on 2018-08-15 … 21; rows of the test week; p50 / p99
in µs, median of 5 repeats of 20,000 calls on 2 shared, busy cores; agreement with native
LightGBM over 5,000 rows):

    lleaves, compiled forest called directly    3.9 /   6.0   exact
    tl2cgen .so, C predict() called directly    5.7 /  10.0   2 rows off by up to 8.6e-4
    LightGBM fast single-row path (default)    10.1 /  18.6   exact
    lleaves Model.predict                      14.0 /  99     exact
    ONNX Runtime, this scorer (IOBinding)      15.7 /  67     within 1.5e-7
    ONNX Runtime, InferenceSession.run         18.4 /  82     within 1.5e-7
    tl2cgen Predictor                          39.7 / 4182    2 rows off
    LightGBM Booster.predict                   51.5 / 4257    exact
    treelite GTIL                              78.4 / 4829    exact

For a LightGBM model, LightGBM's own fast path stays the serving default: ONNX Runtime costs
about 5 µs more a row (its fixed cost per run: the whole logistic pipeline takes 9.7 µs) and
gives no SHAP reasons. The two compiled forests are faster still only when called through
ctypes past their Python APIs; lleaves needs llvmlite older than 0.45 (1.3.0 fails on 0.50),
several seconds of compiling per model load, and gives no contributions either; tl2cgen
reads a double whose low 32 bits are all ones as missing (its input union's flag), so
values one ulp below a short binary fraction (61.18749999999999) take the missing branch.
A few µs of a decision measured in milliseconds earns neither a dependency.

For every other model, ONNX Runtime is the fast path by far: an XGBoost model (200 trees of
depth 3) scores in 15.2 µs against 261 µs for ``Booster.inplace_predict``, and the
imputer, scaler and logistic regression pipeline in 9.7 µs against 888 µs for
``predict_proba``. Over the whole test week (68,321 rows, 61,042 with a missing value) the
ONNX graphs agree with their native models within 9e-7: the float32 thresholds of the ONNX
tree ensembles sent no row down another branch.

The session runs with one intra-op thread and sequential execution, so every kernel runs on
the thread that calls ``score``: no pool to hand work to, nothing to wait for. A single row
goes through an IOBinding bound once to a preallocated input row and output buffer: 2.7 µs
less than ``InferenceSession.run`` with a reused numpy feed in the runs above (7 µs in a
quieter one), since ``run`` makes new input and output arrays each call.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import onnxruntime as ort

from fraudops.decide.scorer import _checked
from fraudops.errors import InvalidScoreError, ModelError, ModelNotFoundError
from fraudops.types import Reason

FloatArray = npt.NDArray[np.float64]

_TENSOR_TYPES: dict[str, type[np.floating[Any]]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
}

# Operators whose work, for a fixed input shape, is fixed by the graph: no control flow, no
# shapes or loop counts read from the data, no custom domains. A graph built only of these
# costs the same for every row (a tree ensemble walks each tree once to a leaf).
_FIXED_COST_OPERATORS = frozenset(
    {
        # ai.onnx.ml
        "TreeEnsembleClassifier", "TreeEnsembleRegressor", "TreeEnsemble", "LinearClassifier",
        "LinearRegressor", "Imputer", "Scaler", "Normalizer", "Binarizer", "FeatureVectorizer",
        # ai.onnx: arithmetic, activations, linear algebra, fixed reshaping
        "Abs", "Add", "And", "ArgMax", "ArgMin", "BatchNormalization", "Cast", "Ceil", "Clip",
        "Concat", "Constant", "Div", "Equal", "Erf", "Exp", "Flatten", "Floor", "Gather",
        "Gemm", "Gelu", "Greater", "GreaterOrEqual", "HardSigmoid", "Identity", "IsInf",
        "IsNaN", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log", "LogSoftmax",
        "MatMul", "Max", "Mean", "Min", "Mul", "Neg", "Not", "Or", "Pow", "PRelu", "Reciprocal",
        "ReduceMax", "ReduceMean", "ReduceMin", "ReduceSum", "Relu", "Reshape", "Round",
        "Selu", "Shape", "Sigmoid", "Sign", "Slice", "Softmax", "Softplus", "Split", "Sqrt",
        "Squeeze", "Sub", "Sum", "Tanh", "Transpose", "Unsqueeze", "Where", "Xor",
    }
)  # fmt: skip
_STANDARD_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})


def fixed_cost(model: onnx.ModelProto) -> bool:
    """Whether every node of ``model``'s graph is a standard operator of fixed cost."""
    return all(
        node.domain in _STANDARD_DOMAINS and node.op_type in _FIXED_COST_OPERATORS
        for node in model.graph.node
    )


class OnnxScorer:
    """An ONNX binary classifier as a Scorer; thread-safe.

    ``explain`` returns no reasons: an ONNX graph carries no per-feature contributions, so
    a decision this model makes is explained by its score and the rules alone.
    """

    latency_bounded: bool
    """True when the graph holds only fixed-cost operators (``fixed_cost``): scored on the
    calling thread by one intra-op thread, it cannot block or wait, so the decision service
    may run it on its event loop (see ``decide.models``), checked against its timeout after
    each call. Any other graph (control flow, data-dependent shapes, custom operators) is
    isolated on the model's own threads."""

    def __init__(
        self,
        model: bytes,
        version: str,
        feature_names: Sequence[str],
        *,
        source: str = "ONNX model",
        output: str | None = None,
    ) -> None:
        """Load ``model`` (ONNX bytes; ``source`` names it in errors) to score ``feature_names``.

        ``output`` names the probability output when the graph has several floating-point
        outputs.
        """
        self.version = version
        self.feature_names = tuple(feature_names)
        self.source = source
        self._n = len(self.feature_names)
        if self._n == 0 or len(set(self.feature_names)) != self._n:
            raise ModelError(f"{source}: feature names must be distinct and not empty")
        try:
            proto = onnx.load_from_string(model)
            self._session = ort.InferenceSession(
                model, _session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # protobuf and ONNX Runtime raise their own kinds
            raise ModelError(f"{source} is not a usable ONNX model: {exc}") from exc
        self.latency_bounded = fixed_cost(proto)
        self._input, self._dtype, self._fixed_single = self._checked_input()
        self._output, out_dtype, out_rank, out_columns = self._checked_output(output)
        # The single-row path: one input row and one output buffer, bound once. The positive
        # class is the buffer's last value whether it is [1], [1, 1] or [1, 2].
        self._row = np.zeros((1, self._n), dtype=self._dtype)
        self._out = np.zeros((1,) if out_rank == 1 else (1, out_columns), dtype=out_dtype)
        self._binding = self._session.io_binding()
        self._binding.bind_ortvalue_input(self._input, ort.OrtValue.ortvalue_from_numpy(self._row))
        self._binding.bind_ortvalue_output(
            self._output, ort.OrtValue.ortvalue_from_numpy(self._out)
        )
        self._lock = threading.Lock()
        self._probe()

    @classmethod
    def from_file(
        cls,
        path: Path,
        feature_names: Sequence[str],
        *,
        version: str | None = None,
        output: str | None = None,
    ) -> OnnxScorer:
        """Load an ``.onnx`` file that scores rows of ``feature_names``, in that order.

        The version defaults to the file's name and the start of its SHA-256, so two
        different files never share one.
        """
        try:
            model = Path(path).read_bytes()
        except FileNotFoundError as exc:
            raise ModelNotFoundError(f"no ONNX model at {path}") from exc
        except OSError as exc:
            raise ModelError(f"cannot read ONNX model {path}: {exc}") from exc
        if version is None:
            version = f"{Path(path).stem}-{hashlib.sha256(model).hexdigest()[:12]}"
        return cls(model, version, feature_names, source=str(path), output=output)

    def _checked_input(self) -> tuple[str, type[np.floating[Any]], bool]:
        inputs = self._session.get_inputs()
        if len(inputs) != 1:
            names = [node.name for node in inputs]
            raise ModelError(f"{self.source} must take one input tensor, not {names}")
        node = inputs[0]
        dtype = _TENSOR_TYPES.get(node.type)
        if dtype is None:
            raise ModelError(f"{self.source} input {node.name!r} is {node.type}, not float")
        shape = list(node.shape)
        if len(shape) != 2:
            raise ModelError(
                f"{self.source} input {node.name!r} has shape {shape}, not [rows, features]"
            )
        rows, columns = shape
        if isinstance(columns, int) and columns != self._n:
            raise ModelError(
                f"{self.source} takes {columns} features per row, but {self._n} feature names"
                " were given"
            )
        if isinstance(rows, int) and rows != 1:
            raise ModelError(f"{self.source} takes exactly {rows} rows at a time")
        return node.name, dtype, rows == 1

    def _checked_output(self, name: str | None) -> tuple[str, type[np.floating[Any]], int, int]:
        """The probability output's name, dtype, rank and columns (1 when rank 1)."""
        outputs = {node.name: node for node in self._session.get_outputs()}
        if name is None:
            usable = [node for node in outputs.values() if node.type in _TENSOR_TYPES]
            if len(usable) != 1:
                raise ModelError(
                    f"{self.source} has {len(usable)} float outputs"
                    f" ({[node.name for node in usable]}): name the probability output"
                )
            node = usable[0]
        elif name in outputs:
            node = outputs[name]
        else:
            raise ModelError(f"{self.source} has no output {name!r}, only {list(outputs)}")
        dtype = _TENSOR_TYPES.get(node.type)
        if dtype is None:
            raise ModelError(f"{self.source} output {node.name!r} is {node.type}, not float")
        shape = list(node.shape)
        if len(shape) == 1:
            return node.name, dtype, 1, 1
        if len(shape) == 2 and shape[1] in (1, 2):
            return node.name, dtype, 2, shape[1]
        raise ModelError(
            f"{self.source} output {node.name!r} has shape {shape}: expected the positive-class"
            " probability as [N], [N, 1] or [N, 2]"
        )

    def _probe(self) -> None:
        """Score one row of zeros, so a graph that cannot run fails at load, not in service."""
        try:
            with self._lock:
                self._session.run_with_iobinding(self._binding)
            (out,) = self._session.run([self._output], {self._input: self._row})
        except Exception as exc:  # ONNX Runtime raises its own kinds
            raise ModelError(
                f"{self.source} fails on one row of {self._n} features: {exc}"
            ) from exc
        if np.shape(out) != self._out.shape:
            raise ModelError(
                f"{self.source} output {self._output!r} has shape {list(np.shape(out))} for one"
                f" row, expected {list(self._out.shape)}"
            )

    def _positive(self, out: npt.NDArray[Any], rows: int) -> FloatArray:
        """The positive-class column of a batch's output, checked to hold one per row."""
        table = np.asarray(out, dtype=np.float64).reshape(rows, -1)
        if table.shape[1] != self._out.size:
            raise ModelError(
                f"model {self.version} output {self._output!r} has shape {list(np.shape(out))}"
                f" for {rows} rows"
            )
        return table[:, -1].copy()

    def score(self, features: FloatArray) -> float:
        """The fraud probability of one transaction (NaN features mean unknown)."""
        row = np.asarray(features)
        if row.shape != (self._n,):
            raise ModelError(
                f"model {self.version} expects {self._n} features, got shape {row.shape}"
            )
        return _checked(self._one(row), self.version)

    def score_batch(self, features: FloatArray) -> FloatArray:
        """Fraud probabilities of many transactions, one row each."""
        rows = np.asarray(features)
        if rows.ndim != 2 or rows.shape[1] != self._n:
            raise ModelError(
                f"model {self.version} expects rows of {self._n} features, got shape {rows.shape}"
            )
        if rows.shape[0] == 0:
            return np.empty(0, dtype=np.float64)
        if self._fixed_single:
            scores = np.array([self._one(row) for row in rows], dtype=np.float64)
        else:
            feed = np.ascontiguousarray(rows, dtype=self._dtype)
            try:
                (out,) = self._session.run([self._output], {self._input: feed})
            except Exception as exc:  # ONNX Runtime raises its own kinds
                raise ModelError(f"model {self.version} failed to score: {exc}") from exc
            scores = self._positive(out, len(rows))
        bad = ~(np.isfinite(scores) & (scores >= 0.0) & (scores <= 1.0))
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise InvalidScoreError(
                f"model {self.version} returned {int(bad.sum())} invalid scores"
                f" (row {first}: {scores[first]!r})"
            )
        return scores

    def _one(self, row: FloatArray) -> float:
        """One row's raw score through the bound buffers."""
        with self._lock:
            self._row[0] = row
            try:
                self._session.run_with_iobinding(self._binding)
            except Exception as exc:  # ONNX Runtime raises its own kinds
                raise ModelError(f"model {self.version} failed to score: {exc}") from exc
            return float(self._out.flat[-1])

    def explain(self, features: FloatArray, top: int = 3) -> tuple[Reason, ...]:
        """No reasons: an ONNX graph carries no per-feature contributions to report."""
        return ()


def _session_options() -> ort.SessionOptions:
    options = ort.SessionOptions()
    # One thread, sequential: kernels run on the caller's thread, with no pool to wake.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Runtime notes go to the process's stderr, not the logs; keep only errors.
    options.log_severity_level = 3
    return options
