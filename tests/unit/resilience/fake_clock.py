"""A clock for tests that moves only when told to, so timeouts are decided, not waited for."""

from __future__ import annotations


class FakeClock:
    """Seconds as a float, like ``time.monotonic``; starts at an arbitrary non-zero point."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        self.now += seconds
