"""``create_app(settings)``: the decision service as an ASGI app.

Nothing happens at import. The app's lifespan builds the runtime (models, state, log),
warms it up and only then reports ready; on shutdown (uvicorn turns SIGTERM into one,
after in-flight requests finish) it writes every buffered decision before it exits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import structlog
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import PlainTextResponse, Response

from fraudops import __version__
from fraudops.api.auth import HEADER, ApiKeys
from fraudops.api.heap import HeapPolicy
from fraudops.api.responses import JsonBytes, error_response, field_problems, problem
from fraudops.api.routes import hot_routes, router
from fraudops.api.schemas import Readiness
from fraudops.api.wiring import Runtime, build_runtime
from fraudops.errors import ConfigError, FraudopsError
from fraudops.settings import Settings

log = structlog.get_logger("fraudops.api")

RuntimeFactory = Callable[[Settings], Runtime]


def create_app(settings: Settings, *, build: RuntimeFactory = build_runtime) -> FastAPI:
    """The decision service for ``settings``; ``build`` makes its runtime at start-up."""
    keys = ApiKeys(settings.api.key_hashes)
    if not keys and not settings.api.allow_anonymous:
        raise ConfigError(
            "no API keys configured: set api.key_hashes (`fraudops keys new` makes one),"
            " or api.allow_anonymous=true for a laptop"
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await asyncio.to_thread(build, settings)
        app.state.runtime = runtime
        if not keys:
            log.warning("api_keys_disabled", detail="api.allow_anonymous is set")
        await asyncio.to_thread(runtime.start)
        heap = HeapPolicy(
            lambda generation, pause: runtime.metrics.gc_pause.labels(
                generation=str(generation)
            ).observe(pause)
        )
        heap.install()
        refreezing = asyncio.create_task(heap.keep_frozen())
        measuring_lag = asyncio.create_task(runtime.service.loop_lag.run())
        following = [asyncio.create_task(follower.run()) for follower in runtime.followers]
        try:
            yield
        finally:
            for task in following:
                task.cancel()
            measuring_lag.cancel()
            refreezing.cancel()
            heap.remove()
            await asyncio.to_thread(runtime.close, settings.service.shutdown_grace_s)

    async def require_key(request: Request) -> None:
        if keys:
            keys.check(request.headers.get(HEADER))

    app = FastAPI(
        title="fraudops decision service",
        version=__version__,
        description=(
            "Card-fraud decisions in milliseconds: approve, review or decline, with reasons."
            f" Machine clients send their API key in the `{HEADER}` header."
        ),
        lifespan=lifespan,
        # FastAPI's own telemetry follows OpenTelemetry's global providers, which fraudops
        # never sets (the app traces with its own provider, see monitoring.tracing); left
        # on, it looked them up, environment variables included, on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.batch_max_items = settings.service.batch_max_items
    app.state.max_body_bytes = settings.service.max_body_bytes
    app.include_router(router, dependencies=[Depends(require_key)])
    app.router.routes[0:0] = hot_routes(require_key)
    _add_health(app)
    _add_error_handlers(app)
    if settings.review.session_secret is not None:
        from fraudops.api.ui import review_ui  # the analysts' UI under /ui, only when enabled

        app.include_router(review_ui(settings))
    return app


def _add_health(app: FastAPI) -> None:
    @app.get("/healthz", summary="Alive", tags=["health"])
    async def healthz() -> dict[str, str]:
        """The process is up and its event loop answers."""
        return {"status": "alive"}

    @app.get(
        "/readyz",
        response_model=Readiness,
        responses={503: {"model": Readiness}},
        summary="Ready for traffic",
        tags=["health"],
    )
    async def readyz(request: Request) -> JsonBytes:
        """Model loaded and warmed, feature store reachable; the log's state is reported.

        A decision-log outage does not make the service unready: decisions go on, buffered,
        and taking every replica out of rotation for it would stop all payments.
        """
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is None:
            body = Readiness(ready=False, components={}, checked_at=datetime.now(UTC))
            return JsonBytes(body.model_dump(mode="json"), status_code=503)
        timeout_s = 0.5
        state_ok, state_detail = await runtime.probe_state(timeout_s)
        log_ok, log_detail = await runtime.probe_log(timeout_s)
        models = runtime.service.models
        model_detail = ", ".join(f"{m.role} {m.version} ({m.breaker.state})" for m in models)
        components = {
            "model": {
                "ok": runtime.ready,
                "detail": model_detail or "no model loaded",
            },
            "feature_store": {"ok": state_ok, "detail": state_detail},
            "decision_log": {"ok": log_ok, "detail": log_detail},
        }
        ready = runtime.ready and state_ok
        body = Readiness.model_validate(
            {"ready": ready, "components": components, "checked_at": datetime.now(UTC)}
        )
        return JsonBytes(body.model_dump(mode="json"), status_code=200 if ready else 503)

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        tags=["health"],
        response_class=PlainTextResponse,
        responses={503: {"description": "The service has not started yet."}},
    )
    async def metrics(request: Request) -> Response:
        """Every fraudops metric in Prometheus's text format."""
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is None:
            return Response(status_code=503)
        body, content_type = runtime.metrics.render()
        return Response(body, media_type=content_type)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(FraudopsError)
    async def fraudops_error(request: Request, exc: FraudopsError) -> Response:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        runtime: Runtime | None = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            runtime.metrics.dead_letters.labels(stage="api", reason="invalid_request").inc()
        return problem(422, "invalid request", field_problems(exc.errors()))
