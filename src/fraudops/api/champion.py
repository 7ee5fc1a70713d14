"""The service follows the registry: when the champion alias moves, the new model serves.

A lead promotes a challenger, or rolls the champion back, by moving the registry's alias
(``fraudops models promote`` or the models page). :class:`ChampionFollower` asks the
registry where the alias points every ``poll_s`` seconds; when it has moved to another
model, it loads that version's checked copy, warms it up on its own threads, and swaps it
into the service between two decisions. Decisions already past their model step finish on
the old model, which is closed once the deadline has passed twice. No restart, and no
decision is dropped or answered by a fallback because of the swap.

Every swap is loud: a log line, ``fraudops_model_swaps_total{outcome="swapped"}``, the
``fraudops_model_info`` series, and an audit-trail entry by ``system:service`` (an
automated model change), kept and retried until the trail records it. A version that will
not serve (a corrupt copy, another feature definition, a model that fails its warm-up) is
logged and counted as ``failed``, and the old champion goes on serving; it is not tried
again until the alias moves. A registry that cannot be read is retried at the next poll.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from fraudops.clock import Clock
from fraudops.decide.models import ServedModel
from fraudops.errors import FraudopsError, ModelNotFoundError, StoreError
from fraudops.review.audit import SYSTEM_PREFIX, AuditAction, AuditEntry, SqlAuditTrail

if TYPE_CHECKING:
    from fraudops.decide.service import DecisionService
    from fraudops.learn.registry import MlflowRegistry, ModelVersion
    from fraudops.monitoring.metrics import Metrics
    from fraudops.review.database import ReviewDatabase

log = structlog.get_logger("fraudops.champion")

ROLE = "champion"


@dataclass(frozen=True, slots=True)
class ChampionChange:
    """The service swapped its champion because the registry's alias moved."""

    alias: str
    registry_version: int
    model_version: str
    previous_model_version: str | None
    """The model served before (None: there was no champion)."""
    at: datetime
    replica: str
    """Which service process swapped (host and process id): each replica swaps on its own."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready values."""
        return {
            "alias": self.alias,
            "registry_version": self.registry_version,
            "model_version": self.model_version,
            "previous_model_version": self.previous_model_version,
            "at": self.at.isoformat(),
            "replica": self.replica,
        }


class ChampionFollower:
    """Keeps the service's champion the model the registry's ``alias`` names.

    ``started_on`` is the registry version the service started with (None: its champion
    did not come from the alias, so the first poll loads what the alias names).
    ``make_model`` turns a model directory into a warmed :class:`ServedModel` (or raises
    ModelError); swaps are recorded in the audit trail in ``audit_database`` (None: not
    recorded); ``grace_s`` is how long a replaced model is kept for decisions still
    using it. Drive it with :meth:`run` on the service's event loop, or step it with
    :meth:`follow_once`.
    """

    def __init__(
        self,
        registry: MlflowRegistry,
        alias: str,
        *,
        started_on: int | None,
        service: DecisionService,
        make_model: Callable[[Path], ServedModel],
        audit_database: ReviewDatabase | None,
        metrics: Metrics,
        clock: Clock,
        poll_s: float,
        grace_s: float,
    ) -> None:
        self.registry = registry
        self.alias = alias
        self.service = service
        self._make_model = make_model
        self._audit_database = audit_database
        self._audit = None if audit_database is None else SqlAuditTrail(audit_database)
        self._metrics = metrics
        self._clock = clock
        self.poll_s = poll_s
        self.grace_s = grace_s
        self._acted_on = started_on
        self._unrecorded: list[ChampionChange] = []
        self.replica = f"{socket.gethostname()}:{os.getpid()}"

    def close(self) -> None:
        """Release the registry's and the audit trail's connections."""
        self.registry.close()
        if self._audit_database is not None:
            self._audit_database.close()

    async def run(self) -> None:
        """Follow the alias until cancelled."""
        while True:
            await asyncio.sleep(self.poll_s)
            await self.follow_once()

    async def follow_once(self) -> ChampionChange | None:
        """Ask the registry once; swap in the model the alias names if it is a new one."""
        await self._record_pending()
        try:
            found = await asyncio.to_thread(self.registry.get, self.alias)
        except (StoreError, ModelNotFoundError) as exc:
            log.warning("champion_alias_unreadable", alias=self.alias, error=str(exc))
            return None
        if found.version == self._acted_on:
            return None
        served = self._served_version()
        if found.lineage.artifact_version is not None and found.lineage.artifact_version == served:
            self._acted_on = found.version  # the same model under another registry version
            return None
        try:
            model = await asyncio.to_thread(self._load, found)
        except StoreError as exc:
            log.warning("champion_not_fetched", version=found.version, error=str(exc))
            return None  # the registry's storage: tried again at the next poll
        except FraudopsError as exc:
            self._acted_on = found.version
            self._metrics.model_swaps.labels(role=ROLE, outcome="failed").inc()
            log.error(
                "champion_not_swapped",
                alias=self.alias,
                registry_version=found.version,
                serving=served,
                error=str(exc),
            )
            return None
        self._acted_on = found.version
        return await self._swap_in(model, found, served)

    async def _swap_in(
        self, model: ServedModel, found: ModelVersion, served: str | None
    ) -> ChampionChange:
        replaced = self.service.replace_model(model)
        if replaced is not None:
            asyncio.get_running_loop().call_later(self.grace_s, replaced.close)
        change = ChampionChange(
            alias=self.alias,
            registry_version=found.version,
            model_version=model.version,
            previous_model_version=served,
            at=self._clock.now(),
            replica=self.replica,
        )
        self._metrics.model_swaps.labels(role=ROLE, outcome="swapped").inc()
        log.warning("champion_swapped", **change.as_dict())
        self._unrecorded.append(change)
        await self._record_pending()
        return change

    def _load(self, found: ModelVersion) -> ServedModel:
        return self._make_model(self.registry.load_dir(found.version))

    def _served_version(self) -> str | None:
        return next((m.version for m in self.service.models if m.role == ROLE), None)

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
                log.error("champion_swap_unrecorded", error=str(exc), **change.as_dict())
                return
            self._unrecorded.pop(0)


def audit_entry(change: ChampionChange) -> AuditEntry:
    """The audit trail's record of a swap: an automated model change by the service."""
    previous = change.previous_model_version or "no champion"
    return AuditEntry(
        at=change.at,
        actor=f"{SYSTEM_PREFIX}service",
        action=AuditAction.MODEL_CHANGE,
        subject=f"{ROLE}:{change.model_version}",
        reason=(
            f"the registry's {change.alias} alias moved to version {change.registry_version}:"
            f" now serving {change.model_version} (was {previous}) on {change.replica}"
        ),
        details=change.as_dict(),
    )
