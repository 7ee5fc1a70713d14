"""The ``fraudops`` command line: one module per command, assembled here."""

from __future__ import annotations

import typer

from fraudops.cli import _demo, _ingest, _learn, _models, _serve, _simulate, _tune, _users

app = typer.Typer(
    name="fraudops",
    help="Real-time card-fraud detection: simulate, ingest, train, evaluate, serve, demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("simulate")(_simulate.simulate)
app.command("ingest")(_ingest.ingest)
app.command("train")(_learn.train)
app.command("evaluate")(_learn.evaluate)
app.command("tune")(_tune.tune)
app.command("demo")(_demo.demo)
app.command("serve")(_serve.serve)
app.add_typer(_serve.keys, name="keys")
app.add_typer(_models.models, name="models")
app.add_typer(_users.users, name="users")

__all__ = ["app"]
