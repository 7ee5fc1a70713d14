"""The review UI package's public surface is what its ``__all__`` says."""

import fraudops.api.ui


def test_ui_public_surface_is_pinned() -> None:
    """Adding or removing a public name of the UI is a deliberate change to this list."""
    expected = {
        "DashboardFigures",
        "DashboardSource",
        "HistorySource",
        "LabelSink",
        "ReviewUi",
        "Session",
        "SessionCodec",
        "SqlDashboardSource",
        "review_ui",
        "review_ui_router",
        "runtime_labels",
    }
    assert expected == set(fraudops.api.ui.__all__)
    assert [] == [name for name in expected if not hasattr(fraudops.api.ui, name)]
