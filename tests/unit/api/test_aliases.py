"""The service follows the registry's aliases: promotions and rollbacks of the champion,
and a new challenger in shadow, without a restart; loud when a version will not serve;
every swap in the audit trail."""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url

from fraudops.api import Runtime, build_runtime
from fraudops.api.aliases import AliasFollower, ModelChange
from fraudops.clock import ManualClock
from fraudops.decide.shadow import read_shadow_scores
from fraudops.learn.artifact import MANIFEST_FILE, load_model_dir
from fraudops.learn.registry import MlflowRegistry, lineage_from_model_dir, open_registry
from fraudops.review.audit import AuditAction, SqlAuditTrail
from fraudops.review.database import ReviewDatabase
from fraudops.settings import ReviewSettings, Settings
from fraudops.types import Transaction
from tests.conftest import TrainedLake
from tests.faults import TcpProxy
from tests.services import postgres_schema_url
from tests.unit.api.conftest import HEADERS, body_of, service_settings
from tests.unit.api.server import running_server
from tests.unit.learn.mlflow_store import fresh_mlflow_db

NOW = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)


def version_of(model_dir: Path) -> str:
    """The model version a model directory's manifest gives."""
    return load_model_dir(model_dir).manifest.model_version


def broken_copy(model_dir: Path, target: Path) -> Path:
    """A copy of ``model_dir`` that says it was built on other features (another version)."""
    shutil.copytree(model_dir, target)
    manifest = json.loads((target / MANIFEST_FILE).read_text())
    manifest["feature_definition_hash"] = "f" * 64
    manifest["model_version"] = "lgbm-broken-00000000"
    (target / MANIFEST_FILE).write_text(json.dumps(manifest))
    return target


@pytest.fixture
def registry_root(tmp_path: Path, trained_lake: TrainedLake, retrained_model: Path) -> Path:
    """A registry: 1 = the tiny model (champion), 2 = the retrained one, 3 = the tiny model
    again, 4 = a model built on other features."""
    root = tmp_path / "registry"
    fresh_mlflow_db(root)
    registry = open_registry(root)
    broken = broken_copy(trained_lake.model_dir, tmp_path / "broken")
    for model_dir in (trained_lake.model_dir, retrained_model, trained_lake.model_dir, broken):
        registry.register(model_dir, lineage=lineage_from_model_dir(model_dir, trained_by="ana"))
    registry.set_alias("champion", 1, actor="lea", reason="first model")
    registry.close()
    return root


def promote(root: Path, version: int, alias: str = "champion") -> None:
    """Point ``alias`` at ``version``, as a lead does on the models page."""
    registry = open_registry(root)
    try:
        registry.set_alias(alias, version, actor="lea", reason="better on last week")
    finally:
        registry.close()


def following_settings(
    tmp_path: Path, model_dir: Path, root: Path, *, challenger: bool = False
) -> Settings:
    """A service that follows ``root``'s champion (and its challenger, if ``challenger``),
    its data (audit trail) in ``tmp_path``."""
    settings = service_settings(
        tmp_path,
        model_dir,
        model_alias="champion",
        challenger_alias="challenger" if challenger else None,
        registry_dir=root,
        alias_poll_s=0.1,
    )
    return settings.model_copy(update={"data_dir": tmp_path / "data"})


@pytest.fixture
def runtime(tmp_path: Path, trained_lake: TrainedLake, registry_root: Path) -> Iterator[Runtime]:
    """A started runtime serving the registry's champion, following it."""
    settings = following_settings(tmp_path, trained_lake.model_dir, registry_root)
    built = build_runtime(settings, clock=ManualClock(NOW))
    built.start()
    try:
        yield built
    finally:
        built.close()


def follower_of(runtime: Runtime, role: str = "champion") -> AliasFollower:
    """The runtime's follower of ``role``'s alias (it must have one)."""
    [follower] = [f for f in runtime.followers if f.seat.role == role]
    return follower


def champion_version(runtime: Runtime) -> str | None:
    """The model version serving as champion."""
    return next((m.version for m in runtime.service.models if m.role == "champion"), None)


def metric(runtime: Runtime, name: str, **labels: str) -> float:
    """The value of one metric series (0 when it has no sample)."""
    body, _ = runtime.metrics.render()
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return 0.0


def model_changes(tmp_path: Path) -> list[tuple[str, str, dict[str, object]]]:
    """(actor, subject, details) of every model change in the audit trail of ``tmp_path``."""
    database = ReviewDatabase(f"sqlite:///{tmp_path / 'data' / 'review.db'}")
    try:
        entries = SqlAuditTrail(database).entries(action=AuditAction.MODEL_CHANGE)
    finally:
        database.close()
    return [(entry.actor, entry.subject, dict(entry.details)) for entry in entries]


def test_a_promotion_is_swapped_in_and_recorded(
    runtime: Runtime, registry_root: Path, retrained_model: Path, tmp_path: Path
) -> None:
    """The alias moved to the retrained model: it serves from the next decision on, the
    metrics name it, and the audit trail records the automated change once."""
    before = champion_version(runtime)
    promote(registry_root, 2)
    change = asyncio.run(follower_of(runtime).follow_once())
    again = asyncio.run(follower_of(runtime).follow_once())
    new = version_of(retrained_model)
    assert isinstance(change, ModelChange)
    assert (2, new, before) == (
        change.registry_version,
        change.model_version,
        change.previous_model_version,
    )
    assert None is again
    assert new == champion_version(runtime)
    assert 1.0 == metric(runtime, "fraudops_model_info", role="champion", version=new)
    assert 0.0 == metric(runtime, "fraudops_model_info", role="champion", version=str(before))
    assert 1.0 == metric(runtime, "fraudops_model_swaps_total", outcome="swapped")
    [(actor, subject, details)] = model_changes(tmp_path)
    assert ("system:service", f"champion:{new}") == (actor, subject)
    assert {"registry_version": 2, "previous_model_version": before} == {
        key: details[key] for key in ("registry_version", "previous_model_version")
    }


def test_a_version_holding_the_same_model_changes_nothing(
    runtime: Runtime, registry_root: Path, tmp_path: Path
) -> None:
    """Version 3 is the served model registered again: nothing is loaded or recorded."""
    served = champion_version(runtime)
    model = runtime.service.models[0]
    promote(registry_root, 3)
    assert None is asyncio.run(follower_of(runtime).follow_once())
    assert (served, model) == (champion_version(runtime), runtime.service.models[0])
    assert [] == model_changes(tmp_path)


def test_a_version_that_will_not_serve_leaves_the_champion_and_is_counted(
    runtime: Runtime, registry_root: Path, trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """A model built on other features fails to load: the old champion goes on serving,
    the failure is counted once (not retried every poll), and nothing is recorded as a
    change; moving the alias again is followed."""
    promote(registry_root, 4)
    follower = follower_of(runtime)
    assert None is asyncio.run(follower.follow_once())
    assert None is asyncio.run(follower.follow_once())
    assert version_of(trained_lake.model_dir) == champion_version(runtime)
    assert 1.0 == metric(runtime, "fraudops_model_swaps_total", outcome="failed")
    assert [] == model_changes(tmp_path)
    promote(registry_root, 2)
    assert isinstance(asyncio.run(follower.follow_once()), ModelChange)


def test_a_rollback_swaps_the_previous_champion_back(
    runtime: Runtime, registry_root: Path, trained_lake: TrainedLake, tmp_path: Path
) -> None:
    """Promote, then roll back: the first model serves again, and both swaps are recorded."""
    follower = follower_of(runtime)
    promote(registry_root, 2)
    asyncio.run(follower.follow_once())
    registry = open_registry(registry_root)
    try:
        registry.rollback("champion", actor="lea", reason="more false positives")
    finally:
        registry.close()
    change = asyncio.run(follower.follow_once())
    assert change is not None
    assert version_of(trained_lake.model_dir) == champion_version(runtime)
    assert [2, 1] == [details["registry_version"] for *_, details in model_changes(tmp_path)]


def test_a_swap_the_audit_trail_missed_is_recorded_once_it_returns(
    tmp_path: Path, trained_lake: TrainedLake, registry_root: Path, retrained_model: Path
) -> None:
    """The review database (PostgreSQL) is cut off when the champion moves: the swap still
    happens, and the automated change reaches the audit trail at the next poll after the
    database returns, once."""
    with postgres_schema_url() as url:
        target = make_url(url)
        with TcpProxy(target.host or "127.0.0.1", target.port or 5432) as proxy:
            review_url = proxy.url_for(url)
            settings = following_settings(tmp_path, trained_lake.model_dir, registry_root)
            settings = settings.model_copy(update={"review": ReviewSettings(url=review_url)})
            built = build_runtime(settings, clock=ManualClock(NOW))
            built.start()
            database = ReviewDatabase(review_url)
            try:
                follower = follower_of(built)
                proxy.cut()
                promote(registry_root, 2)
                change = asyncio.run(follower.follow_once())
                served = champion_version(built)
                proxy.restore()
                asyncio.run(follower.follow_once())
                asyncio.run(follower.follow_once())
                entries = SqlAuditTrail(database).entries(action=AuditAction.MODEL_CHANGE)
            finally:
                database.close()
                built.close()
    assert change is not None
    assert version_of(retrained_model) == served
    assert [f"champion:{served}"] == [entry.subject for entry in entries]


def test_a_service_started_before_any_champion_serves_it_once_promoted(
    tmp_path: Path, trained_lake: TrainedLake
) -> None:
    """With no champion in the registry the service starts unready (no model at all); once
    a lead promotes one, it is swapped in and the service is ready."""
    root = tmp_path / "registry"
    fresh_mlflow_db(root)
    registry: MlflowRegistry = open_registry(root)
    registry.register(
        trained_lake.model_dir,
        lineage=lineage_from_model_dir(trained_lake.model_dir, trained_by="ana"),
    )
    registry.close()
    settings = following_settings(tmp_path, trained_lake.model_dir, root)
    built = build_runtime(settings, clock=ManualClock(NOW))
    built.start()
    try:
        unready = (built.ready, metric(built, "fraudops_ready"), list(built.service.models))
        promote(root, 1)
        change = asyncio.run(follower_of(built).follow_once())
        assert (False, 0.0, []) == unready
        assert change is not None
        assert change.previous_model_version is None
        assert (True, 1.0) == (built.ready, metric(built, "fraudops_ready"))
    finally:
        built.close()


def test_a_running_server_swaps_without_dropping_a_decision(
    tmp_path: Path,
    registry_root: Path,
    retrained_model: Path,
    transactions: list[Transaction],
) -> None:
    """``fraudops serve --model-alias champion`` under steady traffic: after a promotion
    the new model answers within seconds, and every decision before, during and after the
    swap is a 200 answered by a champion, none degraded."""
    args = ["--model-alias", "champion", "--registry", str(registry_root)]
    answers: list[tuple[int, str, str, bool]] = []
    stop = threading.Event()
    with running_server(
        tmp_path, None, model_args=args, FRAUDOPS_SERVICE__ALIAS_POLL_S="0.2"
    ) as server:

        def send() -> None:
            with httpx2.Client(base_url=server.url, headers=HEADERS, timeout=5.0) as client:
                for tx in transactions:
                    if stop.is_set():
                        return
                    response = client.post("/v1/transactions", json=body_of(tx))
                    body = response.json()
                    answers.append(
                        (
                            response.status_code,
                            body["model_version"],
                            body["source"],
                            body["degraded"],
                        )
                    )

        sender = threading.Thread(target=send)
        sender.start()
        time.sleep(0.5)
        promote(registry_root, 2)
        new = version_of(retrained_model)
        give_up = time.monotonic() + 30.0
        while time.monotonic() < give_up and not any(a[1] == new for a in answers):
            time.sleep(0.1)
        time.sleep(0.5)
        stop.set()
        sender.join(timeout=30)
        server.terminate()
    versions = [version for _, version, _, _ in answers]
    assert new in versions, f"the promoted model never answered: {sorted(set(versions))}"
    first_new = versions.index(new)
    assert all(version == new for version in versions[first_new:])
    assert [] == [a for a in answers if a[0] != 200 or a[2] != "model" or a[3]]


def test_a_challenger_named_in_the_registry_is_scored_in_shadow(
    tmp_path: Path,
    trained_lake: TrainedLake,
    registry_root: Path,
    retrained_model: Path,
    transactions: list[Transaction],
) -> None:
    """A service following the challenger alias starts with nothing in shadow; once the
    alias names the retrained model, the decisions after it get that model's shadow
    scores, and the change is in the metrics and the audit trail."""
    settings = following_settings(tmp_path, trained_lake.model_dir, registry_root, challenger=True)
    built = build_runtime(settings, clock=ManualClock(NOW))
    built.start()
    try:
        before = built.service.shadow
        promote(registry_root, 2, "challenger")
        change = asyncio.run(follower_of(built, "challenger").follow_once())

        async def decide_all() -> None:
            for tx in transactions[:5]:
                await built.service.decide(tx)

        asyncio.run(decide_all())
    finally:
        built.close()
    new = version_of(retrained_model)
    assert None is before
    assert change is not None
    assert ("challenger", new, None) == (
        change.role,
        change.model_version,
        change.previous_model_version,
    )
    scores = read_shadow_scores(settings.decision_log.url)
    assert {new} == {row.model_version for row in scores}
    assert 5 == len(scores)
    assert 1.0 == metric(built, "fraudops_model_info", role="challenger", version=new)
    assert [("system:service", f"challenger:{new}")] == [
        (actor, subject) for actor, subject, _ in model_changes(tmp_path)
    ]


def test_a_challenger_that_will_not_serve_leaves_the_shadow_as_it_was(
    tmp_path: Path, trained_lake: TrainedLake, registry_root: Path
) -> None:
    """The challenger alias names a model built on other features: nothing is shadowed,
    and the failure is counted under the challenger's role."""
    settings = following_settings(tmp_path, trained_lake.model_dir, registry_root, challenger=True)
    built = build_runtime(settings, clock=ManualClock(NOW))
    built.start()
    try:
        promote(registry_root, 4, "challenger")
        change = asyncio.run(follower_of(built, "challenger").follow_once())
        shadow = built.service.shadow
    finally:
        built.close()
    assert (None, None) == (change, shadow)
    assert 1.0 == metric(built, "fraudops_model_swaps_total", role="challenger", outcome="failed")
    assert [] == model_changes(tmp_path)
