"""Input the API refuses, and how: the field named, nothing echoed, no state touched.

Also what a long batch must not do to the requests around it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from fraudops.api import Runtime
from fraudops.types import Transaction
from tests.unit.api.conftest import HEADERS, body_of

Service = tuple[TestClient, Runtime]


def _fields(response: Any) -> set[str]:
    return {problem["field"] for problem in response.json()["errors"]}


def test_back_to_back_batches_are_decided_by_the_model_not_shed(
    service: Service, transactions: list[Transaction]
) -> None:
    """A batch lets the event loop go between items, so the loop-lag gauge does not read
    a long batch as overload and shed the next one."""
    client, runtime = service
    items = [body_of(tx) for tx in transactions[:600]]
    sources: list[str] = []
    for first in range(0, len(items), 200):
        response = client.post(
            "/v1/transactions:batch", json=items[first : first + 200], headers=HEADERS
        )
        sources += [result["decision"]["source"] for result in response.json()["results"]]
    assert len(items) == len(sources)
    assert {"model"} == set(sources)
    assert runtime.service.loop_lag.lag_s < runtime.service.loop_lag.limit_s


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": True}, "amount"),
        ({"terminal_x": False, "terminal_y": 1.0}, "terminal_x"),
        ({"terminal_x": 1e308, "terminal_y": 1.0}, "terminal_x"),
        ({"timestamp": 1530439200}, "timestamp"),
        ({"timestamp": "1900-07-01T10:00:00+00:00"}, "timestamp"),
        ({"timestamp": "9999-12-31T23:59:59+00:00"}, "timestamp"),
    ],
)
def test_values_of_the_right_shape_but_unusable_are_refused(
    service: Service, transactions: list[Transaction], change: dict[str, Any], field: str
) -> None:
    """true for an amount, a number for a time, a coordinate beyond any place, a time before
    1970 or far ahead of the clock: 422 naming the field; nothing decided or stored."""
    client, runtime = service
    tx = transactions[0]
    response = client.post("/v1/transactions", json=body_of(tx) | change, headers=HEADERS)
    assert (422, {field}) == (response.status_code, _fields(response))
    assert 0 == len(runtime.service.recent)
    assert runtime.state.get_card(tx.customer_id) is None


def test_a_time_ahead_of_the_clock_is_refused_and_leaves_the_cards_windows_alone(
    service: Service, transactions: list[Transaction]
) -> None:
    """A transaction from the future would age its card's windows (and evict its history):
    refused in a batch too, while the card's other payments are decided as before."""
    client, runtime = service
    card = transactions[0].customer_id
    own = [tx for tx in transactions if tx.customer_id == card][:3]
    ahead = datetime.now(UTC) + timedelta(days=1)
    future = body_of(own[0]) | {"transaction_id": "from-the-future", "timestamp": ahead.isoformat()}
    items = [body_of(own[0]), future, *map(body_of, own[1:])]
    body = client.post("/v1/transactions:batch", json=items, headers=HEADERS).json()
    assert ["decided", "rejected", "decided", "decided"] == [r["status"] for r in body["results"]]
    [problem] = body["results"][1]["errors"]
    assert "timestamp" == problem["field"]
    assert "ahead of the service's clock" in problem["message"]
    record = runtime.state.get_card(card)
    assert record is not None
    assert [tx.transaction_id for tx in own] == record.transaction_ids


def test_a_card_number_as_the_card_id_is_refused_and_not_echoed(
    service: Service, transactions: list[Transaction]
) -> None:
    """A PAN where the pseudonymous card id belongs never reaches the log or the answer."""
    client, runtime = service
    pan = "4111 1111 1111 1111".replace(" ", "")
    for customer_id in (pan, f"card-{pan}"):
        body = body_of(transactions[0]) | {"customer_id": customer_id}
        response = client.post("/v1/transactions", json=body, headers=HEADERS)
        assert (422, {"customer_id"}) == (response.status_code, _fields(response))
        assert pan not in response.text
    assert 0 == len(runtime.service.recent)


def test_a_body_over_the_size_limit_is_refused_before_it_is_read(
    tmp_path_factory: pytest.TempPathFactory, transactions: list[Transaction], service: Service
) -> None:
    """413 by the declared length, and by counting a body sent without one."""
    client, runtime = service
    limit = client.app.state.max_body_bytes  # type: ignore[attr-defined]
    line = orjson.dumps(body_of(transactions[0])) + b"\n"
    body = line * (limit // len(line) + 1)

    def chunks() -> Iterator[bytes]:
        yield from (body[i : i + 65536] for i in range(0, len(body), 65536))

    ndjson = {**HEADERS, "content-type": "application/x-ndjson"}
    declared = client.post("/v1/transactions:batch", content=body, headers=ndjson)
    streamed = client.post("/v1/transactions:batch", content=chunks(), headers=ndjson)
    assert [413, 413] == [declared.status_code, streamed.status_code]
    assert "service.max_body_bytes" in declared.json()["detail"]
    assert 0 == len(runtime.service.recent)


def test_each_endpoint_says_415_to_a_body_that_is_not_json(
    service: Service, transactions: list[Transaction]
) -> None:
    """A form or XML body is refused for its type; the type's case and parameters do not
    matter."""
    client, _ = service
    body = orjson.dumps(body_of(transactions[0]))
    label = orjson.dumps(
        {
            "transaction_id": transactions[0].transaction_id,
            "is_fraud": True,
            "source": "analyst",
            "known_at": "2018-06-02T10:00:00+00:00",
        }
    )
    refused = [
        client.post("/v1/transactions", content=body, headers={**HEADERS, "content-type": kind})
        for kind in ("application/xml", "application/x-www-form-urlencoded")
    ]
    refused.append(
        client.post("/v1/labels", content=label, headers={**HEADERS, "content-type": "text/csv"})
    )
    upper = client.post(
        "/v1/transactions:batch",
        content=b"[" + body + b"]",
        headers={**HEADERS, "content-type": "Application/JSON; charset=utf-8"},
    )
    assert [415, 415, 415] == [response.status_code for response in refused]
    assert (200, 1) == (upper.status_code, upper.json()["accepted"])


def test_a_conflicting_duplicate_names_the_fields_that_differ(
    service: Service, transactions: list[Transaction]
) -> None:
    """The 409 lists each differing field in ``errors``, as a rejected batch item does."""
    client, _ = service
    body = body_of(transactions[0])
    client.post("/v1/transactions", json=body, headers=HEADERS)
    response = client.post(
        "/v1/transactions", json=body | {"amount": body["amount"] + 1}, headers=HEADERS
    )
    assert (409, {"amount"}) == (response.status_code, _fields(response))


def test_a_label_says_why_the_online_state_did_not_take_it(
    service: Service, transactions: list[Transaction]
) -> None:
    """Known before its transaction, a repeat, an id never decided: each its own reason;
    a label known far ahead of the clock is refused, and a bad body is a 422 that names
    the field."""
    client, runtime = service
    tx = transactions[0]
    client.post("/v1/transactions", json=body_of(tx), headers=HEADERS)

    def label(known_at: datetime, transaction_id: str = tx.transaction_id) -> Any:
        body = {
            "transaction_id": transaction_id,
            "is_fraud": True,
            "source": "chargeback",
            "known_at": known_at.isoformat(),
        }
        return client.post("/v1/labels", json=body, headers=HEADERS)

    answers = [
        label(tx.timestamp - timedelta(hours=1)),
        label(tx.timestamp + timedelta(days=1)),
        label(tx.timestamp + timedelta(days=1)),
        label(tx.timestamp + timedelta(days=1), "never-decided"),
    ]
    outcomes = [(a.json()["applied"], a.json()["reason"]) for a in answers]
    assert [
        (False, "known_before_transaction"),
        (True, None),
        (False, "unchanged"),
        (False, "unknown_transaction"),
    ] == outcomes
    ahead = label(datetime.now(UTC) + timedelta(days=2))
    bad = client.post("/v1/labels", json={"transaction_id": "t", "is_fraud": "?"}, headers=HEADERS)
    assert (422, {"known_at"}) == (ahead.status_code, _fields(ahead))
    assert (422, {"is_fraud", "source", "known_at"}) == (bad.status_code, _fields(bad))
    runtime.log.flush()
    store: Any = runtime.store
    # Stored for training: the repeat once, the refused label not at all.
    assert (2, 1) == (len(store.labels(tx.transaction_id)), len(store.labels("never-decided")))


def test_the_openapi_document_gives_each_endpoints_media_types(service: Service) -> None:
    """/metrics is text, labels are a JSON body, and the refusals are documented."""
    client, _ = service
    paths = client.get("/openapi.json").json()["paths"]
    metrics = paths["/metrics"]["get"]["responses"]["200"]["content"]
    labels = paths["/v1/labels"]["post"]
    assert ["text/plain"] == list(metrics)
    assert ["application/json"] == list(labels["requestBody"]["content"])
    assert {"413", "415", "422"} <= set(labels["responses"])
