"""Learn: the handbook's evaluation protocol, its metrics, training and the model directory."""

from fraudops.learn.artifact import Manifest, ModelArtifact, load_model_dir, save_model_dir
from fraudops.learn.jobs import evaluate_model, train_model
from fraudops.learn.metrics import (
    Metrics,
    assess,
    average_precision,
    card_precision_at_k,
    false_positives_at_recall,
    roc_auc,
)
from fraudops.learn.protocol import Fold, prequential_folds, remove_known_cards
from fraudops.learn.report import FoldResult, Report
from fraudops.learn.train import HYPERPARAMETERS, cross_validate, fit_booster

__all__ = [
    "HYPERPARAMETERS",
    "Fold",
    "FoldResult",
    "Manifest",
    "Metrics",
    "ModelArtifact",
    "Report",
    "assess",
    "average_precision",
    "card_precision_at_k",
    "cross_validate",
    "evaluate_model",
    "false_positives_at_recall",
    "fit_booster",
    "load_model_dir",
    "prequential_folds",
    "remove_known_cards",
    "roc_auc",
    "save_model_dir",
    "train_model",
]
