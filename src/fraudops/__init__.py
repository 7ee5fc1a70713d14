"""fraudops: real-time card-fraud detection with reasons, human review and loud failures."""

from fraudops.errors import FraudopsError
from fraudops.types import Action, Decision, Label, LabelSource, Transaction

__version__ = "0.1.0"

__all__ = [
    "Action",
    "Decision",
    "FraudopsError",
    "Label",
    "LabelSource",
    "Transaction",
    "__version__",
]
