"""Alembic's environment for the review tables: runs on the connection the caller passes.

Opened only by :func:`fraudops.review.database.migrate` (no ``alembic.ini``).
"""

from __future__ import annotations

from fraudops.migrations import run_on_given_connection
from fraudops.review._schema import VERSION_TABLE, metadata

run_on_given_connection(VERSION_TABLE, metadata)
