"""The models page: champion, challenger, their comparison and history; a lead's levers."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from fraudops.api import Runtime, build_runtime
from fraudops.api.ui import ReviewUi, SessionCodec, review_ui_router
from fraudops.api.ui.models import (
    Compared,
    ComparisonCache,
    ComparisonKey,
    ModelsSource,
    compare_pair,
)
from fraudops.decide.ensemble_scorer import load_scorer
from fraudops.decide.log import DecisionRecord
from fraudops.learn.registry import lineage_from_model_dir, open_registry
from fraudops.review import AuditAction
from fraudops.settings import Settings
from fraudops.types import Action, Decision, Label, LabelSource, Transaction
from tests.conftest import TrainedLake
from tests.unit.api.conftest import service_settings
from tests.unit.learn.mlflow_store import fresh_mlflow_db
from tests.unit.ui.conftest import SECRET, T0, Desk, sign_in

MAX_AGE = timedelta(minutes=10)
PROMOTE_2 = {"champion": "1", "version": "2"}
"""What the page shows a promotion acts on: champion 1, challenger 2."""
ROLL_BACK_TO_1 = {"champion": "2", "version": "1"}
"""What the page shows a rollback acts on, after that promotion: champion 2, back to 1."""


@pytest.fixture
def registry(tmp_path: Path, trained_lake: TrainedLake) -> Path:
    """A registry with version 1 the champion and version 2 the challenger (set by ana)."""
    root = tmp_path / "registry"
    fresh_mlflow_db(root)
    models = open_registry(root)
    lineage = lineage_from_model_dir(trained_lake.model_dir, trained_by="ana")
    models.register(trained_lake.model_dir, lineage=lineage)
    models.register(trained_lake.model_dir, lineage=lineage)
    models.set_alias("champion", 1, actor="ana", reason="first model")
    models.set_alias("challenger", 2, actor="ana", reason="retrained on May")
    models.close()
    return root


def models_client(
    parts: Desk, tmp_path: Path, registry_root: Path, runtime: Runtime | None = None
) -> Iterator[TestClient]:
    """A client of the UI whose models page reads ``registry_root`` and the parts' log,
    served beside ``runtime``'s decision service when one is given."""

    async def keep(label: Label) -> str:
        return "Label recorded."

    def build(app: FastAPI) -> ReviewUi:
        return ReviewUi(
            desk=parts.desk,
            sessions=SessionCodec(SECRET, max_age_s=3600),
            apply_label=keep,
            models=ModelsSource(
                registry_root=registry_root,
                decision_log_url=f"sqlite:///{tmp_path / 'decisions.db'}",
                review_threshold=0.5,
                compare_days=1.0,
                comparison_max_age_s=MAX_AGE.total_seconds(),
            ),
        )

    app = FastAPI()
    app.state.runtime = runtime
    app.include_router(review_ui_router(build))
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        yield client


@pytest.fixture
def client(parts: Desk, tmp_path: Path, registry: Path) -> Iterator[TestClient]:
    """A client of the UI on the two-version registry."""
    yield from models_client(parts, tmp_path, registry)


def champion(registry: Path) -> int:
    """The champion's version."""
    models = open_registry(registry)
    try:
        return models.get("champion").version
    finally:
        models.close()


def write_labelled(parts: Desk, model_dir: Path, first: int, count: int) -> None:
    """Log ``count`` labelled decisions ``t<first>``… an hour or more before T0, one a
    minute, with random features; every fourth is fraud."""
    names = load_scorer(model_dir).feature_names
    rng = np.random.default_rng(first)
    records, labels = [], []
    for i in range(first, first + count):
        at = T0 - timedelta(hours=1, minutes=i)
        features = dict(zip(names, (float(v) for v in rng.random(len(names))), strict=True))
        records.append(
            DecisionRecord(
                Decision(f"t{i}", Action.APPROVE, 0.0, (), "v1", 1.0),
                Transaction(f"t{i}", at, f"c{i}", "m1", 10.0),
                features,
                at,
            )
        )
        labels.append(Label(f"t{i}", i % 4 == 0, LabelSource.ANALYST, at))
    parts.decisions.write(records, labels)


def audit(parts: Desk) -> list[tuple[str, AuditAction, str, int]]:
    """The promotions and rollbacks in the audit trail: who, what, why, to which version."""
    return [
        (e.actor, e.action, e.reason, e.details["version"])
        for e in parts.desk.audit.entries()
        if e.action in (AuditAction.PROMOTION, AuditAction.ROLLBACK)
    ]


def test_without_a_registry_the_page_says_so(parts: Desk, tmp_path: Path) -> None:
    """No registry yet: the page answers 200 and says there is none, creating nothing."""
    for client in models_client(parts, tmp_path, tmp_path / "no-registry"):
        sign_in(client, "lea")
        response = client.get("/ui/models")
    assert (200, True, False) == (
        response.status_code,
        "There is no model registry" in response.text,
        (tmp_path / "no-registry").exists(),
    )


def test_a_lead_sees_champion_challenger_and_history(client: TestClient) -> None:
    """The page names both versions, who set them and why, and offers promotion only
    (the champion never moved, so there is nothing to roll back to)."""
    sign_in(client, "lea")
    html = client.get("/ui/models").text
    shown = {
        text: text in html
        for text in (
            "Promote version 2 to champion",
            "first model",
            "retrained on May",
            "<td>ana</td>",
            "Trained by</dt><dd>ana",
            "No comparison",
        )
    }
    assert (all(shown.values()), "Roll back to" in html) == (True, False), shown


def test_a_lead_sees_the_comparison_on_labelled_traffic(
    parts: Desk, client: TestClient, trained_lake: TrainedLake
) -> None:
    """With 40 labelled decisions in the log, the page compares both versions on them and
    says when it did."""
    write_labelled(parts, trained_lake.model_dir, 0, 40)
    sign_in(client, "lea")
    html = client.get("/ui/models").text
    assert (True, True, True) == (
        "40 labelled transactions (10 fraud)" in html,
        "100.0 %" in html,
        "Computed 09:00 UTC, 0 s ago." in html,
    ), html


def test_a_second_open_reuses_the_comparison(
    parts: Desk, client: TestClient, trained_lake: TrainedLake
) -> None:
    """Opened again within the max age, the page shows the comparison it made, not one on
    the traffic logged since, and says how old it is."""
    write_labelled(parts, trained_lake.model_dir, 0, 40)
    sign_in(client, "lea")
    client.get("/ui/models")
    write_labelled(parts, trained_lake.model_dir, 40, 40)
    parts.clock.advance(MAX_AGE - timedelta(minutes=7))
    html = client.get("/ui/models").text
    assert (True, True) == (
        "40 labelled transactions (10 fraud)" in html,
        "Computed 09:00 UTC, 3 min ago." in html,
    ), html


def test_a_comparison_older_than_the_max_age_is_made_again(
    parts: Desk, client: TestClient, trained_lake: TrainedLake
) -> None:
    """Once the kept comparison is as old as the max age, the next open compares on the
    traffic logged since."""
    write_labelled(parts, trained_lake.model_dir, 0, 40)
    sign_in(client, "lea")
    client.get("/ui/models")
    write_labelled(parts, trained_lake.model_dir, 40, 40)
    parts.clock.advance(MAX_AGE)
    html = client.get("/ui/models").text
    assert (True, True) == (
        "80 labelled transactions (20 fraud)" in html,
        "Computed 09:10 UTC, 0 s ago." in html,
    ), html


def test_why_there_is_no_comparison_is_kept_too(
    parts: Desk, client: TestClient, trained_lake: TrainedLake
) -> None:
    """A comparison that failed (no labelled traffic) is not retried on the next open
    within the max age, even once there is traffic; after the max age it is."""
    sign_in(client, "lea")
    client.get("/ui/models")
    write_labelled(parts, trained_lake.model_dir, 0, 40)
    parts.clock.advance(MAX_AGE - timedelta(seconds=1))
    kept = client.get("/ui/models").text
    parts.clock.advance(timedelta(seconds=1))
    made_again = client.get("/ui/models").text
    assert (True, False, True) == (
        "No comparison: comparing models needs labelled fraud" in kept,
        "labelled transactions" in kept,
        "40 labelled transactions (10 fraud)" in made_again,
    ), (kept, made_again)


def test_recompute_now_compares_on_the_latest_traffic(
    parts: Desk, client: TestClient, trained_lake: TrainedLake
) -> None:
    """ "Recompute now" drops the kept comparison and sends the lead back to the page,
    which compares on the traffic logged since."""
    write_labelled(parts, trained_lake.model_dir, 0, 40)
    token = sign_in(client, "lea")
    client.get("/ui/models")
    write_labelled(parts, trained_lake.model_dir, 40, 40)
    response = client.post("/ui/models/compare", data={"csrf": token})
    html = client.get("/ui/models").text
    assert (303, "/ui/models", True) == (
        response.status_code,
        response.headers["location"],
        "80 labelled transactions (20 fraud)" in html,
    ), html


def test_a_promotion_is_compared_afresh(
    parts: Desk, client: TestClient, trained_lake: TrainedLake, registry: Path
) -> None:
    """After a promotion and a new challenger, the page compares the new pair at once
    instead of showing the old pair's kept comparison."""
    write_labelled(parts, trained_lake.model_dir, 0, 40)
    token = sign_in(client, "lea")
    client.get("/ui/models")
    write_labelled(parts, trained_lake.model_dir, 40, 40)
    client.post("/ui/models/promote", data={**PROMOTE_2, "csrf": token, "reason": "better AP"})
    promoted = client.get("/ui/models").text
    models = open_registry(registry)
    models.set_alias("challenger", 1, actor="lea", reason="keep the old one in shadow")
    models.close()
    swapped = client.get("/ui/models").text
    assert (True, True) == (
        "Champion and challenger are the same version." in promoted,
        "80 labelled transactions (20 fraud)" in swapped,
    ), (promoted, swapped)


def test_a_recompute_without_the_csrf_token_is_refused(
    parts: Desk, client: TestClient, trained_lake: TrainedLake
) -> None:
    """A lead's "Recompute now" without its CSRF token is refused (403); the kept
    comparison stays."""
    write_labelled(parts, trained_lake.model_dir, 0, 40)
    sign_in(client, "lea")
    client.get("/ui/models")
    write_labelled(parts, trained_lake.model_dir, 40, 40)
    response = client.post("/ui/models/compare", data={})
    html = client.get("/ui/models").text
    assert (403, True, True) == (
        response.status_code,
        "security token" in response.text,
        "40 labelled transactions (10 fraud)" in html,
    )


def test_an_analysts_recompute_is_refused(
    parts: Desk, client: TestClient, trained_lake: TrainedLake
) -> None:
    """An analyst with a valid CSRF token gets 403; the kept comparison stays."""
    write_labelled(parts, trained_lake.model_dir, 0, 40)
    lead = sign_in(client, "lea")
    client.get("/ui/models")
    write_labelled(parts, trained_lake.model_dir, 40, 40)
    client.post("/ui/sign-out", data={"csrf": lead})
    analyst = sign_in(client, "ann")
    response = client.post("/ui/models/compare", data={"csrf": analyst})
    client.post("/ui/sign-out", data={"csrf": analyst})
    sign_in(client, "lea")
    html = client.get("/ui/models").text
    assert (403, True) == (
        response.status_code,
        "40 labelled transactions (10 fraud)" in html,
    )


def test_concurrent_opens_compare_once(
    parts: Desk, tmp_path: Path, trained_lake: TrainedLake, registry: Path
) -> None:
    """Two callers asking at once for the same pair's comparison: one loads the models and
    reads the log, the other waits for it and takes the same result."""
    write_labelled(parts, trained_lake.model_dir, 0, 40)
    key = ComparisonKey(1, 2, f"sqlite:///{tmp_path / 'decisions.db'}", 0.5, 1.0)
    cache, calls = ComparisonCache(), []
    both_asking = threading.Barrier(2)
    models = open_registry(registry)

    def compute() -> Compared:
        calls.append(key)
        return compare_pair(models, key, until=T0)

    def open_page(_: int) -> Compared:
        both_asking.wait()
        return cache.get(key, now=T0, max_age=MAX_AGE, compute=compute)

    try:
        with ThreadPoolExecutor(2) as pool:
            first, second = pool.map(open_page, range(2))
    finally:
        models.close()
    assert (1, True, 40) == (
        len(calls),
        first is second,
        None if first.comparison is None else first.comparison.transactions,
    )


def test_a_leads_promotion_moves_the_champion_and_is_audited(
    parts: Desk, client: TestClient, registry: Path
) -> None:
    """Promoting moves the champion to version 2, names lea in the alias history and
    writes a promotion entry with her reason to the audit trail."""
    token = sign_in(client, "lea")
    response = client.post(
        "/ui/models/promote", data={**PROMOTE_2, "csrf": token, "reason": "better AP"}
    )
    latest = open_registry(registry).history("champion")[-1]
    assert (303, 2) == (response.status_code, champion(registry))
    assert ("lea", 1, 2, "set") == (
        latest.actor,
        latest.previous_version,
        latest.version,
        latest.action,
    )
    assert [("lea", AuditAction.PROMOTION, "better AP", 2)] == audit(parts)
    assert "The champion is version 2 now (was version 1)" in client.get("/ui/models").text


def test_a_leads_rollback_restores_the_previous_champion(
    parts: Desk, client: TestClient, registry: Path
) -> None:
    """After a promotion the page offers a rollback; it puts version 1 back, audited."""
    token = sign_in(client, "lea")
    client.post("/ui/models/promote", data={**PROMOTE_2, "csrf": token, "reason": "better AP"})
    offered = "Roll back to version 1" in client.get("/ui/models").text
    response = client.post(
        "/ui/models/rollback", data={**ROLL_BACK_TO_1, "csrf": token, "reason": "alerts"}
    )
    assert (True, 303, 1) == (offered, response.status_code, champion(registry))
    assert [
        ("lea", AuditAction.PROMOTION, "better AP", 2),
        ("lea", AuditAction.ROLLBACK, "alerts", 1),
    ] == audit(parts)


def test_an_analysts_promotion_is_refused(parts: Desk, client: TestClient, registry: Path) -> None:
    """An analyst with a valid CSRF token gets 403; nothing moves, nothing is audited."""
    token = sign_in(client, "ann")
    response = client.post(
        "/ui/models/promote", data={**PROMOTE_2, "csrf": token, "reason": "looks good"}
    )
    assert (403, 1, []) == (response.status_code, champion(registry), audit(parts))


def test_a_promotion_without_the_csrf_token_is_refused(
    parts: Desk, client: TestClient, registry: Path
) -> None:
    """A lead's form without its CSRF token is refused (403); nothing moves."""
    sign_in(client, "lea")
    response = client.post("/ui/models/promote", data={**PROMOTE_2, "reason": "better AP"})
    assert (403, True, 1, []) == (
        response.status_code,
        "security token" in response.text,
        champion(registry),
        audit(parts),
    )


def test_a_promotion_without_a_reason_is_refused(
    parts: Desk, client: TestClient, registry: Path
) -> None:
    """A blank reason sends the lead back with a message; nothing moves."""
    token = sign_in(client, "lea")
    response = client.post("/ui/models/promote", data={**PROMOTE_2, "csrf": token, "reason": "  "})
    page = client.get("/ui/models").text
    assert (303, True, 1, []) == (
        response.status_code,
        "A promotion needs a reason." in page,
        champion(registry),
        audit(parts),
    )


@contextmanager
def started(settings: Settings) -> Iterator[Runtime]:
    """A started decision service for ``settings``, closed after."""
    runtime = build_runtime(settings)
    runtime.start()
    try:
        yield runtime
    finally:
        runtime.close()


@pytest.fixture
def two_models(tmp_path: Path, trained_lake: TrainedLake, retrained_model: Path) -> Path:
    """A registry: 1 = the tiny model (champion), 2 = the retrained one."""
    root = tmp_path / "two-models"
    fresh_mlflow_db(root)
    models = open_registry(root)
    for model_dir in (trained_lake.model_dir, retrained_model):
        models.register(model_dir, lineage=lineage_from_model_dir(model_dir, trained_by="ana"))
    models.set_alias("champion", 1, actor="ana", reason="first model")
    models.close()
    return root


def serving_cell(html: str) -> str:
    """The text of the champion card's "This service" cell, without its markup."""
    start = html.index('class="serving-champion">') + len('class="serving-champion">')
    cell = re.sub(r"<[^>]+>", "", html[start : html.index("</dd>", start)])
    return " ".join(cell.split())


def test_a_lead_sees_that_this_service_serves_the_champion(
    parts: Desk, tmp_path: Path, trained_lake: TrainedLake, two_models: Path
) -> None:
    """Served beside a service whose champion is the registry's, the page says so."""
    with started(service_settings(tmp_path / "svc", trained_lake.model_dir)) as runtime:
        for client in models_client(parts, tmp_path, two_models, runtime):
            sign_in(client, "lea")
            assert "serves it" == serving_cell(client.get("/ui/models").text)


def test_a_promotion_not_yet_served_is_shown_with_what_to_do(
    parts: Desk, tmp_path: Path, trained_lake: TrainedLake, two_models: Path
) -> None:
    """After a promotion the page says which model the service still has: one that
    follows the alias takes it within seconds; one on a fixed directory needs a restart
    with --model-alias."""
    fixed = service_settings(tmp_path / "fixed", trained_lake.model_dir)
    following = service_settings(
        tmp_path / "following",
        trained_lake.model_dir,
        model_alias="champion",
        registry_dir=two_models,
    ).model_copy(update={"data_dir": tmp_path / "following"})
    served = load_scorer(trained_lake.model_dir).version
    cells = []
    with started(fixed) as on_fixed, started(following) as on_following:
        models = open_registry(two_models)
        models.set_alias("champion", 2, actor="lea", reason="better last week")
        models.close()
        for runtime in (on_fixed, on_following):
            for client in models_client(parts, tmp_path, two_models, runtime):
                sign_in(client, "lea")
                cells.append(serving_cell(client.get("/ui/models").text))
    fixed_cell, following_cell = cells
    assert fixed_cell.startswith(f"has {served} from a fixed model directory"), fixed_cell
    assert "--model-alias champion" in fixed_cell
    assert following_cell.startswith(f"has {served}: it takes the registry's champion"), cells


def test_training_counts_show_as_whole_numbers(
    parts: Desk, tmp_path: Path, trained_lake: TrainedLake
) -> None:
    """A count among the training metrics reads as people write it (``9,458``), not as
    ``9458.0000``; a fraction keeps its digits."""
    root = tmp_path / "counted"
    fresh_mlflow_db(root)
    models = open_registry(root)
    found = lineage_from_model_dir(trained_lake.model_dir, trained_by="ana")
    metrics = {"false_positives_at_recall_80": 9458.0, "average_precision": 0.7217}
    models.register(trained_lake.model_dir, lineage=replace(found, metrics=metrics))
    models.set_alias("champion", 1, actor="ana", reason="first model")
    models.close()
    for client in models_client(parts, tmp_path, root):
        sign_in(client, "lea")
        html = client.get("/ui/models").text
    assert (True, False, True) == ("9,458" in html, "9458.0000" in html, "0.7217" in html)
