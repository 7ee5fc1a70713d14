"""Train as you serve: the online replay equals the offline table, feature by feature."""

from __future__ import annotations

from pathlib import Path

import pytest

from fraudops.features import (
    DEFAULT_FEATURES,
    FeatureDefinition,
    InMemoryFeatureState,
    OnlineFeatures,
    build_feature_table,
    feature_definition,
    lake_events,
    replay,
)

from ._frames import mismatches
from .conftest import LakeFactory, LakeSpec


def _assert_parity(lake: Path, definition: FeatureDefinition) -> int:
    offline = build_feature_table(lake, definition)
    online = OnlineFeatures(definition, InMemoryFeatureState())
    replayed = replay(lake_events(lake), online)
    replayed = replayed.sort_values(["ts", "transaction_id"], ignore_index=True)
    assert list(offline["transaction_id"]) == list(replayed["transaction_id"])
    differing = mismatches(offline, replayed, definition.names)
    assert not differing, differing
    return len(offline)


@pytest.mark.parametrize("label_delay_days", [7, 0, 3])
def test_online_equals_offline_on_a_small_lake(small_lake: Path, label_delay_days: int) -> None:
    """Every feature agrees to 1e-9, whatever the label delay (0 puts the current tx in)."""
    _assert_parity(small_lake, feature_definition(label_delay_days))


@pytest.mark.slow
def test_online_equals_offline_on_100k_transactions(make_lake: LakeFactory) -> None:
    """Parity holds on over 100k transactions with late labels and same-time ties."""
    lake = make_lake(LakeSpec(days=100, tx_per_day=1_000, cards=800, terminals=1_500, seed=3))
    assert _assert_parity(lake, DEFAULT_FEATURES) >= 100_000
