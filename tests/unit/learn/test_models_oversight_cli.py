"""``fraudops models compare · promote · rollback``: the people's levers over the champion."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from argon2 import PasswordHasher
from typer.testing import CliRunner

from fraudops.cli import app
from fraudops.decide.ensemble_scorer import load_scorer
from fraudops.decide.log import DecisionRecord, SqlDecisionStore
from fraudops.learn.registry import lineage_from_model_dir, open_registry
from fraudops.review.audit import AuditAction, SqlAuditTrail
from fraudops.review.database import ReviewDatabase
from fraudops.review.users import Role, SqlUserStore
from fraudops.types import Action, Decision, Label, LabelSource, Transaction
from tests.conftest import TrainedLake
from tests.unit.learn.mlflow_store import fresh_mlflow_db

runner = CliRunner()
PASSWORD = "a long enough password"


@pytest.fixture
def registry(tmp_path: Path, trained_lake: TrainedLake) -> Path:
    """A registry with version 1 the champion and version 2 the challenger."""
    root = tmp_path / "registry"
    fresh_mlflow_db(root)
    models = open_registry(root)
    lineage = lineage_from_model_dir(trained_lake.model_dir, trained_by="ana")
    models.register(trained_lake.model_dir, lineage=lineage)
    models.register(trained_lake.model_dir, lineage=lineage)
    models.set_alias("champion", 1, actor="ana", reason="first model")
    models.set_alias("challenger", 2, actor="ana", reason="retrained")
    models.close()
    return root


@pytest.fixture(autouse=True)
def review_users(tmp_path: Path) -> None:
    """The review database in ``tmp_path`` with lea (lead), ann (analyst), old (a disabled lead)."""
    database = ReviewDatabase(f"sqlite:///{tmp_path / 'review.db'}")
    try:
        database.ensure_schema()
        users = SqlUserStore(database, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
        now = datetime(2024, 3, 1, tzinfo=UTC)
        for name, role in (("lea", Role.LEAD), ("ann", Role.ANALYST), ("old", Role.LEAD)):
            users.add(name, role, PASSWORD, by="cli:test", now=now)
        users.set_active("old", False, by="cli:test", now=now)
    finally:
        database.close()


def run(registry: Path, tmp_path: Path, *args: str, password: str = PASSWORD) -> tuple[int, str]:
    """``fraudops models ARGS`` on ``registry`` (and a review database in ``tmp_path``); a
    champion move gets the actor's ``password`` on standard input."""
    review = (
        []
        if args[0] == "compare"
        else ["--review-url", f"sqlite:///{tmp_path / 'review.db'}", "--password-stdin"]
    )
    result = runner.invoke(
        app, ["models", *args, "--registry", str(registry), *review], input=f"{password}\n"
    )
    return result.exit_code, result.output


def audit(tmp_path: Path) -> list[tuple[str, AuditAction, str, int]]:
    """The audit trail's entries: actor, action, reason, the version moved to."""
    database = ReviewDatabase(f"sqlite:///{tmp_path / 'review.db'}")
    try:
        entries = SqlAuditTrail(database).entries()
    finally:
        database.close()
    return [
        (e.actor, e.action, e.reason, e.details["version"])
        for e in entries
        if e.action in (AuditAction.PROMOTION, AuditAction.ROLLBACK)
    ]


def champion(registry: Path) -> int:
    """The champion's version."""
    return open_registry(registry).get("champion").version


def test_promotion_without_approve_is_refused(registry: Path, tmp_path: Path) -> None:
    """Without --approve nothing moves and nothing is recorded; the message says why."""
    code, output = run(registry, tmp_path, "promote", "--actor", "lea", "--reason", "better AP")
    assert (2, True, 1, []) == (code, "--approve" in output, champion(registry), audit(tmp_path))


def test_promotion_moves_the_champion_and_is_audited(registry: Path, tmp_path: Path) -> None:
    """The challenger's version becomes the champion, in the audit trail and alias history."""
    code, output = run(
        registry, tmp_path, "promote", "--approve", "--actor", "lea", "--reason", "better AP"
    )
    assert 0 == code, output
    assert 2 == champion(registry)
    assert [("cli:lea", AuditAction.PROMOTION, "better AP", 2)] == audit(tmp_path)
    latest = open_registry(registry).history("champion")[-1]
    assert ("cli:lea", 1, 2, "set") == (
        latest.actor,
        latest.previous_version,
        latest.version,
        latest.action,
    )


@pytest.mark.parametrize(
    ("actor", "why"),
    [
        ("ann", "is analyst"),
        ("old", "unknown, disabled, or not that password"),
        ("nobody", "unknown, disabled, or not that password"),
    ],
)
def test_promotion_by_anyone_but_an_active_lead_is_refused(
    registry: Path, tmp_path: Path, actor: str, why: str
) -> None:
    """An analyst, a disabled lead or an unknown name cannot promote: exit 2, one line saying
    why (without telling a disabled account from an unknown one), the champion unmoved and
    nothing audited."""
    code, output = run(
        registry, tmp_path, "promote", "--approve", "--actor", actor, "--reason", "better AP"
    )
    assert (2, True, 1, 1, []) == (
        code,
        why in output,
        len(output.strip().splitlines()),
        champion(registry),
        audit(tmp_path),
    )


def test_rollback_by_an_analyst_is_refused(registry: Path, tmp_path: Path) -> None:
    """After a lead's promotion, an analyst's rollback is refused and the champion stays."""
    run(registry, tmp_path, "promote", "--approve", "--actor", "lea", "--reason", "better AP")
    code, output = run(registry, tmp_path, "rollback", "--actor", "ann", "--reason", "alerts")
    assert (2, True, 2) == (code, "is analyst" in output, champion(registry))


def test_rollback_restores_the_previous_champion(registry: Path, tmp_path: Path) -> None:
    """After a promotion, one rollback puts version 1 back, audited as a rollback."""
    run(registry, tmp_path, "promote", "--approve", "--actor", "lea", "--reason", "better AP")
    code, output = run(
        registry, tmp_path, "rollback", "--actor", "lea", "--reason", "alerts", "--json"
    )
    assert 0 == code, output
    assert (1, "rollback", 1) == (champion(registry), json.loads(output)["action"], 1)
    assert [
        ("cli:lea", AuditAction.PROMOTION, "better AP", 2),
        ("cli:lea", AuditAction.ROLLBACK, "alerts", 1),
    ] == audit(tmp_path)


def test_rollback_without_an_earlier_champion_is_refused(registry: Path, tmp_path: Path) -> None:
    """A champion set once has nothing to roll back to: exit 2, nothing audited."""
    code, output = run(registry, tmp_path, "rollback", "--actor", "lea", "--reason", "alerts")
    assert (2, True, []) == (code, "no earlier version" in output, audit(tmp_path))


def test_a_move_to_another_version_than_expected_is_refused(registry: Path, tmp_path: Path) -> None:
    """--expect-version names the version the champion is to move to: a promotion expecting
    3 while the challenger is 2, or a rollback expecting 2 while it would restore 1, exits 2
    saying what the registry holds; nothing moves and nothing is audited."""
    promote = ["promote", "--approve", "--actor", "lea", "--reason", "better AP"]
    refused = run(registry, tmp_path, *promote, "--expect-version", "3")
    unmoved = champion(registry)
    promoted = run(registry, tmp_path, *promote, "--expect-version", "2")
    rollback = ["rollback", "--actor", "lea", "--reason", "alerts", "--expect-version", "2"]
    not_rolled_back = run(registry, tmp_path, *rollback)
    assert (2, True) == (
        refused[0],
        "the challenger is version 2 now, not version 3" in refused[1],
    ), refused
    assert (1, 0, 2) == (unmoved, promoted[0], not_rolled_back[0])
    assert "would restore version 1 now, not version 2" in not_rolled_back[1], not_rolled_back
    assert (2, [("cli:lea", AuditAction.PROMOTION, "better AP", 2)]) == (
        champion(registry),
        audit(tmp_path),
    )


def test_compare_reports_both_models(
    registry: Path, tmp_path: Path, trained_lake: TrainedLake
) -> None:
    """Compare reads the log's recent labelled decisions and reports each version's figures."""
    names = load_scorer(trained_lake.model_dir).feature_names
    url = f"sqlite:///{tmp_path / 'decisions.db'}"
    store = SqlDecisionStore(url)
    rng = np.random.default_rng(0)
    now = datetime.now(UTC)
    records, labels = [], []
    for i in range(40):
        at = now - timedelta(hours=1, minutes=i)
        tx = Transaction(f"t{i}", at, f"c{i}", "m1", 10.0)
        decision = Decision(f"t{i}", Action.APPROVE, 0.0, (), "v1", 1.0)
        features = {
            name: float(value) for name, value in zip(names, rng.random(len(names)), strict=True)
        }
        records.append(DecisionRecord(decision, tx, features, at))
        labels.append(Label(f"t{i}", i % 4 == 0, LabelSource.ANALYST, at))
    store.write(records, labels)
    store.close()
    code, output = run(
        registry,
        tmp_path,
        "compare",
        "--since",
        "1",
        "--decision-log",
        url,
        "--review-threshold",
        "0.5",
        "--json",
    )
    assert 0 == code, output
    values = json.loads(output)
    assert (40, 10, 1.0) == (values["transactions"], values["frauds"], values["agreement"])


def test_promotion_with_a_wrong_password_is_refused(registry: Path, tmp_path: Path) -> None:
    """A lead's name without the lead's password moves nothing: exit 2, champion stays."""
    code, output = run(
        registry,
        tmp_path,
        "promote",
        "--approve",
        "--actor",
        "lea",
        "--reason",
        "better AP",
        password="not lea's password",
    )
    assert (2, 1, []) == (code, champion(registry), audit(tmp_path))
    assert "not that password" in output


@pytest.mark.parametrize(
    ("command", "said"),
    [
        (["promote", "--approve"], "only a lead or admin may promote a model"),
        (["rollback"], "only a lead or admin may roll back a model"),
    ],
)
def test_an_analyst_is_told_what_only_a_lead_may_do(
    registry: Path, tmp_path: Path, command: list[str], said: str
) -> None:
    """The refusal reads as a sentence: "may promote a model", "may roll back a model"."""
    code, output = run(registry, tmp_path, *command, "--actor", "ann", "--reason", "why")
    assert (2, True) == (code, said in output), output


def test_a_mistyped_review_database_is_refused_not_created(registry: Path, tmp_path: Path) -> None:
    """A --review-url to a SQLite file that is not there says so in one line (not "unknown
    user"), creates neither the file nor its folder, and moves nothing."""
    typo = tmp_path / "typo" / "review.db"
    result = runner.invoke(
        app,
        [
            "models",
            "promote",
            "--approve",
            "--actor",
            "lea",
            "--reason",
            "better AP",
            "--registry",
            str(registry),
            "--review-url",
            f"sqlite:///{typo}",
            "--password-stdin",
        ],
        input=f"{PASSWORD}\n",
    )
    lines = result.output.strip().splitlines()
    assert (2, 1, True, False, 1) == (
        result.exit_code,
        len(lines),
        str(typo) in lines[0],
        typo.parent.exists(),
        champion(registry),
    ), result.output


def test_compare_on_a_decision_log_that_is_not_there_is_refused(
    registry: Path, tmp_path: Path
) -> None:
    """``compare --decision-log`` to a missing SQLite file names it, creating nothing,
    rather than answering "no labels table" from a new empty log."""
    missing = tmp_path / "nolog.db"
    code, output = run(registry, tmp_path, "compare", "--decision-log", f"sqlite:///{missing}")
    assert (2, True, False) == (code, "does not exist" in output, missing.exists()), output
