"""The decision API: one transaction, batches, lookups, labels, health; keys and bad input."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from fraudops.api import Runtime
from fraudops.learn.artifact import load_model_dir
from fraudops.types import Transaction
from tests.conftest import TrainedLake
from tests.unit.api.conftest import HEADERS, body_of, running_service, service_settings

Service = tuple[TestClient, Runtime]


def test_a_transaction_gets_a_model_decision(
    service: Service, transactions: list[Transaction], trained_lake: TrainedLake
) -> None:
    """A well-formed transaction is decided by the champion, with its version and timing."""
    client, _ = service
    response = client.post("/v1/transactions", json=body_of(transactions[0]), headers=HEADERS)
    body = response.json()
    expected_version = load_model_dir(trained_lake.model_dir).manifest.model_version
    assert 200 == response.status_code
    assert (transactions[0].transaction_id, "model", expected_version, False) == (
        body["transaction_id"],
        body["source"],
        body["model_version"],
        body["degraded"],
    )
    assert body["action"] in {"approve", "review", "decline"}
    assert 0.0 <= body["score"] <= 1.0
    assert body["latency_ms"] > 0.0


def test_flagged_decisions_carry_the_models_reasons(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """With every decision flagged (review threshold 0), each carries per-feature reasons."""
    settings = service_settings(tmp_path, trained_lake.model_dir)
    settings = settings.model_copy(
        update={"policy": settings.policy.model_copy(update={"review_threshold": 0.0})}
    )
    with running_service(settings) as (client, _):
        bodies = [
            client.post("/v1/transactions", json=body_of(tx), headers=HEADERS).json()
            for tx in transactions[:20]
        ]
    assert all(b["action"] in {"review", "decline"} for b in bodies)
    assert any(b["reasons"] for b in bodies)
    names = {r["code"] for b in bodies for r in b["reasons"]}
    assert names <= set(load_model_dir(trained_lake.model_dir).manifest.feature_names)
    assert all(r["contribution"] > 0 for b in bodies for r in b["reasons"])


def test_missing_or_wrong_key_gets_401_and_nothing_else(
    service: Service, transactions: list[Transaction]
) -> None:
    """No key, a wrong key, and a wrong key with a bad body all get a bare 401."""
    client, runtime = service
    body = body_of(transactions[0])
    answers = [
        client.post("/v1/transactions", json=body),
        client.post("/v1/transactions", json=body, headers={"X-API-Key": "guess"}),
        client.post("/v1/transactions", json={"amount": -1}, headers={"X-API-Key": "guess"}),
        client.get(f"/v1/decisions/{transactions[0].transaction_id}"),
    ]
    assert [401] * 4 == [a.status_code for a in answers]
    assert all({"detail": "missing or invalid API key", "errors": []} == a.json() for a in answers)
    assert 0 == len(runtime.service.recent)


def test_a_retry_returns_the_first_decision_and_changes_no_state(
    service: Service, transactions: list[Transaction]
) -> None:
    """The same transaction id twice: one decision, one entry in the card's history."""
    client, runtime = service
    tx = transactions[0]
    first = client.post("/v1/transactions", json=body_of(tx), headers=HEADERS).json()
    retry = client.post("/v1/transactions", json=body_of(tx), headers=HEADERS).json()
    card = runtime.state.get_card(tx.customer_id)
    assert first == retry
    assert card is not None
    assert 1 == card.transaction_ids.count(tx.transaction_id)


def test_the_same_id_with_other_content_is_refused_and_the_first_decision_stands(
    service: Service, transactions: list[Transaction]
) -> None:
    """A different payment under a decided id gets 409 naming what differs, alone or in a
    batch (rejected there, counts reconciling); the card's history keeps the first."""
    client, runtime = service
    tx, other = transactions[0], transactions[1]
    first = client.post("/v1/transactions", json=body_of(tx), headers=HEADERS).json()
    changed = body_of(tx) | {"amount": tx.amount * 10, "terminal_id": other.terminal_id}
    refused = client.post("/v1/transactions", json=changed, headers=HEADERS)
    batch = client.post(
        "/v1/transactions:batch", json=[body_of(tx), changed, body_of(other)], headers=HEADERS
    ).json()
    looked_up = client.get(f"/v1/decisions/{tx.transaction_id}", headers=HEADERS).json()
    card = runtime.state.get_card(tx.customer_id)
    dead = runtime.metrics.registry.get_sample_value(
        "fraudops_dead_letter_records_total",
        {"stage": "api", "reason": "conflicting_duplicate"},
    )
    assert 409 == refused.status_code
    assert "terminal_id, amount" in refused.json()["detail"]
    assert (3, 1, 1, 1) == (
        batch["received"],
        batch["accepted"],
        batch["duplicates"],
        batch["rejected"],
    )
    assert ["terminal_id", "amount"] == [e["field"] for e in batch["results"][1]["errors"]]
    assert first == looked_up
    assert card is not None
    assert [tx.amount] == [
        amount
        for tx_id, amount in zip(card.transaction_ids, card.amounts, strict=True)
        if tx_id == tx.transaction_id
    ]
    assert 2.0 == dead


def test_another_payment_under_an_id_only_the_state_remembers_is_refused(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """With no decision left in memory, the id's reference in the state still tells another
    payment (here an hour later) from a replay: 409, and the state keeps the first."""
    settings = service_settings(tmp_path, trained_lake.model_dir, recent_decisions=0)
    tx = transactions[0]
    later = body_of(tx) | {"timestamp": (tx.timestamp + timedelta(hours=1)).isoformat()}
    with running_service(settings) as (client, runtime):
        first = client.post("/v1/transactions", json=body_of(tx), headers=HEADERS)
        refused = client.post("/v1/transactions", json=later, headers=HEADERS)
        card = runtime.state.get_card(tx.customer_id)
    assert (200, 409) == (first.status_code, refused.status_code)
    assert "another timestamp" in refused.json()["detail"]
    assert card is not None
    assert 1 == card.transaction_ids.count(tx.transaction_id)


def test_a_replay_older_than_the_recent_decisions_is_a_duplicate_counted_once(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """With no decision left in memory, the state still knows the transaction: a replay is
    reported a duplicate, scored as the first time, and its card's history holds it once."""
    settings = service_settings(tmp_path, trained_lake.model_dir, recent_decisions=0)
    items = [body_of(tx) for tx in transactions[:5]]
    with running_service(settings) as (client, runtime):
        first = client.post("/v1/transactions:batch", json=items, headers=HEADERS).json()
        again = client.post("/v1/transactions:batch", json=items, headers=HEADERS).json()
        card = runtime.state.get_card(transactions[0].customer_id)
        repeated = runtime.metrics.registry.get_sample_value(
            "fraudops_repeated_transactions_total", {"answered_from": "state"}
        )
    assert (5, 0) == (first["accepted"], first["duplicates"])
    assert (0, 5) == (again["accepted"], again["duplicates"])
    assert [r["decision"]["score"] for r in first["results"]] == [
        r["decision"]["score"] for r in again["results"]
    ]
    assert card is not None
    assert 1 == card.transaction_ids.count(transactions[0].transaction_id)
    assert 5.0 == repeated


def test_bad_fields_get_422_naming_each_field(service: Service) -> None:
    """Each bad field is named; the values themselves are never echoed back."""
    client, _ = service
    pan = "4111111111111111"
    response = client.post(
        "/v1/transactions",
        json={
            "transaction_id": "t-1",
            "timestamp": "2018-07-01T10:00:00",
            "terminal_id": "m-1",
            "amount": -5,
            "currency": "XXX",
            "card_number": pan,
        },
        headers=HEADERS,
    )
    fields = {problem["field"] for problem in response.json()["errors"]}
    assert 422 == response.status_code
    assert {"timestamp", "customer_id", "amount", "currency", "card_number"} == fields
    assert pan not in response.text


def test_a_body_that_is_not_json_gets_422(service: Service) -> None:
    """A truncated body is a 422 that says where JSON broke, not a 500."""
    client, _ = service
    response = client.post(
        "/v1/transactions",
        content=b'{"transaction_id": "t',
        headers={**HEADERS, "content-type": "application/json"},
    )
    assert 422 == response.status_code
    assert response.json()["errors"]


def test_a_batch_decides_good_items_and_rejects_bad_ones(
    service: Service, transactions: list[Transaction]
) -> None:
    """A bad item fails alone; a repeated id is a duplicate; the counts reconcile."""
    client, _ = service
    items = [body_of(tx) for tx in transactions[:5]]
    items.insert(2, {**items[0], "transaction_id": "bad-1", "amount": "lots"})
    items.append(items[1])
    response = client.post("/v1/transactions:batch", json=items, headers=HEADERS)
    body = response.json()
    statuses = [result["status"] for result in body["results"]]
    assert 200 == response.status_code
    assert (7, 5, 1, 1) == (
        body["received"],
        body["accepted"],
        body["duplicates"],
        body["rejected"],
    )
    assert ["decided"] * 2 + ["rejected"] + ["decided"] * 3 + ["duplicate"] == statuses
    assert [
        {
            "field": "amount",
            "message": "Input should be a valid number, unable to parse string as a number",
        }
    ] == body["results"][2]["errors"]
    assert body["results"][6]["decision"] == body["results"][1]["decision"]


def test_an_ndjson_batch_names_a_malformed_line(
    service: Service, transactions: list[Transaction]
) -> None:
    """NDJSON (as flow tools send) works; a line that is not JSON is rejected by itself."""
    client, _ = service
    lines = [orjson.dumps(body_of(tx)) for tx in transactions[:3]]
    lines.insert(1, b'{"transaction_id": ')
    response = client.post(
        "/v1/transactions:batch",
        content=b"\n".join(lines) + b"\n",
        headers={**HEADERS, "content-type": "application/x-ndjson"},
    )
    body = response.json()
    assert (4, 3, 0, 1) == (
        body["received"],
        body["accepted"],
        body["duplicates"],
        body["rejected"],
    )
    assert [{"field": "(line)", "message": "not valid JSON"}] == body["results"][1]["errors"]


def test_a_batch_over_the_limit_is_refused_whole(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """More items than service.batch_max_items gets 413 and decides nothing."""
    settings = service_settings(tmp_path, trained_lake.model_dir, batch_max_items=3)
    with running_service(settings) as (client, runtime):
        items = [body_of(tx) for tx in transactions[:4]]
        response = client.post("/v1/transactions:batch", json=items, headers=HEADERS)
        assert 413 == response.status_code
        assert 0 == len(runtime.service.recent)


def test_a_past_decision_can_be_looked_up(
    service: Service, transactions: list[Transaction]
) -> None:
    """GET returns the decision made; an unknown id is a 404 naming it."""
    client, _ = service
    made = client.post("/v1/transactions", json=body_of(transactions[0]), headers=HEADERS).json()
    found = client.get(f"/v1/decisions/{transactions[0].transaction_id}", headers=HEADERS)
    missing = client.get("/v1/decisions/never-seen", headers=HEADERS)
    assert made == found.json()
    assert (404, "no decision for transaction 'never-seen'") == (
        missing.status_code,
        missing.json()["detail"],
    )


def test_a_label_raises_terminal_risk_once_known(
    service: Service, transactions: list[Transaction]
) -> None:
    """A chargeback for a terminal's transaction shows in the terminal's labelled state."""
    client, runtime = service
    tx = transactions[0]
    client.post("/v1/transactions", json=body_of(tx), headers=HEADERS)
    response = client.post(
        "/v1/labels",
        json={
            "transaction_id": tx.transaction_id,
            "is_fraud": True,
            "source": "chargeback",
            "known_at": tx.timestamp.replace(hour=23).isoformat(),
        },
        headers=HEADERS,
    )
    terminal = runtime.state.get_terminal(tx.terminal_id)
    assert (202, True, True) == (
        response.status_code,
        response.json()["stored"],
        response.json()["applied"],
    )
    assert terminal is not None
    index = terminal.transaction_ids.index(tx.transaction_id)
    assert terminal.is_fraud[index]


def test_a_fraud_verdict_lets_a_card_rule_decline_the_cards_next_payment(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """An analyst's fraud verdict marks the card at once: the documented opt-in rule
    ``card_confirmed_fraud`` declines its next payment beside the model, not another card's."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: card_confirmed_fraud\n"
        "    action: decline\n"
        "    applies: always\n"
        "    when: {feature: days_since_card_fraud_confirmed, below: 14}\n"
    )
    first = next(tx for tx in transactions if tx.amount < 100)
    later = first.timestamp + timedelta(hours=2)
    stolen = replace(first, transaction_id="same-card-later", timestamp=later)
    other = replace(stolen, transaction_id="other-card-later", customer_id="another-card")
    label = {
        "transaction_id": first.transaction_id,
        "is_fraud": True,
        "source": "analyst",
        "known_at": (first.timestamp + timedelta(hours=1)).isoformat(),
    }
    settings = service_settings(tmp_path, trained_lake.model_dir, rules_file=rules)
    with running_service(settings) as (client, _):
        before = client.post("/v1/transactions", json=body_of(first), headers=HEADERS).json()
        client.post("/v1/labels", json=label, headers=HEADERS)
        after = client.post("/v1/transactions", json=body_of(stolen), headers=HEADERS).json()
        elsewhere = client.post("/v1/transactions", json=body_of(other), headers=HEADERS).json()
    assert ([], "decline", "model", ["card_confirmed_fraud"], []) == (
        before["rule_hits"],
        after["action"],
        after["source"],
        after["rule_hits"],
        elsewhere["rule_hits"],
    )


def test_health_readiness_and_metrics(service: Service, transactions: list[Transaction]) -> None:
    """Alive, ready with every component named, and decisions counted in /metrics."""
    client, _ = service
    client.post("/v1/transactions", json=body_of(transactions[0]), headers=HEADERS)
    ready = client.get("/readyz")
    metrics = client.get("/metrics").text
    assert {"status": "alive"} == client.get("/healthz").json()
    assert (200, True) == (ready.status_code, ready.json()["ready"])
    assert {"model", "feature_store", "decision_log"} == set(ready.json()["components"])
    assert 'fraudops_decisions_total{action="' in metrics
    assert "fraudops_model_info{" in metrics


def test_every_decision_reaches_the_log_with_its_features(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """After shutdown the SQLite log holds each decision once, with the features served."""
    settings = service_settings(tmp_path, trained_lake.model_dir)
    with running_service(settings) as (client, _):
        for tx in transactions[:50]:
            client.post("/v1/transactions", json=body_of(tx), headers=HEADERS)
        client.post("/v1/transactions", json=body_of(transactions[0]), headers=HEADERS)
    engine = sa.create_engine(settings.decision_log.url)
    with engine.connect() as connection:
        count = connection.execute(sa.text("select count(*) from decisions")).scalar_one()
        features = connection.execute(
            sa.text("select features from decisions where transaction_id = :id"),
            {"id": transactions[0].transaction_id},
        ).scalar_one()
    engine.dispose()
    assert 50 == count
    assert 1.0 == orjson.loads(features)["card_tx_count_1d"]


def test_the_openapi_document_describes_the_transaction_body(service: Service) -> None:
    """/docs is served and the schema names the transaction fields."""
    client, _ = service
    schema = client.get("/openapi.json").json()
    body = schema["paths"]["/v1/transactions"]["post"]["requestBody"]
    required = body["content"]["application/json"]["schema"]["required"]
    assert 200 == client.get("/docs").status_code
    assert {"transaction_id", "timestamp", "customer_id", "terminal_id", "amount"} == set(required)


def test_only_post_decides_on_the_transaction_path(service: Service) -> None:
    """GET and PUT on /v1/transactions are refused with 405 and decide nothing."""
    client, runtime = service
    statuses = [
        client.get("/v1/transactions", headers=HEADERS).status_code,
        client.put("/v1/transactions", json={}, headers=HEADERS).status_code,
    ]
    assert ([405, 405], 0) == (statuses, len(runtime.service.recent))


def test_an_always_rule_escalates_the_models_decision(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """A known risky terminal declines even what the model would approve; the hit is named."""
    tx = transactions[0]
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: known_risky_terminal\n"
        "    action: decline\n"
        "    applies: always\n"
        f"    when: {{terminal_in: ['{tx.terminal_id}']}}\n"
    )
    settings = service_settings(tmp_path, trained_lake.model_dir, rules_file=rules)
    with running_service(settings) as (client, _):
        body = client.post("/v1/transactions", json=body_of(tx), headers=HEADERS).json()
    assert ("decline", "model", ["known_risky_terminal"]) == (
        body["action"],
        body["source"],
        body["rule_hits"],
    )
    assert body["score"] < 0.8


def test_a_label_for_an_unknown_transaction_is_stored_but_not_applied(service: Service) -> None:
    """The label is kept for training; the response says the online state could not use it."""
    client, runtime = service
    response = client.post(
        "/v1/labels",
        json={
            "transaction_id": "never-decided",
            "is_fraud": True,
            "source": "analyst",
            "known_at": "2018-06-02T10:00:00+00:00",
        },
        headers=HEADERS,
    )
    runtime.log.flush()
    assert 202 == response.status_code
    assert (True, False, "unknown_transaction") == (
        response.json()["stored"],
        response.json()["applied"],
        response.json()["reason"],
    )
    assert 1 == len(runtime.store.labels("never-decided"))  # type: ignore[attr-defined]


def test_keys_new_prints_a_key_and_the_hash_that_admits_it(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """`fraudops keys new --json` gives a key whose hash, once configured, lets it in."""
    from typer.testing import CliRunner

    from fraudops.cli import app
    from fraudops.settings import ApiSettings

    made = orjson.loads(CliRunner().invoke(app, ["keys", "new", "--json"]).stdout)
    settings = service_settings(tmp_path, trained_lake.model_dir).model_copy(
        update={"api": ApiSettings(key_hashes=(made["key_hash"],))}
    )
    with running_service(settings) as (client, _):
        admitted = client.post(
            "/v1/transactions", json=body_of(transactions[0]), headers={"X-API-Key": made["key"]}
        )
        refused = client.post("/v1/transactions", json=body_of(transactions[1]), headers=HEADERS)
    assert (200, 401) == (admitted.status_code, refused.status_code)
    assert made["key"] not in made["key_hash"]


def test_the_app_refuses_to_start_without_keys(tmp_path: Path, trained_lake: TrainedLake) -> None:
    """No API key configured and anonymous access not chosen: a ConfigError saying how to fix."""
    from fraudops.api import create_app
    from fraudops.errors import ConfigError
    from fraudops.settings import ApiSettings

    settings = service_settings(tmp_path, trained_lake.model_dir).model_copy(
        update={"api": ApiSettings()}
    )
    with pytest.raises(ConfigError, match="fraudops keys new"):
        create_app(settings)


def test_a_retry_after_a_restart_gets_the_first_decision(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """The service restarts between a decision and its retry: the retry gets the first answer."""
    settings = service_settings(tmp_path, trained_lake.model_dir)
    tx = transactions[0]
    with running_service(settings) as (client, _):
        first = client.post("/v1/transactions", json=body_of(tx), headers=HEADERS).json()
    with running_service(settings) as (client, runtime):
        retry = client.post("/v1/transactions", json=body_of(tx), headers=HEADERS).json()
        card = runtime.state.get_card(tx.customer_id)
    assert first == retry
    assert card is None


def test_fallback_rule_hits_are_recorded_beside_the_model_without_changing_it(
    tmp_path: Path, trained_lake: TrainedLake, transactions: list[Transaction]
) -> None:
    """A fallback-only rule that hits is listed with the model's decision but does not decide."""
    tx = transactions[0]
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - name: this_terminal\n"
        "    action: decline\n"
        f"    when: {{terminal_in: ['{tx.terminal_id}']}}\n"
    )
    settings = service_settings(tmp_path, trained_lake.model_dir, rules_file=rules)
    with running_service(settings) as (client, _):
        body = client.post("/v1/transactions", json=body_of(tx), headers=HEADERS).json()
    assert ("model", ["this_terminal"]) == (body["source"], body["rule_hits"])
    assert "decline" != body["action"] or body["score"] >= 0.8
