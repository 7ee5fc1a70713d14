"""The resilience package's public surface is what its ``__all__`` says, no more."""

import fraudops.resilience


def test_all_exports_exist() -> None:
    """Every name in ``__all__`` is importable from the package."""
    missing = [n for n in fraudops.resilience.__all__ if not hasattr(fraudops.resilience, n)]
    assert [] == missing


def test_public_surface_is_pinned() -> None:
    """Adding or removing a public name is a deliberate change to this list."""
    expected = {
        "Attempt",
        "BreakerState",
        "CircuitBreaker",
        "Deadline",
        "FallbackChain",
        "FallbackExhaustedError",
        "FallbackResult",
        "LoadShedder",
        "LoopLag",
        "Step",
        "reason_of",
    }
    assert expected == set(fraudops.resilience.__all__)
