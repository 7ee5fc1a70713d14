"""The UI's static files (htmx, its stylesheet and script), served from the package.

A fixed list, read from the package folder: nothing is downloaded at run time, and no
path from a request ever reaches the file system.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response

STATIC = Path(__file__).parent / "static"
HTMX_VERSION = "2.0.11"
"""The vendored ``static/htmx.min.js`` (htmx.org 2.0.11, 0BSD licence)."""

_FILES = {
    "htmx.min.js": "text/javascript",
    "ui.js": "text/javascript",
    "ui.css": "text/css",
}

router = APIRouter()


@router.get("/static/{name}", name="ui.static", include_in_schema=False)
async def static_file(name: str) -> Response:
    """One of the UI's static files; 404 for any other name."""
    media_type = _FILES.get(name)
    if media_type is None:
        return Response("no such file", status_code=404, media_type="text/plain")
    return FileResponse(
        STATIC / name,
        media_type=media_type,
        headers={"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"},
    )
