"""Decide: score a transaction with the model and turn the score into an action."""

from fraudops.decide.engine import DecisionEngine
from fraudops.decide.policy import Policy
from fraudops.decide.scorer import LightGBMScorer, Scorer

__all__ = ["DecisionEngine", "LightGBMScorer", "Policy", "Scorer"]
