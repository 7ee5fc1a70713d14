"""The decision API: transactions in (one or a batch), decisions and labels.

A well-formed transaction always gets a decision, never a 5xx: the decision service answers
even when its own path breaks (see ``DecisionService.decide``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from fastapi import APIRouter, Request
from pydantic import TypeAdapter, ValidationError
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from fraudops.api.responses import JsonBytes, error_problems, field_problems, problem
from fraudops.api.schemas import (
    BatchOut,
    DecisionOut,
    LabelIn,
    LabelOut,
    Problem,
    TransactionIn,
)
from fraudops.errors import ConflictingDuplicateError, FieldError

if TYPE_CHECKING:
    from fraudops.api.wiring import Runtime
    from fraudops.decide.service import LabelOutcome

log = structlog.get_logger("fraudops.api")

router = APIRouter(prefix="/v1")
TRANSACTIONS = "/transactions"

_NDJSON = ("application/x-ndjson", "application/jsonl", "application/json-seq", "text/plain")
_TRANSACTION = TypeAdapter(TransactionIn)
_LABEL = TypeAdapter(LabelIn)
_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "Missing or invalid API key."},
    413: {"model": Problem, "description": "The body is larger than service.max_body_bytes."},
    415: {"model": Problem, "description": "The body is not JSON."},
    422: {"model": Problem, "description": "The request names each bad field."},
}


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _transaction_body(schema: dict[str, Any], *, batch: bool) -> dict[str, Any]:
    if not batch:
        return {"content": {"application/json": {"schema": schema}}, "required": True}
    array = {"type": "array", "items": schema}
    return {
        "content": {
            "application/json": {"schema": array},
            "application/x-ndjson": {"schema": {"type": "string"}},
        },
        "required": True,
    }


_TX_SCHEMA = TransactionIn.model_json_schema()


def _media_type(request: Request) -> str | None:
    """The body's media type, lower case without parameters; None when not given."""
    header = request.headers.get("content-type")
    return None if header is None else header.split(";")[0].strip().lower()


async def _json_body(request: Request) -> bytes | JsonBytes:
    """The body of a request that must be JSON (the type may be left out), or the problem."""
    media_type = _media_type(request)
    if media_type not in (None, "application/json"):
        return problem(415, f"send application/json, not {media_type}")
    return await _body(request)


async def _body(request: Request) -> bytes | JsonBytes:
    """The whole body, or a 413 once it is known to be larger than ``max_body_bytes``: from
    its declared length before reading any of it, else as it streams in."""
    limit: int = request.app.state.max_body_bytes
    too_large = problem(413, f"the body is larger than {limit:,} bytes (service.max_body_bytes)")
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit():
        if int(declared) > limit:
            return too_large
        return await request.body()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_one(body: bytes) -> TransactionIn | JsonBytes:
    try:
        return _TRANSACTION.validate_json(body)
    except ValidationError as exc:
        return problem(422, "invalid transaction", field_problems(exc.errors()))


@router.post(
    TRANSACTIONS,
    response_model=DecisionOut,
    responses={
        **_ERRORS,
        409: {"model": Problem, "description": "The id was decided before on other content."},
    },
    openapi_extra={"requestBody": _transaction_body(_TX_SCHEMA, batch=False)},
    summary="Decide one transaction",
)
async def post_transaction(request: Request) -> JsonBytes:
    """Decide one transaction; a retry with the same id returns the first decision, and the
    same id with other content (time, card, terminal, amount, currency) is refused (409)."""
    runtime = _runtime(request)
    tracer = runtime.service.tracer
    with tracer.start_as_current_span("transaction") as span:
        body = await _json_body(request)
        if isinstance(body, JsonBytes):
            return body
        with runtime.service.stage("validate"):
            parsed = _parse_one(body)
        if isinstance(parsed, JsonBytes):
            runtime.metrics.dead_letters.labels(stage="api", reason="invalid_transaction").inc()
            return parsed
        span.set_attribute("fraudops.transaction_id", parsed.transaction_id)
        try:
            decision, _ = await runtime.service.decide(parsed.to_transaction())
        except FieldError as exc:
            runtime.metrics.dead_letters.labels(stage="api", reason="invalid_transaction").inc()
            return problem(422, "invalid transaction", error_problems(exc))
        except ConflictingDuplicateError:
            runtime.metrics.dead_letters.labels(stage="api", reason="conflicting_duplicate").inc()
            raise  # 409, naming what differs
        return JsonBytes(DecisionOut.of(decision))


def hot_routes(authorise: Callable[[Request], Awaitable[None]]) -> list[BaseRoute]:
    """``POST /v1/transactions`` as a plain Starlette route, to be matched before the router.

    The same handler as the documented route (which stays in the OpenAPI schema) without
    FastAPI's per-request dependency solving and route handling, about 16 % of the
    instructions of a decision. The handler parses its own body, so all that is left to do
    here is the API key check the router's dependency would have done; its ``AuthError``
    reaches the app's handler like any other. Other methods on the path fall through to
    the router, which answers them as before (405).
    """

    async def decide_one(request: Request) -> Response:
        await authorise(request)
        return await post_transaction(request)

    path = router.prefix + TRANSACTIONS
    return [Route(path, decide_one, methods=["POST"], include_in_schema=False)]


def _batch_items(request: Request, body: bytes) -> list[Any] | JsonBytes:
    content_type = _media_type(request) or "application/json"
    if content_type in _NDJSON:
        items: list[Any] = []
        for line in body.splitlines():
            if not line.strip():
                continue
            try:
                items.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                items.append(_MalformedLine())
        return items
    if content_type != "application/json":
        return problem(415, f"send application/json or application/x-ndjson, not {content_type}")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return problem(
            422, "the body is not valid JSON", [{"field": "(body)", "message": str(exc)}]
        )
    if not isinstance(parsed, list):
        return problem(
            422, "a batch is a JSON array", [{"field": "(body)", "message": "expected an array"}]
        )
    return parsed


class _MalformedLine:
    """An NDJSON line that is not JSON."""


@router.post(
    "/transactions:batch",
    response_model=BatchOut,
    responses={**_ERRORS, 413: {"model": Problem, "description": "Too many items."}},
    openapi_extra={"requestBody": _transaction_body(_TX_SCHEMA, batch=True)},
    summary="Decide many transactions (JSON array or NDJSON)",
)
async def post_batch(request: Request) -> JsonBytes:
    """Decide each item in order; a bad item is rejected alone, the others are decided.

    The event loop is let go between items, so a long batch neither holds up other
    requests nor reads, to the load shedder, as a loop too busy to keep up.
    """
    runtime = _runtime(request)
    body = await _body(request)
    if isinstance(body, JsonBytes):
        return body
    items = _batch_items(request, body)
    if isinstance(items, JsonBytes):
        return items
    limit = request.app.state.batch_max_items
    if len(items) > limit:
        return problem(413, f"a batch holds at most {limit} items, got {len(items)}")
    results: list[dict[str, Any]] = []
    with runtime.service.tracer.start_as_current_span("batch"):
        for index, item in enumerate(items):
            if index:
                await asyncio.sleep(0)
            results.append(await _decide_item(runtime, index, item))
    statuses = [result["status"] for result in results]
    return JsonBytes(
        {
            "received": len(items),
            "accepted": statuses.count("decided"),
            "duplicates": statuses.count("duplicate"),
            "rejected": statuses.count("rejected"),
            "results": results,
        }
    )


async def _decide_item(runtime: Runtime, index: int, item: Any) -> dict[str, Any]:
    """One batch item's result: decided, a retry's first decision, or rejected, and why."""
    reason = "invalid_transaction"
    if isinstance(item, _MalformedLine):
        problems = [{"field": "(line)", "message": "not valid JSON"}]
    elif not isinstance(item, dict):
        problems = [{"field": "(item)", "message": "expected a JSON object (a transaction)"}]
    else:
        try:
            parsed = TransactionIn.model_validate(item)
            decision, duplicate = await runtime.service.decide(parsed.to_transaction())
        except ValidationError as exc:
            problems = field_problems(exc.errors())
        except FieldError as exc:
            problems = error_problems(exc)
        except ConflictingDuplicateError as exc:
            reason, problems = exc.reason, error_problems(exc)
        else:
            return {
                "index": index,
                "status": "duplicate" if duplicate else "decided",
                "decision": DecisionOut.of(decision),
                "errors": [],
            }
    runtime.metrics.dead_letters.labels(stage="api", reason=reason).inc()
    return {"index": index, "status": "rejected", "decision": None, "errors": problems}


@router.get(
    "/decisions/{transaction_id}",
    response_model=DecisionOut,
    responses={**_ERRORS, 404: {"model": Problem}, 503: {"model": Problem}},
    summary="The decision made for a transaction",
)
async def get_decision(transaction_id: str, request: Request) -> JsonBytes:
    """The first decision for ``transaction_id``: from memory if recent, else the log."""
    decision = await _runtime(request).service.lookup(transaction_id)
    if decision is None:
        return problem(404, f"no decision for transaction {transaction_id!r}")
    return JsonBytes(DecisionOut.of(decision))


@router.post(
    "/labels",
    response_model=LabelOut,
    status_code=202,
    responses=_ERRORS,
    openapi_extra={
        "requestBody": {
            "content": {"application/json": {"schema": LabelIn.model_json_schema()}},
            "required": True,
        }
    },
    summary="A verdict or chargeback for a transaction",
)
async def post_label(request: Request) -> JsonBytes:
    """Store the label for training and apply it to terminal risk, as of its ``known_at``;
    ``reason`` says why the online state did not take it (``unknown_transaction``,
    ``known_before_transaction``, ``past_window``, ``unchanged``: a repeat)."""
    runtime = _runtime(request)
    body = await _json_body(request)
    if isinstance(body, JsonBytes):
        return body
    try:
        label = _LABEL.validate_json(body)
        outcome = await runtime.service.learn(label.to_label())
    except ValidationError as exc:
        problems = field_problems(exc.errors())
    except FieldError as exc:
        problems = error_problems(exc)
    else:
        return _label_out(label, outcome)
    runtime.metrics.dead_letters.labels(stage="api", reason="invalid_label").inc()
    return problem(422, "invalid label", problems)


def _label_out(label: LabelIn, outcome: LabelOutcome) -> JsonBytes:
    """What became of ``label``, as the 202 body."""
    body = LabelOut(
        transaction_id=label.transaction_id,
        stored=outcome.stored,
        applied=outcome.applied,
        reason=outcome.reason,
    )
    return JsonBytes(body.model_dump(), status_code=202)
