"""Fitted models as ONNX graphs that any ONNX runtime serves the same way.

Every converter here returns the bytes of an ONNX model with the same interface:

- one input, ``features``: float32, shape ``[N, n_features]``, columns in model order; NaN
  means unknown, with the native model's meaning (see below);
- one output, ``probability``: float32, shape ``[N]``, the probability of the positive
  (fraud) class, one per row.

``decide.onnx_scorer.OnnxScorer`` serves such a graph (and graphs made elsewhere).

Missing values. LightGBM and XGBoost trees send NaN down each split's learned default
branch; ONNX tree ensembles do the same through ``nodes_missing_value_tracks_true``, which
the ONNX project's converter (onnxmltools) sets from each split. LightGBM splits on a
feature that had no NaN in training (``missing_type`` None) read NaN as 0; the converter
follows that too. LightGBM's ``zero_as_missing`` (``missing_type`` Zero), which also sends
0.0 down the default branch, it does not follow, so such a model is refused.

Precision. The ONNX tree ensembles hold thresholds in float32 and read float32 input, where
LightGBM and XGBoost compare doubles: a value within float32 rounding of a threshold can
take the other branch (``bench/runtimes.py`` measures how often on real data), and the sum
of leaves and its sigmoid are float32, so probabilities agree to about 1e-7 otherwise.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from fraudops.errors import ModelError

if TYPE_CHECKING:
    import lightgbm as lgb
    import torch
    import xgboost as xgb

INPUT_NAME = "features"
OUTPUT_NAME = "probability"

_CONVERTED_FROM = "fraudops.converted_from"
# The converters' own name for the [N, 2] class-probability output.
_PROBABILITIES = "probabilities"
# Opset of the default ONNX domain for the PyTorch export: supported by every current runtime.
_TORCH_OPSET = 17
# Gather (opset 1) as the one default-domain operator of a graph that had none: opset 9 is
# what onnxmltools itself imports for LightGBM.
_GATHER_OPSET = 9


def lightgbm_to_onnx(booster: lgb.Booster) -> bytes:
    """A LightGBM binary classifier as ONNX bytes (``features`` → ``probability`` [N])."""
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    dump = booster.dump_model()
    objective = str(dump.get("objective", ""))
    if not objective.startswith("binary") or booster.num_model_per_iteration() != 1:
        raise ModelError(f"only binary LightGBM models convert to ONNX, not {objective!r}")
    if _lightgbm_zero_as_missing(dump):
        raise ModelError(
            "this LightGBM model treats 0 as missing (zero_as_missing): its ONNX graph would"
            " send 0.0 down the wrong branch, so it is not converted"
        )
    n_features = booster.num_feature()
    try:
        model = convert_lightgbm(
            booster,
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            zipmap=False,
        )
    except Exception as exc:  # the converter raises whatever its internals raise
        raise ModelError(f"LightGBM model could not be converted to ONNX: {exc}") from exc
    return _positive_class(model, _PROBABILITIES, "lightgbm")


def _lightgbm_zero_as_missing(dump: dict[str, Any]) -> bool:
    stack = [tree["tree_structure"] for tree in dump["tree_info"]]
    while stack:
        node = stack.pop()
        if "split_index" in node:
            if node.get("missing_type") == "Zero":
                return True
            stack.extend((node["left_child"], node["right_child"]))
    return False


def xgboost_to_onnx(booster: xgb.Booster, n_features: int) -> bytes:
    """An XGBoost ``binary:logistic`` booster as ONNX bytes (``features`` → ``probability``)."""
    from onnxmltools import convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType

    config = json.loads(booster.save_config())
    objective = config["learner"]["objective"]["name"]
    if objective != "binary:logistic":
        raise ModelError(f"only binary:logistic XGBoost models convert to ONNX, not {objective!r}")
    if booster.num_features() != n_features:
        raise ModelError(
            f"the XGBoost model reads {booster.num_features()} features, not {n_features}"
        )
    try:
        model = convert_xgboost(
            booster, initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))]
        )
    except Exception as exc:  # the converter raises whatever its internals raise
        raise ModelError(f"XGBoost model could not be converted to ONNX: {exc}") from exc
    return _positive_class(model, _PROBABILITIES, "xgboost")


def sklearn_to_onnx(estimator: Any, n_features: int) -> bytes:
    """A fitted scikit-learn binary classifier (or Pipeline ending in one) as ONNX bytes.

    The positive class is ``classes_[1]``, as in ``predict_proba``. Any estimator skl2onnx
    converts will do, e.g. SimpleImputer + StandardScaler + LogisticRegression.
    """
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType

    classes = getattr(estimator, "classes_", None)
    if classes is None or len(classes) != 2:
        raise ModelError(
            f"only fitted binary scikit-learn classifiers convert to ONNX, not {estimator!r}"
        )
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    try:
        model = to_onnx(
            estimator,
            initial_types=[(INPUT_NAME, FloatTensorType([None, n_features]))],
            # The default ZipMap output is a list of {class: probability} maps; a tensor is
            # what a scorer reads.
            options={id(final): {"zipmap": False}},
        )
    except Exception as exc:  # the converter raises whatever its internals raise
        raise ModelError(f"scikit-learn model could not be converted to ONNX: {exc}") from exc
    return _positive_class(model, _PROBABILITIES, "sklearn")


def torch_to_onnx(module: torch.nn.Module, n_features: int) -> bytes:
    """A PyTorch module that maps float32 [N, n_features] to probabilities as ONNX bytes.

    The module must return the positive-class probability (end in a sigmoid), shaped [N] or
    [N, 1]. It is exported in eval mode (the caller's mode is restored afterwards) with
    PyTorch's TorchScript-based exporter: the newer torch.export-based one needs onnxscript
    as well, and in PyTorch 2.13 it raised FutureWarnings from its own internals.
    """
    import torch

    example = torch.zeros((2, n_features), dtype=torch.float32)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            shape = tuple(module(example).shape)
        if shape not in ((2,), (2, 1)):
            raise ModelError(
                f"the module must return one probability per row ([N] or [N, 1]); for 2 rows"
                f" of {n_features} features it returned shape {list(shape)}"
            )
        raw_output = "module_output"
        with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
            # Deprecated, not broken: see the docstring for why this exporter. It warns once
            # at the call and once from its own internals.
            warnings.filterwarnings(
                "ignore", "You are using the legacy TorchScript", DeprecationWarning
            )
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx\.")
            path = Path(folder) / "model.onnx"
            try:
                torch.onnx.export(
                    module,
                    (example,),
                    path,
                    input_names=[INPUT_NAME],
                    output_names=[raw_output],
                    dynamic_axes={INPUT_NAME: {0: "N"}, raw_output: {0: "N"}},
                    opset_version=_TORCH_OPSET,
                    dynamo=False,
                )
            except Exception as exc:  # the exporter raises whatever tracing raises
                raise ModelError(f"PyTorch module could not be exported to ONNX: {exc}") from exc
            model = onnx.load(path)
    finally:
        module.train(was_training)
    return _flattened(model, raw_output, "torch")


def _positive_class(model: onnx.ModelProto, probabilities: str, source: str) -> bytes:
    """Make column 1 of the [N, 2] ``probabilities`` output the graph's only output."""
    index = f"{OUTPUT_NAME}_column"
    graph = model.graph
    if not any(opset.domain in ("", "ai.onnx") for opset in model.opset_import):
        # A graph of ai.onnx.ml operators alone (XGBoost's) imports no default domain yet.
        model.opset_import.append(helper.make_opsetid("", _GATHER_OPSET))
    graph.initializer.append(helper.make_tensor(index, TensorProto.INT64, [], [1]))
    graph.node.append(
        helper.make_node("Gather", [probabilities, index], [OUTPUT_NAME], axis=1, name=OUTPUT_NAME)
    )
    return _finished(model, source)


def _flattened(model: onnx.ModelProto, raw_output: str, source: str) -> bytes:
    """Make ``raw_output`` ([N] or [N, 1]), flattened to [N], the graph's only output."""
    shape = f"{OUTPUT_NAME}_shape"
    graph = model.graph
    graph.initializer.append(
        helper.make_tensor(shape, TensorProto.INT64, [1], np.array([-1], dtype=np.int64))
    )
    graph.node.append(
        helper.make_node("Reshape", [raw_output, shape], [OUTPUT_NAME], name=OUTPUT_NAME)
    )
    return _finished(model, source)


def _finished(model: onnx.ModelProto, source: str) -> bytes:
    graph = model.graph
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N"]))
    helper.set_model_props(model, {_CONVERTED_FROM: source})
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"the ONNX graph converted from {source} is invalid: {exc}") from exc
    return bytes(model.SerializeToString())
