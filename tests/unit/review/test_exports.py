"""The review package's public surface, and that importing it stays light."""

from __future__ import annotations

import subprocess
import sys

import fraudops.review


def test_every_public_name_is_importable() -> None:
    """Each name in fraudops.review.__all__ exists on the package."""
    assert [] == [name for name in fraudops.review.__all__ if not hasattr(fraudops.review, name)]


def test_importing_review_does_not_load_the_model_libraries() -> None:
    """The review package imports without LightGBM, scikit-learn or the scorers (it reads
    the decision log through ``fraudops.decide.log``, which needs none of them)."""
    heavy = ("lightgbm", "sklearn", "fraudops.decide.engine", "fraudops.decide.scorer")
    probe = f"import sys, fraudops.review; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert "[]" == out.strip()
