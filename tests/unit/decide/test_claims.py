"""Claims on transactions in Redis: the decision a claim holds, and a Redis too old to hold one."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis

from fraudops.decide.claims import PENDING, RedisClaims, Stored, _decoded, _encoded
from fraudops.errors import ConfigError, StoreError
from fraudops.features.redis_state import RedisFeatureState
from fraudops.types import Action, Decision, Reason
from tests.services import free_port


class _Redis62(redis.Redis):
    """A Redis before 7.0: SET refuses NX together with GET."""

    def set(self, *args: Any, **kwargs: Any) -> Any:
        raise redis.ResponseError("syntax error")


def test_a_claim_holds_the_whole_decision_or_the_pending_mark() -> None:
    """What one replica stores, another reads back field for field, with the content of the
    transaction; the pending mark reads as None."""
    decision = Decision(
        "tx:1",
        Action.REVIEW,
        0.43,
        (Reason("terminal_risk_7d", 0.21), Reason("amount", -0.05)),
        "lgbm-1",
        1.5,
        degraded=True,
        degraded_reason="champion:timeout",
        rule_hits=("high_amount",),
        source="last_good",
    )
    key = "p:decision:tx:1"
    content = (1_530_000_000_000_000, "card-1", "terminal-1", 12.5, "EUR")
    held = orjson.dumps(_encoded(decision) | {"content": list(content)})
    assert Stored(decision, content) == _decoded(key, "tx:1", held)
    assert _decoded(key, "tx:1", PENDING) is None
    with pytest.raises(StoreError, match="holds no decision"):
        _decoded(key, "tx:1", b'{"action": "maybe"}')


def test_a_redis_too_old_for_claims_is_refused_with_what_to_do() -> None:
    """Before 7.0 every decision would fail its claim: the check says so at start."""
    claims = RedisClaims(RedisFeatureState(_Redis62()), decided_ttl_s=300.0)
    with pytest.raises(ConfigError, match="replica_recent_s"):
        claims.check()


def test_an_unreachable_redis_cannot_be_checked() -> None:
    """Redis down at start is a store error (the service starts degraded), not a config one."""
    state = RedisFeatureState.from_url(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.2)
    with pytest.raises(StoreError):
        RedisClaims(state, decided_ttl_s=300.0).check()
    state.close()
