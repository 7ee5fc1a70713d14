"""The audit page (leads and admins): the trail with filters, paged, and its export."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from fraudops.api.ui.access import signed_in
from fraudops.api.ui.pages import UiRoute, render
from fraudops.api.ui.parts import ui_of
from fraudops.review import AuditAction, User

router = APIRouter(route_class=UiRoute, dependencies=[Depends(signed_in)])

PAGE_SIZE = 100
_MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}


def _since(day: date | None) -> datetime | None:
    return None if day is None else datetime.combine(day, time(0), tzinfo=UTC)


@router.get("/audit", name="ui.audit")
async def audit_page(
    request: Request,
    user: Annotated[User, Depends(signed_in)],
    actor: Annotated[str, Query(max_length=200)] = "",
    action: AuditAction | Literal[""] = "",
    subject: Annotated[str, Query(max_length=200)] = "",
    since: date | None = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """Audit entries matching the filters, oldest first, a page at a time."""
    ui = ui_of(request)
    entries = await run_in_threadpool(
        lambda: ui.desk.audit_entries(
            user,
            since=_since(since),
            actor=actor.strip() or None,
            action=action or None,
            subject=subject.strip() or None,
            after_id=after,
            limit=PAGE_SIZE + 1,
        )
    )
    more = len(entries) > PAGE_SIZE
    entries = entries[:PAGE_SIZE]
    filters: dict[str, Any] = {
        "actor": actor,
        "action": action,
        "subject": subject,
        "since": since.isoformat() if since else "",
    }
    next_query = None
    if more and entries and entries[-1].id is not None:
        next_query = {**{k: v for k, v in filters.items() if v}, "after": entries[-1].id}
    return render(
        request,
        "audit.html",
        {
            "entries": entries,
            "filters": filters,
            "actions": list(AuditAction),
            "next_query": next_query,
        },
    )


@router.get("/audit/export", name="ui.audit_export")
async def audit_export(
    request: Request,
    user: Annotated[User, Depends(signed_in)],
    format: Literal["csv", "jsonl"] = "csv",
    since: date | None = None,
) -> Response:
    """The whole trail (from ``since``) as a CSV or JSON-lines download, streamed."""
    ui = ui_of(request)
    chunks = await run_in_threadpool(ui.desk.export_audit, user, format, since=_since(since))
    stamp = ui.desk.clock.now().strftime("%Y%m%dT%H%M%SZ")
    filename = f"fraudops-audit-{stamp}.{format}"
    return StreamingResponse(
        chunks,
        media_type=_MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
