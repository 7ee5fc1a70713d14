"""Fallback chains: try the best answer first, then cheaper, safer ones, and say so.

A decision always gets an answer: the current model, else the previous model, else the
rules, else a static policy. The chain tries steps in order and returns the first answer
with the failed attempts before it, so the decision can say it was degraded and why
(each failure as a one-word reason: ``timeout``, ``breaker_open``, ``invalid_score``…).
Each failed attempt is an observable event: ``on_fallback(chain, attempt)``.

Callers make the last step infallible; if it fails anyway the chain raises
:class:`FallbackExhaustedError` carrying every failure, never a bare last exception.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from fraudops.errors import FraudopsError, ResilienceError

T = TypeVar("T")

Step = tuple[str, Callable[[], Awaitable[T]]]
"""One way to get the answer: its name, and a function that tries it."""

FallbackListener = Callable[[str, "Attempt"], None]

# Word boundaries in a CamelCase class name: before an upper-case letter that follows a
# lower-case letter or digit, and before the last capital of an acronym (HTTPError).
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def reason_of(exc: BaseException) -> str:
    """A failure's one-word reason: ``exc.reason`` for fraudops errors, else the class name.

    ``ConnectionRefusedError`` becomes ``connection_refused_error``.
    """
    if isinstance(exc, FraudopsError):
        return exc.reason
    return _CAMEL_BOUNDARY.sub("_", type(exc).__name__).lower()


@dataclass(frozen=True, slots=True)
class Attempt:
    """A step that failed, and why (its reason code); ``detail`` is the error's message."""

    step: str
    reason: str
    detail: str = field(default="", compare=False)


@dataclass(frozen=True, slots=True)
class FallbackResult(Generic[T]):
    """The answer, the step that gave it, and the steps that failed before it, in order."""

    value: T
    step: str
    failures: tuple[Attempt, ...]

    @property
    def degraded(self) -> bool:
        """Whether the answering step was not the first one offered."""
        return len(self.failures) > 0


class FallbackExhaustedError(ResilienceError):
    """Every step of a fallback chain failed, the last one included."""

    reason = "fallback_exhausted"

    def __init__(self, chain: str, failures: tuple[Attempt, ...]) -> None:
        self.chain = chain
        self.failures = failures
        tried = ", ".join(f"{a.step}: {a.reason}" for a in failures)
        super().__init__(f"fallback chain {chain!r} has no step left ({tried})")


class FallbackChain(Generic[T]):
    """Tries steps in order until one answers; reports each failed one.

    ``on_fallback(chain_name, attempt)`` is called for every failed step, the last one
    included, and must not raise (an exception from it reaches the caller).
    """

    def __init__(self, name: str, *, on_fallback: FallbackListener | None = None) -> None:
        self.name = name
        self._on_fallback = on_fallback

    async def run(
        self, steps: Sequence[tuple[str, Callable[[], Awaitable[T]]]]
    ) -> FallbackResult[T]:
        """The first step's answer that does not raise, with the failures before it.

        A step raising an ``Exception`` is recorded and the next one tried. Cancellation and
        other ``BaseException``s are never swallowed: they end the chain at once.
        Raises FallbackExhaustedError (chained from the last error) if every step fails.
        """
        if not steps:
            raise ValueError(f"fallback chain {self.name!r} was given no steps")
        failures: list[Attempt] = []
        last_error: Exception | None = None
        for step, attempt_step in steps:
            try:
                value = await attempt_step()
            except Exception as exc:
                last_error = exc
                attempt = Attempt(step, reason_of(exc), str(exc))
                failures.append(attempt)
                if self._on_fallback is not None:
                    self._on_fallback(self.name, attempt)
                continue
            return FallbackResult(value, step, tuple(failures))
        raise FallbackExhaustedError(self.name, tuple(failures)) from last_error

    def __repr__(self) -> str:
        return f"FallbackChain({self.name!r})"
