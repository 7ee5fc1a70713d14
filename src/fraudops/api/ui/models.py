"""The models page (leads and admins): champion and challenger, the evidence, the levers.

It shows the registry's champion and challenger (version, lineage, training metrics), how
they compare on the decision log's recent labelled traffic, and every alias move (who,
when, why); a lead promotes the challenger or rolls the champion back one step, with a
reason. A move goes through :func:`fraudops.review.promotion.move_champion`, as
``fraudops models promote`` does: the alias history names the signed-in lead, the desk
records it in the audit trail, and an unrecorded move is undone. Its form carries what the
page showed (the champion, and the version the button names), and a move on a page that
is out of date by then (another lead moved first, a stale tab, a double click, a new
challenger) is refused with 409: nothing moves, nothing is audited, and the page shows the
models as they are now.

MLflow (through the registry) is imported only when the page is opened: it costs about
two seconds, which a UI without the page need not pay at start. The comparison is
best-effort: when it cannot be made (too little labelled traffic, a model that will not
load), the page says why and shows the rest.

The comparison loads both models and reads the decision log, which takes seconds on a
large log, so it is made once and reused: :class:`ComparisonCache` keeps the last one (or
why there is none) for ``ModelsSource.comparison_max_age_s`` (10 minutes by default),
keyed by the pair of versions and the settings it depends on, so a promotion or rollback
is compared afresh at once. Opens that arrive while it is being made wait for it rather
than make it again, and a lead's "Recompute now" drops it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import structlog
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from fraudops.api.ui.access import signed_in
from fraudops.api.ui.pages import UiRoute, redirect, render
from fraudops.api.ui.parts import ReviewUi, ui_of
from fraudops.errors import (
    AliasMovedError,
    ConfigError,
    FraudopsError,
    InputError,
    ModelNotFoundError,
)
from fraudops.review import AuditAction, Permission, User
from fraudops.review.desk import MAX_NOTE_LENGTH

if TYPE_CHECKING:
    from fraudops.api.wiring import Runtime
    from fraudops.learn.compare import ModelComparison
    from fraudops.learn.registry import AliasChange, MlflowRegistry, ModelVersion
    from fraudops.settings import Settings

log = structlog.get_logger("fraudops.review_ui")

router = APIRouter(route_class=UiRoute, dependencies=[Depends(signed_in)])


@dataclass(frozen=True, slots=True)
class ComparisonKey:
    """What a comparison's answer depends on, besides the traffic it reads: a promotion or
    rollback changes the versions, so it never reuses the old pair's comparison."""

    champion: int
    """The champion's registry version."""
    challenger: int
    """The challenger's registry version."""
    decision_log_url: str
    review_threshold: float
    compare_days: float


@dataclass(frozen=True, slots=True)
class Compared:
    """A comparison made at ``at`` on the traffic up to then, or why none could be made."""

    comparison: ModelComparison | None
    note: str | None
    """Why there is no comparison (None when there is one)."""
    at: datetime
    """When it was made: the end of the compared traffic's window."""


class ComparisonCache:
    """The last comparison the models page made, reused while it is young enough.

    It holds one entry: the page shows one pair at a time. A lock makes one caller compute
    while the others wait and take its result, so a burst of page opens loads the models
    and reads the decision log once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last: tuple[ComparisonKey, Compared] | None = None

    def get(
        self,
        key: ComparisonKey,
        *,
        now: datetime,
        max_age: timedelta,
        compute: Callable[[], Compared],
    ) -> Compared:
        """The comparison for ``key`` made less than ``max_age`` before ``now``, or the one
        ``compute`` makes (kept for the next caller). Blocks while another caller computes."""
        with self._lock:
            if self._last is not None:
                last_key, last = self._last
                if last_key == key and timedelta(0) <= now - last.at < max_age:
                    return last
            made = compute()
            self._last = (key, made)
            return made

    def drop(self) -> None:
        """Forget the last comparison, so the next open makes it again (waits for one being
        made, so that one is not kept either)."""
        with self._lock:
            self._last = None


@dataclass(frozen=True, slots=True)
class Seated:
    """The model this service process has in a seat, and whether it follows the alias."""

    version: str | None
    follows_alias: bool
    """True: it takes the registry's model within seconds of a move; False: its model is a
    fixed directory, changed only by a restart."""


@dataclass(frozen=True, slots=True)
class ModelsSource:
    """Where the models page reads: the registry, the decision log, the review threshold."""

    registry_root: Path
    """The registry's folder (the one the service follows: ``service.registry_dir``, else
    ``<data_dir>/registry``): ``mlflow.db`` and the artifacts."""
    decision_log_url: str | None = None
    """The decision log the comparison reads (None: no comparison)."""
    review_threshold: float = 0.5
    """The policy's review threshold: where flagged and agreement are counted."""
    compare_days: float = 7.0
    """How far back the compared traffic goes."""
    registry_uri: str | None = None
    """The registry's database when it is not ``mlflow.db`` in ``registry_root``."""
    comparison_max_age_s: float = 600.0
    """How long a comparison (or why there is none) is shown before it is made again."""
    comparisons: ComparisonCache = field(default_factory=ComparisonCache, compare=False, repr=False)
    """The last comparison made; each source has its own, so apps never share one."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ModelsSource:
        """The service's registry, the decision log, the service's review threshold."""
        from fraudops.decide.policy import Policy
        from fraudops.learn.registry import registry_dir

        policy = settings.policy
        found = Policy.from_file(policy.file) if policy.file else Policy.from_settings(policy)
        return cls(
            registry_root=registry_dir(settings),
            decision_log_url=settings.decision_log.url,
            review_threshold=found.review_threshold,
        )

    def exists(self) -> bool:
        """Whether there is a registry to read (opening one would create it)."""
        return self.registry_uri is not None or (self.registry_root / "mlflow.db").is_file()

    def open(self) -> MlflowRegistry:
        """The registry (imports MLflow the first time)."""
        from fraudops.learn.registry import open_registry

        return open_registry(self.registry_root, uri=self.registry_uri)


@dataclass(frozen=True, slots=True)
class Overview:
    """What the page shows of the registry."""

    champion: ModelVersion | None
    challenger: ModelVersion | None
    history: list[AliasChange]
    """Every alias move, newest first."""
    rollback_to: int | None
    """The version a rollback would restore (None: nothing to roll back to)."""
    comparison: ModelComparison | None = None
    comparison_note: str | None = None
    """Why there is no comparison."""
    compared_at: datetime | None = None
    """When the comparison (or its note) was made; None when none was attempted."""
    metric_names: list[str] = field(default_factory=list)


def _source(ui: ReviewUi) -> ModelsSource | None:
    source = ui.models
    return source if source is not None and source.exists() else None


def _overview(source: ModelsSource, now: datetime) -> Overview:
    registry = source.open()
    try:
        champion = _alias(registry, "champion")
        challenger = _alias(registry, "challenger")
        history = list(reversed(registry.history()))
        rollback_to = None
        if champion is not None:
            try:
                before = registry.previous("champion")
            except FraudopsError as exc:
                log.warning("review_ui.models_previous_unknown", error=str(exc))
                before = None
            rollback_to = None if before is None else before.version
        compared = _comparison(source, registry, champion, challenger, now)
        names = sorted(
            {name for v in (champion, challenger) if v is not None for name in v.lineage.metrics}
        )
        overview = Overview(champion, challenger, history, rollback_to, metric_names=names)
        if isinstance(compared, str):
            return replace(overview, comparison_note=compared)
        return replace(
            overview,
            comparison=compared.comparison,
            comparison_note=compared.note,
            compared_at=compared.at,
        )
    finally:
        registry.close()


def _comparison(
    source: ModelsSource,
    registry: MlflowRegistry,
    champion: ModelVersion | None,
    challenger: ModelVersion | None,
    now: datetime,
) -> Compared | str:
    """The pair's comparison (kept, or made now and kept), or why none is attempted."""
    if champion is None or challenger is None:
        return "A comparison needs both a champion and a challenger."
    if champion.version == challenger.version:
        return "Champion and challenger are the same version."
    if source.decision_log_url is None:
        return "No decision log is configured, so there is no traffic to compare on."
    key = ComparisonKey(
        champion.version,
        challenger.version,
        source.decision_log_url,
        source.review_threshold,
        source.compare_days,
    )
    return source.comparisons.get(
        key,
        now=now,
        max_age=timedelta(seconds=source.comparison_max_age_s),
        compute=lambda: compare_pair(registry, key, until=now),
    )


def _alias(registry: MlflowRegistry, alias: str) -> ModelVersion | None:
    try:
        return registry.get(alias)
    except ModelNotFoundError:
        return None


def compare_pair(registry: MlflowRegistry, key: ComparisonKey, *, until: datetime) -> Compared:
    """The key's two versions on the labelled traffic of the ``compare_days`` before
    ``until``, or why they cannot be compared (logged)."""
    from fraudops.decide.ensemble_scorer import load_scorer
    from fraudops.learn.compare import compare_models, labelled_traffic

    try:
        champion = load_scorer(registry.load_dir(key.champion))
        challenger = load_scorer(registry.load_dir(key.challenger))
        since = until - timedelta(days=key.compare_days)
        names = tuple(dict.fromkeys(champion.feature_names + challenger.feature_names))
        traffic = labelled_traffic(
            key.decision_log_url, since=since, until=until, feature_names=names
        )
        result = compare_models(
            traffic,
            champion,
            challenger,
            review_threshold=key.review_threshold,
            since=since,
            until=until,
        )
    except FraudopsError as exc:
        log.warning("review_ui.models_comparison_unavailable", error=str(exc))
        return Compared(None, f"No comparison: {exc}", until)
    return Compared(result, None, until)


@router.get("/models", name="ui.models")
async def models_page(request: Request, user: Annotated[User, Depends(signed_in)]) -> Response:
    """Champion and challenger, their comparison and alias history (leads and admins)."""
    ui = ui_of(request)
    ui.desk.authorise(user, Permission.APPROVE_PROMOTION)
    return await _page(request)


async def _page(
    request: Request, *, status_code: int = 200, problem: str | None = None
) -> Response:
    """The models page as the registry is now, with ``problem`` shown at its top."""
    ui = ui_of(request)
    source = _source(ui)
    now = ui.desk.clock.now()
    overview = None if source is None else await run_in_threadpool(_overview, source, now)
    context: dict[str, object] = {
        "overview": overview,
        "source": source,
        "max_reason": MAX_NOTE_LENGTH,
        "serving": _serving_here(request),
    }
    if problem is not None:
        context["flash"] = (problem, "error")
    return render(request, "models.html", context, status_code=status_code)


def _serving_here(request: Request) -> dict[str, Seated] | None:
    """What this service process serves as champion and scores as challenger, so a lead
    sees whether a promotion has reached it; None when the UI runs without a decision
    service."""
    runtime: Runtime | None = getattr(request.app.state, "runtime", None)
    if runtime is None:
        return None
    followed = {follower.seat.role for follower in runtime.followers}
    return {
        role: Seated(runtime.service.version_of(role), role in followed)
        for role in ("champion", "challenger")
    }


@router.post("/models/compare", name="ui.models_compare")
async def recompute(request: Request, user: Annotated[User, Depends(signed_in)]) -> Response:
    """Drop the kept comparison, so the page makes it again on the latest traffic."""
    ui = ui_of(request)
    ui.desk.authorise(user, Permission.APPROVE_PROMOTION)
    if ui.models is not None:
        await run_in_threadpool(ui.models.comparisons.drop)
    return redirect(request, "ui.models")


SeenChampion = Annotated[str, Form(pattern=r"^\d{0,9}$")]
"""The champion's version when the page was rendered; empty: there was none."""
NamedVersion = Annotated[int, Form(ge=1)]
"""The version the page's button names: the challenger it promotes, the one a rollback
restores."""


@router.post("/models/promote", name="ui.promote")
async def promote(
    request: Request,
    user: Annotated[User, Depends(signed_in)],
    champion: SeenChampion,
    version: NamedVersion,
    reason: Annotated[str, Form(max_length=MAX_NOTE_LENGTH)] = "",
) -> Response:
    """Make the challenger the page showed (``version``) the champion, if the champion is
    still the one it showed (leads and admins; audited, with the reason)."""
    return await _move(request, user, AuditAction.PROMOTION, reason, champion, version)


@router.post("/models/rollback", name="ui.rollback")
async def rollback(
    request: Request,
    user: Annotated[User, Depends(signed_in)],
    champion: SeenChampion,
    version: NamedVersion,
    reason: Annotated[str, Form(max_length=MAX_NOTE_LENGTH)] = "",
) -> Response:
    """Put back the previous champion the page named (``version``), if the champion is
    still the one it showed (leads and admins; audited, with the reason)."""
    return await _move(request, user, AuditAction.ROLLBACK, reason, champion, version)


async def _move(
    request: Request, user: User, action: AuditAction, reason: str, champion: str, version: int
) -> Response:
    from fraudops.review.promotion import PERMISSION_OF

    ui = ui_of(request)
    ui.desk.authorise(user, PERMISSION_OF[action])
    source = _source(ui)
    if source is None:
        raise ConfigError("there is no model registry, so there is no champion to move")
    if not reason.strip():
        return redirect(
            request, "ui.models", flash=f"A {action.value} needs a reason.", flash_kind="error"
        )
    seen = {"champion": int(champion) if champion else None}
    try:
        change = await run_in_threadpool(
            _move_champion, ui, source, user, action, reason.strip(), version, seen
        )
    except AliasMovedError as exc:
        log.info(
            "review_ui.champion_move_refused",
            action=action.value,
            user=user.username,
            version=version,
            error=str(exc),
        )
        problem = f"Not done: {exc}. The page now shows the models as they are."
        return await _page(request, status_code=exc.http_status, problem=problem)
    except (InputError, ModelNotFoundError) as exc:
        return redirect(request, "ui.models", flash=f"Not done: {exc}", flash_kind="error")
    log.info(
        "review_ui.champion_moved",
        action=action.value,
        user=user.username,
        version=change.version,
        previous_version=change.previous_version,
    )
    before = "none" if change.previous_version is None else f"version {change.previous_version}"
    return redirect(
        request,
        "ui.models",
        flash=f"The champion is version {change.version} now (was {before}); recorded in the"
        " audit trail.",
    )


def _move_champion(
    ui: ReviewUi,
    source: ModelsSource,
    user: User,
    action: AuditAction,
    reason: str,
    to: int,
    seen: dict[str, int | None],
) -> AliasChange:
    from fraudops.review.promotion import move_champion

    registry = source.open()
    try:

        def record(change: AliasChange) -> None:
            details = {"registry": registry.tracking_uri, **change.as_dict()}
            ui.desk.record(user, action, f"model:{registry.name}", reason, details)

        return move_champion(
            registry,
            action,
            actor=user.username,
            reason=reason,
            record=record,
            to=to,
            expect=seen,
        )
    finally:
        registry.close()
