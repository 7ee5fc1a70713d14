"""Alembic's environment for the review tables: runs on the connection the caller passes.

Opened only by :func:`fraudops.review.database.migrate` (no ``alembic.ini``): the caller
puts a SQLAlchemy connection in ``config.attributes["connection"]`` and this script runs
the migrations on it, inside the caller's transaction.
"""

from __future__ import annotations

from alembic import context

from fraudops.review._schema import VERSION_TABLE, metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "the review migrations run on a connection given by fraudops.review.database.migrate"
    )
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # SQLite cannot ALTER most things in place; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
