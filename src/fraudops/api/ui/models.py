"""The models page (leads and admins): where champion and challenger will be compared and a
promotion approved. A placeholder until the model-oversight work lands; the permission it
needs (approving a promotion) is checked already, so an analyst is refused today too."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from fraudops.api.ui.access import signed_in
from fraudops.api.ui.pages import UiRoute, render
from fraudops.api.ui.parts import ui_of
from fraudops.review import Permission, User

router = APIRouter(route_class=UiRoute, dependencies=[Depends(signed_in)])


@router.get("/models", name="ui.models")
async def models_page(request: Request, user: Annotated[User, Depends(signed_in)]) -> Response:
    """Champion and challenger, and the promotion decision (leads and admins only)."""
    ui_of(request).desk.authorise(user, Permission.APPROVE_PROMOTION)
    return render(request, "models.html")
