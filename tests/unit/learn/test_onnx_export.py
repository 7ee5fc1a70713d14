"""ONNX export: each converter's graph answers what the native model answers, NaN included."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightgbm as lgb
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import xgboost as xgb
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from fraudops.errors import ModelError
from fraudops.learn.onnx_export import (
    INPUT_NAME,
    OUTPUT_NAME,
    lightgbm_to_onnx,
    sklearn_to_onnx,
    torch_to_onnx,
    xgboost_to_onnx,
)
from tests.services import unavailable

N_FEATURES = 3
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def training() -> tuple[np.ndarray, np.ndarray]:
    """Rows where fraud follows x0 > 0.5 (x0 never missing), a missing x1, or x2 < -1."""
    rng = np.random.default_rng(0)
    n = 4000
    x0 = rng.normal(size=n)
    x1 = rng.normal(size=n)
    missing = rng.random(n) < 0.3
    x1[missing] = np.nan
    x2 = rng.normal(size=n)
    fraud = (x0 > 0.5) | (missing & (rng.random(n) < 0.7)) | (x2 < -1.0)
    return np.column_stack([x0, x1, x2]), fraud.astype(np.float64)


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    """Rows to score: random ones with a fifth of cells NaN, and every NaN pattern."""
    rng = np.random.default_rng(1)
    random = rng.normal(size=(300, N_FEATURES))
    random[rng.random(random.shape) < 0.2] = np.nan
    patterns = np.array(
        [[np.nan if (mask >> i) & 1 else value for i in range(N_FEATURES)] for mask in range(8)
         for value in (-2.0, 0.0, 2.0)]
    )  # fmt: skip
    return np.vstack([random, patterns])


@pytest.fixture(scope="module")
def booster(training: tuple[np.ndarray, np.ndarray]) -> lgb.Booster:
    """A small LightGBM model: x1 learned a missing direction, x0 and x2 never saw NaN."""
    features, labels = training
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "num_leaves": 7}
    return lgb.train(params, lgb.Dataset(features, label=labels), num_boost_round=30)


@pytest.fixture(scope="module")
def xgb_booster(training: tuple[np.ndarray, np.ndarray]) -> xgb.Booster:
    """A small XGBoost model on the same rows."""
    features, labels = training
    params = {"objective": "binary:logistic", "nthread": 1, "max_depth": 3, "seed": 0}
    return xgb.train(params, xgb.DMatrix(features, label=labels), num_boost_round=30)


@pytest.fixture(scope="module")
def pipeline(training: tuple[np.ndarray, np.ndarray]) -> Pipeline:
    """Median imputation, scaling and a logistic regression on the same rows."""
    features, labels = training
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression())
    return model.fit(features, labels)


def _onnx_scores(model: bytes, rows: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    (out,) = session.run([OUTPUT_NAME], {INPUT_NAME: rows.astype(np.float32)})
    return np.asarray(out, dtype=np.float64)


def test_lightgbm_graph_matches_native_on_rows_with_nan(
    booster: lgb.Booster, rows: np.ndarray
) -> None:
    """LightGBM's ONNX graph scores every row as LightGBM does, NaN cells included."""
    np.testing.assert_allclose(
        booster.predict(rows), _onnx_scores(lightgbm_to_onnx(booster), rows), atol=TOLERANCE
    )


def test_lightgbm_missing_directions_reach_the_graph(booster: lgb.Booster) -> None:
    """NaN follows LightGBM's learned branch (x1) and reads as 0 where none was seen (x0, x2)."""
    probes = np.array([[0.0, np.nan, 0.0], [np.nan, 0.0, 0.0], [0.0, 0.0, np.nan]])
    as_zero = np.array([[0.0, 0.0, 0.0]] * 3)
    native = booster.predict(probes)
    # The probes are only a test of the graph if NaN means something of its own in x1.
    assert (True, True) == (
        native[0] - booster.predict(as_zero[:1])[0] > 0.1,
        bool(np.allclose(booster.predict(as_zero[1:]), native[1:])),
    )
    np.testing.assert_allclose(native, _onnx_scores(lightgbm_to_onnx(booster), probes), atol=1e-5)


def test_lightgbm_zero_as_missing_is_refused(training: tuple[np.ndarray, np.ndarray]) -> None:
    """A model that treats 0 as missing is refused: its graph would branch 0.0 wrongly."""
    features, labels = training
    params = {"objective": "binary", "verbosity": -1, "num_threads": 1, "zero_as_missing": True}
    model = lgb.train(params, lgb.Dataset(features, label=labels), num_boost_round=3)
    with pytest.raises(ModelError, match="zero_as_missing"):
        lightgbm_to_onnx(model)


def test_lightgbm_regression_is_refused(training: tuple[np.ndarray, np.ndarray]) -> None:
    """Only binary classifiers convert: a regression model has no fraud probability."""
    features, labels = training
    params = {"objective": "regression", "verbosity": -1, "num_threads": 1}
    model = lgb.train(params, lgb.Dataset(features, label=labels), num_boost_round=3)
    with pytest.raises(ModelError, match="only binary LightGBM"):
        lightgbm_to_onnx(model)


def test_xgboost_graph_matches_native_on_rows_with_nan(
    xgb_booster: xgb.Booster, rows: np.ndarray
) -> None:
    """XGBoost's ONNX graph scores every row as XGBoost does, NaN cells included."""
    native = xgb_booster.predict(xgb.DMatrix(rows))
    onnx_scores = _onnx_scores(xgboost_to_onnx(xgb_booster, N_FEATURES), rows)
    np.testing.assert_allclose(native, onnx_scores, atol=TOLERANCE)


def test_xgboost_wrong_feature_count_is_refused(xgb_booster: xgb.Booster) -> None:
    """A feature count that differs from the booster's is refused, naming both."""
    with pytest.raises(ModelError, match="reads 3 features, not 4"):
        xgboost_to_onnx(xgb_booster, 4)


def test_xgboost_raw_margin_objective_is_refused(training: tuple[np.ndarray, np.ndarray]) -> None:
    """A booster whose output is not a probability (binary:logitraw) is refused."""
    features, labels = training
    params = {"objective": "binary:logitraw", "nthread": 1}
    model = xgb.train(params, xgb.DMatrix(features, label=labels), num_boost_round=2)
    with pytest.raises(ModelError, match="binary:logitraw"):
        xgboost_to_onnx(model, N_FEATURES)


def test_sklearn_pipeline_graph_matches_predict_proba(pipeline: Pipeline, rows: np.ndarray) -> None:
    """Imputer, scaler and logistic regression in ONNX give predict_proba's column 1."""
    native = pipeline.predict_proba(rows)[:, 1]
    np.testing.assert_allclose(
        native, _onnx_scores(sklearn_to_onnx(pipeline, N_FEATURES), rows), atol=TOLERANCE
    )


def test_sklearn_regressor_is_refused(training: tuple[np.ndarray, np.ndarray]) -> None:
    """A scikit-learn model with no two classes is refused."""
    features, labels = training
    model = LinearRegression().fit(np.nan_to_num(features), labels)
    with pytest.raises(ModelError, match="binary scikit-learn classifiers"):
        sklearn_to_onnx(model, N_FEATURES)


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        unavailable("torch is not installed (the 'torch' extra)")
    torch.manual_seed(0)
    return torch


def _network(torch: Any, outputs: int = 1) -> Any:
    return torch.nn.Sequential(
        torch.nn.Linear(N_FEATURES, 8),
        torch.nn.ReLU(),
        torch.nn.Linear(8, outputs),
        torch.nn.Sigmoid(),
    )


def test_torch_graph_matches_the_module(rows: np.ndarray) -> None:
    """A PyTorch network's ONNX graph gives the module's probabilities, one per row."""
    torch = _torch()
    module = _network(torch)
    finite = np.nan_to_num(rows).astype(np.float32)
    with torch.no_grad():
        native = module(torch.from_numpy(finite)).numpy().reshape(-1)
    np.testing.assert_allclose(
        native, _onnx_scores(torch_to_onnx(module, N_FEATURES), finite), atol=TOLERANCE
    )


def test_torch_export_restores_training_mode() -> None:
    """Exporting a module in training mode leaves it in training mode."""
    torch = _torch()
    module = _network(torch)
    module.train()
    torch_to_onnx(module, N_FEATURES)
    assert True is module.training


def test_torch_module_with_two_outputs_per_row_is_refused() -> None:
    """A module that returns two values per row is refused, naming the shape it returned."""
    torch = _torch()
    with pytest.raises(ModelError, match=r"returned shape \[2, 2\]"):
        torch_to_onnx(_network(torch, outputs=2), N_FEATURES)


def _converted(name: str, models: dict[str, Any]) -> bytes:
    converters: dict[str, Callable[[], bytes]] = {
        "lightgbm": lambda: lightgbm_to_onnx(models["lightgbm"]),
        "xgboost": lambda: xgboost_to_onnx(models["xgboost"], N_FEATURES),
        "sklearn": lambda: sklearn_to_onnx(models["sklearn"], N_FEATURES),
        "torch": lambda: torch_to_onnx(_network(_torch()), N_FEATURES),
    }
    return converters[name]()


@pytest.mark.parametrize("name", ["lightgbm", "xgboost", "sklearn", "torch"])
def test_every_graph_has_one_float_input_and_one_probability_output(
    name: str, booster: lgb.Booster, xgb_booster: xgb.Booster, pipeline: Pipeline
) -> None:
    """Every converter's graph reads features [N, n] float32 and gives probability [N]."""
    models = {"lightgbm": booster, "xgboost": xgb_booster, "sklearn": pipeline}
    model = onnx.load_from_string(_converted(name, models))

    def described(value: onnx.ValueInfoProto) -> tuple[str, int, list[int | None]]:
        dims = value.type.tensor_type.shape.dim
        shape = [dim.dim_value if dim.HasField("dim_value") else None for dim in dims]
        return value.name, value.type.tensor_type.elem_type, shape

    expected = (
        [(INPUT_NAME, onnx.TensorProto.FLOAT, [None, N_FEATURES])],
        [(OUTPUT_NAME, onnx.TensorProto.FLOAT, [None])],
        name,
    )
    props = {prop.key: prop.value for prop in model.metadata_props}
    actual = (
        [described(value) for value in model.graph.input if value.name == INPUT_NAME],
        [described(value) for value in model.graph.output],
        props.get("fraudops.converted_from"),
    )
    assert expected == actual
