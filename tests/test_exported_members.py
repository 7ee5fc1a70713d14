"""The public surface of the package is what ``fraudops.__all__`` says, no more."""

import fraudops


def test_all_exports_exist() -> None:
    """Every name in ``__all__`` is importable from the package."""
    missing = [name for name in fraudops.__all__ if not hasattr(fraudops, name)]
    assert missing == []


def test_public_surface_is_pinned() -> None:
    """Adding or removing a public name is a deliberate change to this list."""
    expected = {
        "Action",
        "Decision",
        "FraudopsError",
        "Label",
        "LabelSource",
        "Transaction",
        "__version__",
    }
    assert expected == set(fraudops.__all__)
