"""The ONNX scorer: exported models match native, foreign graphs are checked, bad output fails."""

from __future__ import annotations

import hashlib
import re
import threading
from pathlib import Path

import lightgbm as lgb
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from skl2onnx import to_onnx
from skl2onnx.common.data_types import FloatTensorType
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from fraudops.decide.onnx_scorer import OnnxScorer
from fraudops.decide.scorer import Scorer
from fraudops.errors import InvalidScoreError, ModelError, ModelNotFoundError
from fraudops.learn.onnx_export import lightgbm_to_onnx

NAMES = ("amount", "risk", "noise")


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    """Rows where a high amount and a high risk mean fraud; some cells unknown (NaN)."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 3))
    x[rng.random(size=3000) < 0.05, 1] = np.nan
    return x


@pytest.fixture(scope="module")
def booster(data: np.ndarray) -> lgb.Booster:
    """A small LightGBM model on ``data``."""
    y = ((data[:, 0] + np.nan_to_num(data[:, 1])) > 1.5).astype(float)
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "seed": 0}
    return lgb.train(params, lgb.Dataset(data, label=y), num_boost_round=30)


@pytest.fixture(scope="module")
def scorer(booster: lgb.Booster) -> OnnxScorer:
    """The LightGBM model, exported to ONNX and served."""
    return OnnxScorer(lightgbm_to_onnx(booster), "v1", NAMES)


def _graph(
    *,
    offset: float = 0.0,
    columns: int | None = 3,
    rows: int | None = None,
    elem: int = TensorProto.FLOAT,
    out_shape: tuple[int | str | None, ...] = ("N",),
) -> bytes:
    """A graph answering input column 0 plus ``offset``, as ``out_shape`` (columns 0, 1, …)."""
    picked = [0] if len(out_shape) == 1 else list(range(int(out_shape[1] or 1)))
    dims = [] if len(out_shape) == 1 else [len(picked)]
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["features", "column"], ["picked"], axis=1),
            helper.make_node("Add", ["picked", "offset"], ["probability"]),
        ],
        "probe",
        [helper.make_tensor_value_info("features", elem, [rows, columns])],
        [helper.make_tensor_value_info("probability", elem, list(out_shape))],
        [
            helper.make_tensor("column", TensorProto.INT64, dims, picked),
            helper.make_tensor("offset", elem, [], [offset]),
        ],
    )
    return _serialised(graph)


def _serialised(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


def test_onnx_scorer_is_a_scorer(scorer: OnnxScorer) -> None:
    """OnnxScorer satisfies the Scorer protocol, with the names it was given."""
    served: Scorer = scorer
    assert ("v1", NAMES) == (served.version, served.feature_names)


def test_single_rows_match_the_native_model(
    scorer: OnnxScorer, booster: lgb.Booster, data: np.ndarray
) -> None:
    """Scoring one row at a time gives LightGBM's own scores, NaN cells included."""
    rows = data[:200]
    singles = np.array([scorer.score(row) for row in rows])
    np.testing.assert_allclose(booster.predict(rows), singles, atol=1e-5)


def test_batch_matches_single_rows(scorer: OnnxScorer, data: np.ndarray) -> None:
    """score_batch gives the single-row scores, as float64, one per row."""
    rows = data[:100]
    batch = scorer.score_batch(rows)
    singles = np.array([scorer.score(row) for row in rows])
    assert ("float64", (100,)) == (str(batch.dtype), batch.shape)
    np.testing.assert_array_equal(singles, batch)


def test_empty_batch_is_empty(scorer: OnnxScorer) -> None:
    """A batch of no rows scores to no scores."""
    assert (0,) == scorer.score_batch(np.empty((0, 3))).shape


def test_concurrent_single_rows_keep_their_own_scores(scorer: OnnxScorer, data: np.ndarray) -> None:
    """Threads scoring at once each get their own row's score (the buffer is not shared)."""
    rows = data[:400]
    expected = scorer.score_batch(rows)
    results: dict[int, np.ndarray] = {}

    def work(part: int) -> None:
        results[part] = np.array([scorer.score(row) for row in rows[part::4]])

    threads = [threading.Thread(target=work, args=(part,)) for part in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    actual = np.empty(len(rows))
    for part, scores in results.items():
        actual[part::4] = scores
    np.testing.assert_array_equal(expected, actual)


@pytest.mark.parametrize("shape", [(2,), (1, 3), (4,)])
def test_wrong_row_shape_is_a_model_error(scorer: OnnxScorer, shape: tuple[int, ...]) -> None:
    """A single row that is not a vector of 3 features is refused, naming the shape."""
    with pytest.raises(ModelError, match=r"expects 3 features, got shape"):
        scorer.score(np.zeros(shape))


@pytest.mark.parametrize("shape", [(5, 2), (3,), (2, 4)])
def test_wrong_batch_shape_is_a_model_error(scorer: OnnxScorer, shape: tuple[int, ...]) -> None:
    """A batch that is not rows of 3 features is refused, naming the shape."""
    with pytest.raises(ModelError, match=r"expects rows of 3 features, got shape"):
        scorer.score_batch(np.zeros(shape))


@pytest.mark.parametrize("offset", [float("nan"), 2.0, -0.5])
def test_invalid_single_score_is_an_invalid_score_error(offset: float) -> None:
    """A model answering NaN or a value outside [0, 1] raises instead of deciding."""
    scorer = OnnxScorer(_graph(offset=offset), "broken", NAMES)
    with pytest.raises(InvalidScoreError, match="model broken returned an invalid score"):
        scorer.score(np.zeros(3))


@pytest.mark.parametrize("offset", [float("nan"), 2.0])
def test_invalid_batch_score_is_an_invalid_score_error(offset: float) -> None:
    """One invalid score in a batch fails the batch, naming the first bad row."""
    scorer = OnnxScorer(_graph(offset=offset), "broken", NAMES)
    rows = np.zeros((4, 3))
    with pytest.raises(InvalidScoreError, match=r"returned 4 invalid scores \(row 0"):
        scorer.score_batch(rows)


def test_explain_gives_no_reasons(scorer: OnnxScorer, data: np.ndarray) -> None:
    """An ONNX graph carries no contributions, so there are no reasons to give."""
    assert () == scorer.explain(data[0])


@pytest.mark.parametrize(
    ("elem", "out_shape"),
    [
        (TensorProto.FLOAT, ("N",)),
        (TensorProto.FLOAT, ("N", 1)),
        (TensorProto.DOUBLE, ("N", 1)),
    ],
)
def test_foreign_graph_shapes_are_served(elem: int, out_shape: tuple[int | str, ...]) -> None:
    """Float or double input, probability as [N] or [N, 1]: each is served the same way."""
    scorer = OnnxScorer(_graph(elem=elem, out_shape=out_shape), "foreign", NAMES)
    rows = np.array([[0.25, 0.0, 0.0], [0.75, 1.0, 1.0]])
    assert ([0.25, 0.75], [0.25, 0.75]) == (
        [scorer.score(row) for row in rows],
        scorer.score_batch(rows).tolist(),
    )


def test_fixed_single_row_graph_scores_batches_row_by_row() -> None:
    """A graph exported for exactly one row still scores a batch, one row at a time."""
    scorer = OnnxScorer(_graph(rows=1, out_shape=(1,)), "one-row", NAMES)
    assert [0.25, 0.5, 0.75] == scorer.score_batch(
        np.array([[0.25] * 3, [0.5] * 3, [0.75] * 3])
    ).tolist()


def test_sklearn_class_probabilities_take_the_positive_column(data: np.ndarray) -> None:
    """skl2onnx's own output (label, then probabilities [N, 2]) is served as column 1."""
    y = (np.nan_to_num(data[:, 0]) > 0.5).astype(int)
    model = make_pipeline(SimpleImputer(), LogisticRegression()).fit(data, y)
    graph = to_onnx(
        model,
        initial_types=[("input", FloatTensorType([None, 3]))],
        options={id(model.steps[-1][1]): {"zipmap": False}},
    )
    scorer = OnnxScorer(graph.SerializeToString(), "sk", NAMES)
    np.testing.assert_allclose(
        model.predict_proba(data[:50])[:, 1], scorer.score_batch(data[:50]), atol=1e-5
    )


def test_missing_file_is_model_not_found_naming_the_path(tmp_path: Path) -> None:
    """A path with no file is a ModelNotFoundError that names the path."""
    path = tmp_path / "absent.onnx"
    with pytest.raises(ModelNotFoundError, match=f"no ONNX model at {re.escape(str(path))}"):
        OnnxScorer.from_file(path, NAMES)


def test_corrupt_file_is_a_model_error_naming_the_path(tmp_path: Path) -> None:
    """A file that is not ONNX is a ModelError that names the path."""
    path = tmp_path / "corrupt.onnx"
    path.write_bytes(b"\x08\x07 this is not a model")
    with pytest.raises(ModelError, match=f"{re.escape(str(path))} is not a usable ONNX model"):
        OnnxScorer.from_file(path, NAMES)


def test_file_version_names_the_file_and_its_content(tmp_path: Path, booster: lgb.Booster) -> None:
    """A model loaded from a file without a version is versioned by file name and hash."""
    path = tmp_path / "champion.onnx"
    path.write_bytes(lightgbm_to_onnx(booster))
    scorer = OnnxScorer.from_file(path, NAMES)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    assert f"champion-{digest}" == scorer.version


def test_feature_count_mismatch_names_the_file(tmp_path: Path) -> None:
    """A graph reading 5 features, given 3 names, is refused naming the file and counts."""
    path = tmp_path / "five.onnx"
    path.write_bytes(_graph(columns=5))
    with pytest.raises(
        ModelError, match=f"{re.escape(str(path))} takes 5 features per row, but 3 feature names"
    ):
        OnnxScorer.from_file(path, NAMES)


def test_output_with_three_columns_is_refused(tmp_path: Path) -> None:
    """An output of three values per row is not a probability the scorer can pick."""
    path = tmp_path / "three.onnx"
    path.write_bytes(_graph(out_shape=("N", 3)))
    with pytest.raises(
        ModelError, match=rf"{re.escape(str(path))} output 'probability' has shape \['N', 3\]"
    ):
        OnnxScorer.from_file(path, NAMES)


def test_graph_that_cannot_read_the_features_fails_at_load() -> None:
    """A graph of open width that cannot take 3 features fails when loaded, not in service."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["features", "weights"], ["probability"])],
        "five",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, None])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor("weights", TensorProto.FLOAT, [5, 1], [0.1] * 5)],
    )
    with pytest.raises(ModelError, match=r"five\.onnx fails on one row of 3 features"):
        OnnxScorer(_serialised(graph), "five", NAMES, source="five.onnx")


def test_duplicate_feature_names_are_refused(booster: lgb.Booster) -> None:
    """Feature names must be distinct."""
    with pytest.raises(ModelError, match="must be distinct"):
        OnnxScorer(lightgbm_to_onnx(booster), "v1", ("amount", "amount", "noise"))


def test_tree_ensemble_is_latency_bounded(scorer: OnnxScorer) -> None:
    """A converted tree ensemble is fixed-cost, so it may run on the event loop."""
    assert True is scorer.latency_bounded


def test_graph_with_control_flow_is_not_latency_bounded() -> None:
    """A graph with an If node is isolated on the model's threads."""
    branch = helper.make_graph(
        [helper.make_node("Identity", ["first"], ["chosen"])],
        "branch",
        [],
        [helper.make_tensor_value_info("chosen", TensorProto.FLOAT, ["N"])],
    )
    graph = helper.make_graph(
        [
            helper.make_node("Gather", ["features", "column"], ["first"], axis=1),
            helper.make_node(
                "If", ["yes"], ["probability"], then_branch=branch, else_branch=branch
            ),
        ],
        "control",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N"])],
        [
            helper.make_tensor("column", TensorProto.INT64, [], [0]),
            helper.make_tensor("yes", TensorProto.BOOL, [], [True]),
        ],
    )
    scorer = OnnxScorer(_serialised(graph), "branchy", NAMES)
    assert (False, 0.5) == (scorer.latency_bounded, scorer.score(np.array([0.5, 0.0, 0.0])))
