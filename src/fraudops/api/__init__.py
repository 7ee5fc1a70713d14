"""The HTTP face of fraudops: ``create_app(settings)`` and what it is built from."""

from fraudops.api.app import create_app
from fraudops.api.wiring import Runtime, build_runtime

__all__ = ["Runtime", "build_runtime", "create_app"]
