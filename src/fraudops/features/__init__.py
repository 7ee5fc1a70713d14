"""Features: one declarative definition, computed offline (DuckDB) and online (per event)."""

from fraudops.features.definition import (
    DEFAULT_FEATURES,
    Aggregate,
    Entity,
    Feature,
    FeatureDefinition,
    Kind,
    feature_definition,
)
from fraudops.features.offline import build_feature_table
from fraudops.features.online import OnlineFeatures
from fraudops.features.redis_state import RedisFeatureState
from fraudops.features.replay import lake_events, replay
from fraudops.features.state import FeatureState, InMemoryFeatureState

__all__ = [
    "DEFAULT_FEATURES",
    "Aggregate",
    "Entity",
    "Feature",
    "FeatureDefinition",
    "FeatureState",
    "InMemoryFeatureState",
    "Kind",
    "OnlineFeatures",
    "RedisFeatureState",
    "build_feature_table",
    "feature_definition",
    "lake_events",
    "replay",
]
