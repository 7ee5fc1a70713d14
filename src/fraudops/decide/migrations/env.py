"""Alembic's environment for the decision log: runs on the connection the caller passes.

Opened only by :func:`fraudops.decide.log_schema.migrate` (no ``alembic.ini``).
"""

from __future__ import annotations

from fraudops.decide.log_schema import VERSION_TABLE, metadata
from fraudops.migrations import run_on_given_connection

run_on_given_connection(VERSION_TABLE, metadata)
