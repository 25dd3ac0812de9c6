"""The scoring service: FastAPI app serving ``models:/<name>@champion``.

(No ``from __future__ import annotations`` here: FastAPI reads the route annotations, and the
batch model is built per app, inside ``create_app``.)

Create it with ``create_app()`` (uvicorn: ``--factory``). The model reaches handlers through
dependencies, never a module global; importing this module starts nothing.
"""


import asyncio
import gc
import logging
import secrets
import signal
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

from level1_devops.settings import Settings
from level2_training.params import load_registry_params
from level3_deployment.loading import LoadedModel
from level3_deployment.params import ServeParams, load_serve_params
from level3_deployment.service.batching import MicroBatcher, NoModelError
from level3_deployment.service.holder import ModelHolder
from level3_deployment.service.metrics import ServiceMetrics, create_metrics
from level3_deployment.service.middleware import RequestGuard
from level3_deployment.service.schemas import (
    BatchResponse,
    ErrorBody,
    FlightRequest,
    ModelInfo,
    PredictionResponse,
    batch_request_model,
)

log = logging.getLogger("mlops.service")
ROUTES = {"/predict", "/predict/batch", "/health/live", "/health/ready", "/model", "/metrics",
          "/admin/reload"}
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in {
        413: "Body larger than the configured limit", 415: "Content-Type is not JSON",
        422: "Invalid flight(s): the body names the field", 503: "No model loaded yet",
        504: "Prediction slower than the configured timeout"}.items()}


def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


def get_model(holder: Annotated[ModelHolder, Depends(get_holder)]) -> LoadedModel:
    """The model serving right now (503 until one is loaded)."""
    if holder.current is None:
        raise HTTPException(503, "no model loaded yet")
    return holder.current


def get_batcher(request: Request) -> MicroBatcher:
    return request.app.state.batcher


ModelDep = Annotated[LoadedModel, Depends(get_model)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
BatcherDep = Annotated[MicroBatcher, Depends(get_batcher)]


class Instrumented:
    """Counts every response by route and status, and times it (pure ASGI)."""

    def __init__(self, app: Any, metrics: ServiceMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = scope["path"] if scope["path"] in ROUTES else "other"
        start, status = time.perf_counter(), 500

        async def send_status(message: Any) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self.metrics.requests.labels(route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)


def _flag_shutdown(holder: ModelHolder) -> None:
    """Readiness turns 503 the moment a shutdown signal arrives, before requests drain."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            holder.shutting_down = True
            if callable(previous):
                previous(signum, frame)

        try:
            signal.signal(sig, handler)
        except ValueError:  # not the main thread (an in-process test client): nothing to wrap
            return


async def _load_then_follow(holder: ModelHolder, interval_s: float) -> None:
    while holder.current is None:
        outcome = await holder.reload()
        if holder.current is None:
            log.warning("not ready: %s; retrying in %.0f s", outcome.message, interval_s)
            await asyncio.sleep(interval_s)
    # The libraries and the model are loaded: keep the garbage collector off them. Full
    # collections over everything pandas, scikit-learn and MLflow allocate stalled requests
    # (measured here: p99 about 240 ms under load before, see benchmarks/service_latency.py).
    gc.collect()
    gc.freeze()
    await holder.poll(interval_s)


def create_app(settings: Settings | None = None, serve: ServeParams | None = None) -> FastAPI:
    """The service for one checkout's registry and params.yaml."""
    from mlflow import MlflowClient
    from threadpoolctl import threadpool_limits

    settings = settings or Settings()
    serve = serve or load_serve_params(settings.project_dir)
    threadpool_limits(1)  # one OpenMP thread per worker: measured 14 -> 51 ms p50 with two
    metrics = create_metrics()
    model_name = load_registry_params(settings.project_dir).model_name
    holder = ModelHolder(MlflowClient(tracking_uri=settings.tracking_uri), model_name)
    holder.listeners.append(lambda old, new: metrics.model_version.labels(model_name).set(
        float(new.version)))
    batcher = MicroBatcher(lambda: holder.current, serve.microbatch_max_rows,
                           serve.microbatch_wait_ms / 1000, metrics.batch_size.observe)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _flag_shutdown(holder)
        tasks = [asyncio.create_task(batcher.run()),
                 asyncio.create_task(_load_then_follow(holder, serve.poll_interval_s))]
        yield
        holder.shutting_down = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app = FastAPI(title="Flight delay scoring service", lifespan=lifespan,
                  description="P(arrival delay > 15 min) for flights from New York, 2013. "
                  "Serves the registry's @champion and follows it without a restart.")
    app.state.holder, app.state.batcher, app.state.metrics = holder, batcher, metrics
    app.state.settings, app.state.serve = settings, serve
    BatchRequest = batch_request_model(serve.max_batch_rows)

    # Observers of every prediction (Level 4's prediction log): called on the request path,
    # so each must only hand the rows over (an append), never do I/O.
    sinks: list[Callable[[list[dict[str, Any]]], None]] = []
    app.state.prediction_sinks = sinks

    def notify(request_id: str, model: LoadedModel, records: list[dict[str, Any]],
               probabilities: list[float]) -> None:
        if not sinks:
            return
        now = time.time()
        rows = [{**r, "request_id": request_id, "row": i, "timestamp": now,
                 "model_name": model.name, "model_version": model.version, "probability": p}
                for i, (r, p) in enumerate(zip(records, probabilities, strict=True))]
        for sink in sinks:
            sink(rows)

    async def timed(awaitable: Any) -> Any:
        try:
            return await asyncio.wait_for(awaitable, serve.predict_timeout_s)
        except TimeoutError as err:
            raise HTTPException(504, f"prediction took longer than {serve.predict_timeout_s} s"
                                ) from err
        except NoModelError as err:
            raise HTTPException(503, str(err)) from err

    @app.post("/predict", response_model=PredictionResponse, responses=ERRORS)
    async def predict(flight: FlightRequest, batcher: BatcherDep,
                      _: ModelDep) -> JSONResponse:
        """P(late) for one flight (scored together with concurrent requests)."""
        record = flight.model_dump()
        p, model = await timed(batcher.predict(record))
        request_id = uuid.uuid4().hex
        notify(request_id, model, [record], [p])
        # Plain JSON: response_model documents the shape; validating it again costs time.
        return JSONResponse({"probability": p, "late": p >= model.threshold,
                             "request_id": request_id, "model_name": model.name,
                             "model_version": model.version, "threshold": model.threshold})

    @app.post("/predict/batch", response_model=BatchResponse, responses=ERRORS)
    async def predict_batch(body: BatchRequest, model: ModelDep) -> JSONResponse:  # type: ignore[valid-type]
        """P(late) for up to `max_batch_rows` flights in one call."""
        records = [f.model_dump() for f in body.flights]  # type: ignore[attr-defined]
        probabilities = await timed(asyncio.to_thread(model.predict_records, records))
        request_id = uuid.uuid4().hex
        notify(request_id, model, records, [float(p) for p in probabilities])
        return JSONResponse({
            "request_id": request_id, "model_name": model.name,
            "model_version": model.version, "threshold": model.threshold,
            "predictions": [{"probability": float(p), "late": bool(p >= model.threshold)}
                            for p in probabilities]})

    @app.get("/health/live")
    async def live() -> dict[str, str]:
        """The process answers."""
        return {"status": "alive"}

    @app.get("/health/ready", responses={503: {"model": ErrorBody}})
    async def ready(holder: HolderDep) -> JSONResponse:
        """200 once the champion is loaded and smoke-tested; 503 before, and from shutdown on."""
        if not holder.ready:
            reason = "shutting down" if holder.shutting_down else "no model loaded yet"
            return JSONResponse({"status": "not ready", "detail": reason}, status_code=503)
        assert holder.current is not None
        return JSONResponse({"status": "ready", "model_version": holder.current.version})

    @app.get("/model", response_model=ModelInfo, responses={503: {"model": ErrorBody}})
    async def model_info(model: ModelDep) -> ModelInfo:
        """The version serving and its certification summary."""
        return ModelInfo(model_name=model.name, model_version=model.version,
                         run_id=model.run_id, threshold=model.threshold,
                         certification=model.tags.get("certification", "unknown"),
                         tags={k: v for k, v in model.tags.items()
                               if k.startswith(("certification", "promoted", "rolled_back"))})

    @app.get("/metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        """Prometheus text: requests by status, latency, model version, reloads, batch sizes."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload", responses={403: {"model": ErrorBody}})
    async def reload(holder: HolderDep,
                     x_api_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        """Load @champion now (X-API-Key required); a bad version is refused, the old one stays."""
        expected = settings.service_api_key
        if expected is None:
            raise HTTPException(403, "admin API disabled: set MLOPS_SERVICE_API_KEY")
        if not secrets.compare_digest(x_api_key or "", expected.get_secret_value()):
            raise HTTPException(403, "wrong or missing X-API-Key")
        outcome = await holder.reload()
        metrics.reloads.labels("swapped" if outcome.swapped else "kept").inc()
        return {"swapped": outcome.swapped, "version": outcome.version,
                "message": outcome.message}

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        # Each error names its field (loc) and the problem; the offending value is left out
        # because it may not be valid JSON at all (NaN, Infinity).
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type")}
                  for e in exc.errors()]
        return JSONResponse({"detail": errors}, status_code=422)

    app.add_middleware(RequestGuard, max_body_bytes=serve.max_body_bytes)
    app.add_middleware(Instrumented, metrics=metrics)
    return app
