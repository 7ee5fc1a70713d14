"""``fraudops serve`` and ``fraudops keys new``: run the decision service, make API keys."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from fraudops.cli._common import console, emit_json, fail_cleanly
from fraudops.errors import InputError

SWITCH_INTERVAL_S = 0.0005


@fail_cleanly
def serve(
    model_dir: Annotated[
        Path | None, typer.Option(help="The champion model directory (else settings.model_dir).")
    ] = None,
    fallback_model_dir: Annotated[
        Path | None, typer.Option(help="The last known good model, used when the champion fails.")
    ] = None,
    model_alias: Annotated[
        str | None,
        typer.Option(
            help="Serve the registry's model under this alias (champion) and follow it: a"
            " promotion or rollback is swapped in without a restart (costs MLflow's import,"
            " ≈2 s at start)."
        ),
    ] = None,
    challenger_alias: Annotated[
        str | None,
        typer.Option(
            help="Score the registry's model under this alias (challenger) in shadow, and"
            " follow it the same way."
        ),
    ] = None,
    registry: Annotated[
        Path | None, typer.Option(help="Registry directory (default <data_dir>/registry).")
    ] = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
) -> None:
    """Serve decisions over HTTP until SIGTERM or Ctrl-C; in-flight requests finish first."""
    import uvicorn

    from fraudops.api import create_app
    from fraudops.monitoring.logs import configure_logging
    from fraudops.settings import load_settings

    settings = load_settings()
    service_update: dict[str, Any] = {}
    if host is not None:
        service_update["host"] = host
    if port is not None:
        service_update["port"] = port
    if fallback_model_dir is not None:
        service_update["fallback_model_dir"] = fallback_model_dir
    if model_dir is not None and model_alias is not None:
        raise InputError("give --model-dir or --model-alias, not both")
    update: dict[str, Any] = {}
    if model_dir is not None:
        update["model_dir"] = model_dir
        service_update["model_alias"] = None  # a directory given here wins over the config's
    if model_alias is not None:
        service_update["model_alias"] = model_alias
    if challenger_alias is not None:
        service_update["challenger_alias"] = challenger_alias
        service_update["challenger_model_dir"] = None  # the alias given here wins
    if registry is not None:
        service_update["registry_dir"] = registry
    update["service"] = settings.service.model_copy(update=service_update)
    settings = settings.model_copy(update=update)
    # Threads (a model, a remote store) hand the interpreter lock back to the event loop at
    # the switch interval; CPython's default of 5 ms would put whole milliseconds of waiting
    # into each decision whenever the loop is busy.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    observability = settings.observability
    configure_logging(level=observability.log_level, json=observability.log_json)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.service.host,
        port=settings.service.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        # fraudops's JSON logging handles uvicorn's records too (masked, with trace ids).
        log_config=None,
        log_level=observability.log_level.lower(),
        timeout_graceful_shutdown=int(settings.service.shutdown_grace_s) or None,
    )
    uvicorn.Server(config).run()


keys = typer.Typer(help="API keys for machine clients.", no_args_is_help=True)


@keys.command("new")
@fail_cleanly
def new_key(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print key and hash as JSON.")
    ] = False,
) -> None:
    """Make an API key: give the key to the client, put the hash in api.key_hashes."""
    from fraudops.api.auth import key_hash
    from fraudops.api.auth import new_key as make_key

    key = make_key()
    digest = key_hash(key)
    if json_output:
        emit_json({"key": key, "key_hash": digest})
        return
    console.print("[bold]key[/bold] (give to the client; it is not stored anywhere):")
    typer.echo(key)
    console.print("[bold]hash[/bold] (add to FRAUDOPS_API__KEY_HASHES or api.key_hashes):")
    typer.echo(digest)
