"""``fraudops models``: the model registry's versions, lineage and aliases."""

from __future__ import annotations

import getpass
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import sqlalchemy as sa
import typer
from rich.table import Table
from sqlalchemy.exc import ArgumentError

from fraudops.cli._common import console, emit_json, fail_cleanly, show
from fraudops.errors import AuthError, InputError, ModelError

if TYPE_CHECKING:
    from fraudops.learn.compare import ModelFigures
    from fraudops.learn.registry import AliasChange, MlflowRegistry
    from fraudops.review.audit import AuditAction

models = typer.Typer(
    help="The model registry: versions with their lineage, and the champion/challenger aliases.",
    no_args_is_help=True,
)

RegistryDir = Annotated[
    Path | None,
    typer.Option(
        "--registry",
        help="Registry directory (default service.registry_dir, else <data_dir>/registry).",
    ),
]
RegistryUri = Annotated[
    str | None,
    typer.Option(help="Database URL of the registry (default sqlite in --registry)."),
]
JsonOutput = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _registry(root: Path | None, uri: str | None, *, create: bool = False) -> MlflowRegistry:
    """The registry the options name (default: the one the service follows).

    Only ``create`` (registering a model) may start a new one: anything else on a registry
    that is not there is a mistyped path or URL, refused rather than answered from a new,
    empty store.
    """
    from fraudops.learn.registry import open_registry, registry_dir
    from fraudops.settings import load_settings

    root = root or registry_dir(load_settings())
    if root.exists() and not root.is_dir():
        raise InputError(f"--registry {root}: is a file, not a registry directory")
    if not create:
        if uri is not None:
            _existing_sqlite(uri, "--registry-uri")
        elif not (root / "mlflow.db").is_file():
            raise InputError(
                f"--registry {root}: no registry there (no mlflow.db); check the path, or"
                " register a model first with `fraudops models register`"
            )
    return open_registry(root, uri=uri)


def _existing_sqlite(url: str, what: str) -> None:
    """Refuse a SQLite URL whose file is not there (opening it would create an empty one);
    other databases are left to their server to answer."""
    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        return  # the store's own opening names a malformed URL
    database = parsed.database
    if not parsed.drivername.startswith("sqlite") or database in (None, "", ":memory:"):
        return
    if not Path(database).is_file():
        raise InputError(f"{what} {url}: no such database ({database} does not exist)")


@models.command("list")
@fail_cleanly
def list_versions(
    registry: RegistryDir = None, registry_uri: RegistryUri = None, json_output: JsonOutput = False
) -> None:
    """List every registered version with its lineage and aliases."""
    versions = _registry(registry, registry_uri).versions()
    if json_output:
        emit_json({"versions": [version.as_dict() for version in versions]})
        return
    table = Table(title=f"registered models ({len(versions)})")
    for column in ("version", "aliases", "model", "trained", "by", "AP", "git"):
        table.add_column(column)
    for version in versions:
        lineage = version.lineage
        ap = lineage.metrics.get("average_precision")
        table.add_row(
            str(version.version),
            ", ".join(version.aliases),
            lineage.artifact_version or "",
            f"{lineage.train_start}…{lineage.train_end}",
            lineage.trained_by,
            "" if ap is None else f"{ap:.3f}",
            lineage.git_commit or "",
        )
    show(table, result=True)


@models.command("register")
@fail_cleanly
def register(
    model: Annotated[Path, typer.Argument(help="Model directory written by `fraudops train`.")],
    trained_by: Annotated[
        str | None, typer.Option(help="Who trained it (default: the current user).")
    ] = None,
    registry: RegistryDir = None,
    registry_uri: RegistryUri = None,
    json_output: JsonOutput = False,
) -> None:
    """Register a model directory as a new version, with the lineage its manifest records.

    The model is checked first (a damaged file is refused, named); one registered before
    (the same model version) keeps its registry version and is not registered again.
    """
    from fraudops.learn.registry import register_once

    found = register_once(
        _registry(registry, registry_uri, create=True),
        model,
        trained_by=trained_by or getpass.getuser(),
    )
    version = found.version
    if json_output:
        emit_json(found.as_dict())
        return
    if found.already_registered:
        console.print(
            f"{model} ({version.lineage.artifact_version}) is already registered as"
            f" {version.name} version {version.version}; nothing was registered"
        )
        return
    console.print(f"registered {model} as {version.name} version {version.version}")


@models.command("alias")
@fail_cleanly
def alias(
    name: Annotated[str, typer.Argument(help="champion or challenger.")],
    version: Annotated[int, typer.Argument(min=1, help="The version it should point at.")],
    actor: Annotated[str, typer.Option(help="Who is moving the alias.")],
    reason: Annotated[str, typer.Option(help="Why, for the history.")],
    registry: RegistryDir = None,
    registry_uri: RegistryUri = None,
    json_output: JsonOutput = False,
) -> None:
    """Point the challenger at a version; the move is kept in the alias history.

    The champion decides, so it moves only with a lead's approval in the audit trail:
    ``fraudops models promote --approve`` or ``fraudops models rollback``.
    """
    if name.strip() == "champion":
        raise InputError(
            "the champion moves only with a lead's approval, recorded in the audit trail:"
            " alias the version as challenger, then `fraudops models promote --approve`"
            " (or `fraudops models rollback`)"
        )
    change = _registry(registry, registry_uri).set_alias(name, version, actor=actor, reason=reason)
    if json_output:
        emit_json(change.as_dict())
        return
    before = "nothing" if change.previous_version is None else f"version {change.previous_version}"
    console.print(f"{change.alias}: {before} → version {change.version} ({change.actor})")


@models.command("history")
@fail_cleanly
def history(
    name: Annotated[
        str | None, typer.Argument(help="champion or challenger (default: both).")
    ] = None,
    registry: RegistryDir = None,
    registry_uri: RegistryUri = None,
    json_output: JsonOutput = False,
) -> None:
    """Every alias move, oldest first: which version, from which, who and why."""
    changes = _registry(registry, registry_uri).history(name)
    if json_output:
        emit_json({"changes": [change.as_dict() for change in changes]})
        return
    table = Table(title="alias history")
    for column in ("when", "alias", "from", "to", "action", "who", "why"):
        table.add_column(column)
    for change in changes:
        table.add_row(
            f"{change.changed_at:%Y-%m-%d %H:%M:%S}",
            change.alias,
            "" if change.previous_version is None else str(change.previous_version),
            str(change.version),
            change.action,
            change.actor,
            change.reason,
        )
    show(table, result=True)


@models.command("pull")
@fail_cleanly
def pull(
    name: Annotated[str, typer.Argument(help="champion, challenger or a version number.")],
    out: Annotated[
        Path,
        typer.Option(help="Directory to write the model into (absent, empty or a model)."),
    ],
    registry: RegistryDir = None,
    registry_uri: RegistryUri = None,
    json_output: JsonOutput = False,
) -> None:
    """Copy the version an alias points at into a directory the service loads at start.

    The service then needs neither MLflow nor the registry database to start.
    """
    from fraudops.learn.artifact import directory_files

    target = _pull_destination(out)
    source_registry = _registry(registry, registry_uri)
    version = source_registry.get(name)
    source = source_registry.load_dir(version.version)
    staging = target.with_name(f".{target.name}.pulling")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    if directory_files(staging) != version.files:
        shutil.rmtree(staging, ignore_errors=True)
        raise ModelError(f"copy of {version.name} version {version.version} in {staging} differs")
    if target.exists():
        shutil.rmtree(target)
    staging.replace(target)
    if json_output:
        emit_json({"version": version.version, "aliases": list(version.aliases), "out": out})
        return
    console.print(f"{name}: version {version.version} → {out}")


def _pull_destination(out: Path) -> Path:
    """``out`` as a path ``pull`` may replace: absent, an empty directory or a model
    directory, and never the working directory or one around it."""
    from fraudops.learn.artifact import check_model_destination

    here = Path.cwd()
    resolved = out.resolve()
    if resolved == here or resolved in here.parents:
        raise InputError(
            f"--out {out}: is the working directory or holds it; name the model's own"
            " directory (e.g. models/serving)"
        )
    check_model_destination(out)
    return resolved


# --------------------------------------------------------------------- oversight

DecisionLogUrl = Annotated[
    str | None,
    typer.Option("--decision-log", help="Decision log URL (default decision_log.url)."),
]
ReviewUrl = Annotated[
    str | None,
    typer.Option(
        "--review-url", help="Review database URL (default review.url, else <data_dir>/review.db)."
    ),
]
Actor = Annotated[
    str,
    typer.Option(help="Who approves: an active lead or admin of the review desk (cli:<name>)."),
]
Reason = Annotated[str, typer.Option(help="Why, for the audit trail and the alias history.")]
ExpectVersion = Annotated[
    int | None,
    typer.Option(
        "--expect-version",
        min=1,
        help="Move the champion only to this version (the challenger you compared, or the"
        " version the rollback would restore); if the registry says another, nothing moves.",
    ),
]
PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the actor's review-desk password from standard input (else it is asked).",
    ),
]


@models.command("compare")
@fail_cleanly
def compare(
    since: Annotated[
        float, typer.Option(min=0.01, help="Compare decisions of the last DAYS days.")
    ] = 7.0,
    decision_log: DecisionLogUrl = None,
    review_threshold: Annotated[
        float | None,
        typer.Option(min=0.0, max=1.0, help="Review threshold (default: the service's policy)."),
    ] = None,
    registry: RegistryDir = None,
    registry_uri: RegistryUri = None,
    json_output: JsonOutput = False,
) -> None:
    """Champion against challenger on the decision log's recent labelled traffic."""
    from datetime import timedelta

    from fraudops.clock import SystemClock
    from fraudops.decide.ensemble_scorer import load_scorer
    from fraudops.decide.policy import Policy
    from fraudops.learn.compare import compare_models, labelled_traffic
    from fraudops.settings import load_settings

    settings = load_settings()
    if review_threshold is None:
        policy = settings.policy
        found = Policy.from_file(policy.file) if policy.file else Policy.from_settings(policy)
        review_threshold = found.review_threshold
    log_url = decision_log or settings.decision_log.url
    _existing_sqlite(log_url, "--decision-log" if decision_log else "decision log")
    source = _registry(registry, registry_uri)
    champion = load_scorer(source.load_dir("champion"))
    challenger = load_scorer(source.load_dir("challenger"))
    until = SystemClock().now()
    start = until - timedelta(days=since)
    names = tuple(dict.fromkeys(champion.feature_names + challenger.feature_names))
    traffic = labelled_traffic(log_url, since=start, until=until, feature_names=names)
    result = compare_models(
        traffic, champion, challenger, review_threshold=review_threshold, since=start, until=until
    )
    if json_output:
        emit_json(result.as_dict())
        return
    table = Table(
        title=(
            f"champion vs challenger: {result.transactions} labelled transactions"
            f" ({result.frauds} fraud) since {start:%Y-%m-%d %H:%M}"
        )
    )
    for column in ("", "champion", "challenger"):
        table.add_column(column)

    def figures(f: ModelFigures) -> list[str]:
        return [
            f.version,
            f"{f.average_precision:.3f}",
            f"{f.card_precision_at_100:.3f}",
            str(f.false_positives_at_recall),
            str(f.flagged),
            f"{f.latency_p50_ms:.3f}",
        ]

    labels = [
        "version",
        "average precision",
        "card precision@100",
        f"false positives at recall {result.operating_recall:.0%}",
        f"flagged (score ≥ {result.review_threshold:g})",
        "latency p50 (ms)",
    ]
    for row in zip(labels, figures(result.champion), figures(result.challenger), strict=True):
        table.add_row(*row)
    console.print(table)
    console.print(f"agreement across the review threshold: {result.agreement:.1%}")


@models.command("promote")
@fail_cleanly
def promote(
    actor: Actor,
    reason: Reason,
    approve: Annotated[
        bool, typer.Option("--approve", help="Confirm: the challenger becomes the champion.")
    ] = False,
    review_url: ReviewUrl = None,
    registry: RegistryDir = None,
    registry_uri: RegistryUri = None,
    expect_version: ExpectVersion = None,
    password_stdin: PasswordStdin = False,
    json_output: JsonOutput = False,
) -> None:
    """Make the challenger the champion, with a lead's approval in the audit trail."""
    from fraudops.review.audit import AuditAction

    if not approve:
        raise InputError("promotion needs a person's approval: run again with --approve")
    change = _audited(
        review_url,
        AuditAction.PROMOTION,
        registry,
        registry_uri,
        actor=actor,
        reason=reason,
        password=_actor_password(actor, password_stdin),
        to=expect_version,
    )
    _print_change(change, json_output)


@models.command("rollback")
@fail_cleanly
def rollback(
    actor: Actor,
    reason: Reason,
    review_url: ReviewUrl = None,
    registry: RegistryDir = None,
    registry_uri: RegistryUri = None,
    expect_version: ExpectVersion = None,
    password_stdin: PasswordStdin = False,
    json_output: JsonOutput = False,
) -> None:
    """Point the champion back at the version it held before its latest move, audited."""
    from fraudops.review.audit import AuditAction

    change = _audited(
        review_url,
        AuditAction.ROLLBACK,
        registry,
        registry_uri,
        actor=actor,
        reason=reason,
        password=_actor_password(actor, password_stdin),
        to=expect_version,
    )
    _print_change(change, json_output)


def _actor_password(actor: str, from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise InputError("--password-stdin: no password on standard input")
        return password
    return str(typer.prompt(f"Review-desk password of {actor}", hide_input=True, err=True))


def _audited(
    review_url: str | None,
    action: AuditAction,
    registry: Path | None,
    registry_uri: str | None,
    *,
    actor: str,
    reason: str,
    password: str,
    to: int | None = None,
) -> AliasChange:
    """Move the champion as ``actor`` (an active lead or admin of the review desk, proven by
    their password), to version ``to`` only when given, and record it in the audit trail;
    the move is undone if the trail cannot record it.

    The review database is read first (who ``actor`` is), so an unreachable trail, a wrong
    password or a user who may not approve refuses the move before the registry is touched.
    """
    from fraudops.review.audit import AuditEntry, SqlAuditTrail
    from fraudops.review.database import ReviewDatabase
    from fraudops.review.promotion import approver, move_champion
    from fraudops.review.users import SqlUserStore
    from fraudops.settings import load_settings

    name = actor.strip()
    if not name or not reason.strip():
        raise InputError("a champion move needs an actor and a reason")
    who = f"cli:{name}"
    what = "--review-url"
    if review_url is None:
        settings = load_settings()
        review_url = settings.review.database_url(settings.data_dir)
        what = "review database"
    # A mistyped path would otherwise become a new, empty review database, whose answer
    # ("unknown user") sends the lead looking for the wrong problem.
    _existing_sqlite(review_url, what)
    database = ReviewDatabase(review_url)
    try:
        database.ensure_schema()
        database.ping()
        users = SqlUserStore(database)
        if users.verify(name, password, datetime.now(UTC)) is None:
            raise AuthError(f"{name!r}: unknown, disabled, or not that password")
        approver(users, name, action)
        source = _registry(registry, registry_uri)
        trail = SqlAuditTrail(database)

        def record(change: AliasChange) -> None:
            trail.record(
                AuditEntry(
                    at=change.changed_at,
                    actor=who,
                    action=action,
                    subject=f"model:{source.name}",
                    reason=reason,
                    details={"registry": source.tracking_uri, **change.as_dict()},
                )
            )

        try:
            return move_champion(source, action, actor=who, reason=reason, record=record, to=to)
        finally:
            source.close()
    finally:
        database.close()


def _print_change(change: AliasChange, json_output: bool) -> None:
    if json_output:
        emit_json(change.as_dict())
        return
    before = "nothing" if change.previous_version is None else f"version {change.previous_version}"
    console.print(
        f"champion: {before} → version {change.version} ({change.action} by {change.actor},"
        " recorded in the audit trail)"
    )
