"""The service follows the registry: when an alias moves, the model it names serves.

A lead promotes a challenger, or rolls the champion back, by moving the registry's
``champion`` alias (``fraudops models promote``, or the models page); setting the
``challenger`` alias picks the model scored in shadow. :class:`AliasFollower` asks the
registry where its alias points every ``poll_s`` seconds; when it has moved to another
model, it loads that version's checked copy and hands it to its :class:`Seat`:

- :class:`ChampionSeat` warms the model on its own threads and swaps it into the service
  between two decisions. Decisions already past their model step finish on the old model,
  which is closed once the deadline has passed twice. No restart, and no decision is
  dropped or answered by a fallback because of the swap.
- :class:`ChallengerSeat` gives the model to the shadow scorer (starting one if there was
  none), so the next shadow scores are the new challenger's.

Every swap is loud: a log line, ``fraudops_model_swaps_total{role, outcome="swapped"}``,
the ``fraudops_model_info`` series, and an audit-trail entry by ``system:service`` (an
automated model change), kept and retried until the trail records it. A version that
will not serve (a corrupt copy, another feature definition, a model that fails its
warm-up) is logged and counted as ``failed``, and the old model goes on serving; it is
not tried again until the alias moves. A registry that cannot be read is retried at the
next poll.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from fraudops.clock import Clock
from fraudops.decide.models import ServedModel
from fraudops.decide.scorer import Scorer
from fraudops.errors import FraudopsError, ModelError, ModelNotFoundError, StoreError
from fraudops.review.audit import SYSTEM_PREFIX, AuditAction, AuditEntry, SqlAuditTrail

if TYPE_CHECKING:
    from fraudops.decide.service import DecisionService
    from fraudops.decide.shadow import ShadowScorer
    from fraudops.learn.registry import MlflowRegistry, ModelVersion
    from fraudops.monitoring.metrics import Metrics
    from fraudops.review.database import ReviewDatabase

log = structlog.get_logger("fraudops.aliases")


@dataclass(frozen=True, slots=True)
class Swap:
    """A loaded, warmed model ready to take its seat: ``install`` (on the event loop) puts
    it there."""

    version: str
    install: Callable[[], None]


class Seat(Protocol):
    """Where a followed alias's model serves."""

    role: str
    """``champion`` or ``challenger``: the metrics' and the audit trail's name for it."""

    def serving(self) -> str | None:
        """The version of the model in the seat (None: empty)."""
        ...

    def prepare(self, path: Path) -> Swap:
        """Load (and warm) the model directory at ``path``; ModelError if it will not serve.
        Blocking: called off the event loop."""
        ...


class ChampionSeat:
    """The service's champion: ``make_model`` loads and warms a model directory."""

    role = "champion"

    def __init__(
        self,
        service: DecisionService,
        make_model: Callable[[Path], ServedModel],
        *,
        grace_s: float,
    ) -> None:
        self.service = service
        self._make_model = make_model
        self.grace_s = grace_s
        """How long a replaced model is kept for decisions still using it."""

    def serving(self) -> str | None:
        return self.service.version_of(self.role)

    def prepare(self, path: Path) -> Swap:
        model = self._make_model(path)

        def install() -> None:
            replaced = self.service.replace_model(model)
            if replaced is not None:
                asyncio.get_running_loop().call_later(self.grace_s, replaced.close)

        return Swap(model.version, install)


class ChallengerSeat:
    """The model the service scores in shadow: ``load`` loads a model directory's scorer;
    ``make_shadow`` starts a shadow scorer when there was none."""

    role = "challenger"

    def __init__(
        self,
        service: DecisionService,
        load: Callable[[Path], Scorer],
        make_shadow: Callable[[Scorer], ShadowScorer],
    ) -> None:
        self.service = service
        self._load = load
        self._make_shadow = make_shadow

    def serving(self) -> str | None:
        return self.service.version_of(self.role)

    def prepare(self, path: Path) -> Swap:
        scorer = self._load(path)
        served = set(self.service.features.definition.names)
        missing = sorted(set(scorer.feature_names) - served)
        if missing:  # checked here, off the loop, so installing cannot fail
            raise ModelError(
                f"challenger model {scorer.version} needs features the service lacks: {missing}"
            )

        def install() -> None:
            shadow = self.service.shadow
            if shadow is None:
                self.service.shadow = self._make_shadow(scorer)
                self.service.shadow.start()
            else:
                shadow.replace_scorer(scorer)

        return Swap(scorer.version, install)


@dataclass(frozen=True, slots=True)
class ModelChange:
    """The service put another model in a seat because the registry's alias moved."""

    role: str
    alias: str
    registry_version: int
    model_version: str
    previous_model_version: str | None
    """The model in the seat before (None: it was empty)."""
    at: datetime
    replica: str
    """Which service process swapped (host and process id): each replica swaps on its own."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "role": self.role,
            "alias": self.alias,
            "registry_version": self.registry_version,
            "model_version": self.model_version,
            "previous_model_version": self.previous_model_version,
            "at": self.at.isoformat(),
            "replica": self.replica,
        }


class AliasFollower:
    """Keeps ``seat`` holding the model the registry's ``alias`` names.

    ``started_on`` is the registry version the seat was filled from at start (None: it was
    not, so the first poll fills it from the alias). Swaps are recorded in the audit trail
    in ``audit_database`` (None: not recorded). Drive it with :meth:`run` on the service's
    event loop, or step it with :meth:`follow_once`.
    """

    def __init__(
        self,
        registry: MlflowRegistry,
        alias: str,
        seat: Seat,
        *,
        started_on: int | None,
        audit_database: ReviewDatabase | None,
        metrics: Metrics,
        clock: Clock,
        poll_s: float,
    ) -> None:
        self.registry = registry
        self.alias = alias
        self.seat = seat
        self._acted_on = started_on
        self._audit_database = audit_database
        self._audit = None if audit_database is None else SqlAuditTrail(audit_database)
        self._metrics = metrics
        self._clock = clock
        self.poll_s = poll_s
        self._unrecorded: list[ModelChange] = []
        self.replica = f"{socket.gethostname()}:{os.getpid()}"

    def close(self) -> None:
        """Release the registry's and the audit trail's connections."""
        self.registry.close()
        if self._audit_database is not None:
            self._audit_database.close()

    async def run(self) -> None:
        """Follow the alias until cancelled; an unexpected failure is logged, not the end."""
        while True:
            await asyncio.sleep(self.poll_s)
            try:
                await self.follow_once()
            except Exception:
                log.exception("alias_follow_failed", alias=self.alias, role=self.seat.role)

    async def follow_once(self) -> ModelChange | None:
        """Ask the registry once; seat the model the alias names if it is a new one."""
        await self._record_pending()
        try:
            found = await asyncio.to_thread(self.registry.get, self.alias)
        except (StoreError, ModelNotFoundError) as exc:
            log.warning("alias_unreadable", alias=self.alias, error=str(exc))
            return None
        if found.version == self._acted_on:
            return None
        serving = self.seat.serving()
        if found.lineage.artifact_version is not None and found.lineage.artifact_version == serving:
            self._acted_on = found.version  # the same model under another registry version
            return None
        try:
            swap = await asyncio.to_thread(self._prepare, found)
        except StoreError as exc:
            log.warning("alias_model_not_fetched", alias=self.alias, error=str(exc))
            return None  # the registry's storage: tried again at the next poll
        except FraudopsError as exc:
            self._acted_on = found.version
            self._metrics.model_swaps.labels(role=self.seat.role, outcome="failed").inc()
            log.error(
                "model_not_swapped",
                role=self.seat.role,
                alias=self.alias,
                registry_version=found.version,
                serving=serving,
                error=str(exc),
            )
            return None
        self._acted_on = found.version
        swap.install()
        change = ModelChange(
            role=self.seat.role,
            alias=self.alias,
            registry_version=found.version,
            model_version=swap.version,
            previous_model_version=serving,
            at=self._clock.now(),
            replica=self.replica,
        )
        self._metrics.set_model(self.seat.role, swap.version)
        self._metrics.model_swaps.labels(role=self.seat.role, outcome="swapped").inc()
        log.warning("model_swapped", **change.as_dict())
        self._unrecorded.append(change)
        await self._record_pending()
        return change

    def _prepare(self, found: ModelVersion) -> Swap:
        return self.seat.prepare(self.registry.load_dir(found.version))

    async def _record_pending(self) -> None:
        """Put every swap not yet in the audit trail there, oldest first; stop at a failure
        (the next poll tries again)."""
        audit = self._audit
        if audit is None:
            return
        while self._unrecorded:
            change = self._unrecorded[0]
            try:
                await asyncio.to_thread(audit.record, audit_entry(change))
            except FraudopsError as exc:
                log.error("model_swap_unrecorded", error=str(exc), **change.as_dict())
                return
            self._unrecorded.pop(0)


def audit_entry(change: ModelChange) -> AuditEntry:
    """The audit trail's record of a swap: an automated model change by the service."""
    previous = change.previous_model_version or "none"
    return AuditEntry(
        at=change.at,
        actor=f"{SYSTEM_PREFIX}service",
        action=AuditAction.MODEL_CHANGE,
        subject=f"{change.role}:{change.model_version}",
        reason=(
            f"the registry's {change.alias} alias moved to version {change.registry_version}:"
            f" {change.role} is now {change.model_version} (was {previous}) on {change.replica}"
        ),
        details=change.as_dict(),
    )
