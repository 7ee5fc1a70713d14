"""Resilience: the stability primitives shared by the decision path and the agent.

A deadline with per-stage timeouts, a circuit breaker, a load shedder and a fallback
chain. Each is small, takes plain values, and reports every trip through a callback so
nothing degrades silently.
"""

from fraudops.resilience.breaker import BreakerState, CircuitBreaker
from fraudops.resilience.deadline import Deadline
from fraudops.resilience.fallback import (
    Attempt,
    FallbackChain,
    FallbackExhaustedError,
    FallbackResult,
    Step,
    reason_of,
)
from fraudops.resilience.shedding import LoadShedder, LoopLag

__all__ = [
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
]
