"""The scoring service's routes, on one ``APIRouter``; everything they use comes through
dependencies from the app's ``ServiceState`` (never a module global).

(No ``from __future__ import annotations`` here: FastAPI reads the route annotations, and the
batch body model is built per app, from ``serve.max_batch_rows``.)
"""

import asyncio
import logging
import secrets
import threading
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, Security
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

from level1_devops.schema import RECORDS_NAME
from level1_devops.settings import Settings
from level3_deployment.loading import LoadedModel
from level3_deployment.params import ServeParams
from level3_deployment.service.batching import MicroBatcher, NoModelError, OverloadedError
from level3_deployment.service.holder import ModelHolder
from level3_deployment.service.hooks import PredictionSink
from level3_deployment.service.metrics import ServiceMetrics
from level3_deployment.service.schemas import (
    BatchResponse,
    ErrorBody,
    ModelInfo,
    PredictionResponse,
    RecordRequest,
)

T = TypeVar("T")
PREDICT, PREDICT_BATCH = "/predict", "/predict/batch"
log = logging.getLogger("mlops.service")
CHUNK_ROWS = 100  # a batch is scored in chunks, so a timed-out one stops early
# The admin endpoints' secret, declared as a security scheme (it shows in the OpenAPI spec).
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False,
                              description="MLOPS_SERVICE_API_KEY")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in {
        400: "Body that cannot be decoded (not UTF-8)",
        413: "Body larger than the configured limit", 415: "Content-Type is not JSON",
        422: "Invalid record(s): the body names the field",
        503: "No model loaded yet, or overloaded (see Retry-After)",
        504: "Prediction slower than the configured timeout"}.items()}
# The model tags a public answer may show; audit tags (who promoted) stay in the registry.
PUBLIC_TAG_PREFIXES = ("certification", "promoted", "rolled_back")
PRIVATE_TAG_SUFFIXES = (".by",)


@dataclass
class ServiceState:
    """Everything the routes use, built once by ``create_app``."""

    settings: Settings
    serve: ServeParams
    holder: ModelHolder
    batcher: MicroBatcher
    metrics: ServiceMetrics
    sinks: Sequence[PredictionSink] = field(default_factory=tuple)
    dead_loops: set[str] = field(default_factory=set)  # background loops down (restarting)
    batch_slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self.batch_slots = asyncio.Semaphore(self.serve.max_concurrent_batches)

    @property
    def ready(self) -> bool:
        return self.holder.ready and not self.dead_loops

    def full(self, path: str) -> str | None:
        """The bound a new request on ``path`` would pass, or None when there is room."""
        if path == PREDICT and self.batcher.full:
            return "single requests queued"
        if path == PREDICT_BATCH and self.batch_slots.locked():
            return "batch requests"
        return None

    def overloaded(self, why: str) -> HTTPException:
        self.metrics.overload.labels(why).inc()
        return HTTPException(503, f"overloaded: {why}; retry in {self.serve.retry_after_s} s",
                             headers={"Retry-After": str(self.serve.retry_after_s)})

    async def predict_batch(self, model: LoadedModel, records: list[dict[str, Any]]) -> Any:
        """Score a batch request off the event loop, at most ``max_concurrent_batches`` at
        once (503 past it); past the timeout it stops between chunks instead of running on."""
        if self.batch_slots.locked():
            raise self.overloaded("batch requests")
        cancelled = threading.Event()
        async with self.batch_slots:
            try:
                return await self.timed(asyncio.to_thread(_score_chunks, model, records,
                                                          cancelled))
            finally:
                cancelled.set()  # a timed-out scoring thread stops at its next chunk

    def notify(self, request_id: str, model: LoadedModel, records: list[dict[str, Any]],
               probabilities: list[float]) -> None:
        """Hand every prediction to the sinks (Level 4's prediction log)."""
        for sink in self.sinks:
            sink(request_id, model, records, probabilities)

    async def timed(self, awaitable: Awaitable[T]) -> T:
        """The prediction, or 504 past the timeout and 503 with no model."""
        try:
            return await asyncio.wait_for(awaitable, self.serve.predict_timeout_s)
        except TimeoutError as err:
            raise HTTPException(
                504, f"prediction took longer than {self.serve.predict_timeout_s} s") from err
        except NoModelError as err:
            raise HTTPException(503, str(err)) from err
        except OverloadedError as err:
            raise self.overloaded(str(err)) from err
        except Exception as err:  # the model failed on this input: a 503, never a crash
            log.exception("prediction failed")
            raise HTTPException(503, f"prediction failed: {type(err).__name__}",
                                headers={"Retry-After": str(self.serve.retry_after_s)}) from err


def _score_chunks(model: LoadedModel, records: list[dict[str, Any]],
                  cancelled: threading.Event) -> list[float]:
    scores: list[float] = []
    for start in range(0, len(records), CHUNK_ROWS):
        if cancelled.is_set():
            raise TimeoutError("cancelled: the caller was answered 504")
        scores.extend(float(p) for p in model.predict_records(records[start:start + CHUNK_ROWS]))
    return scores


def get_state(request: Request) -> ServiceState:
    return request.app.state.service


StateDep = Annotated[ServiceState, Depends(get_state)]


def get_model(state: StateDep) -> LoadedModel:
    """The model serving right now (503 until one is loaded)."""
    if state.holder.current is None:
        raise HTTPException(503, "no model loaded yet")
    return state.holder.current


ModelDep = Annotated[LoadedModel, Depends(get_model)]


def scoring_router(batch_request: type[BaseModel]) -> APIRouter:
    """Prediction, health, model and metrics routes; ``batch_request`` is the batch body."""
    router = APIRouter()

    @router.post(PREDICT, response_model=PredictionResponse, responses=ERRORS)
    async def predict(record: RecordRequest, state: StateDep) -> JSONResponse:
        """P(positive) for one record (scored together with concurrent requests)."""
        values = record.model_dump()
        # The batcher takes the serving model once, for the whole micro-batch (503 if none).
        p, model = await state.timed(state.batcher.predict(values))
        request_id = uuid.uuid4().hex
        state.notify(request_id, model, [values], [p])
        # Plain JSON: response_model documents the shape; validating it again costs time.
        return JSONResponse({"probability": p, "late": p >= model.threshold,
                             "request_id": request_id, "model_name": model.name,
                             "model_version": model.version, "threshold": model.threshold})

    @router.post(PREDICT_BATCH, response_model=BatchResponse, responses=ERRORS)
    async def predict_batch(body: batch_request, state: StateDep,  # type: ignore[valid-type]
                            model: ModelDep) -> JSONResponse:
        """P(positive) for up to `max_batch_rows` records in one call."""
        records = [r.model_dump() for r in getattr(body, RECORDS_NAME)]
        probabilities = await state.predict_batch(model, records)
        request_id = uuid.uuid4().hex
        state.notify(request_id, model, records, [float(p) for p in probabilities])
        return JSONResponse({
            "request_id": request_id, "model_name": model.name,
            "model_version": model.version, "threshold": model.threshold,
            "predictions": [{"probability": float(p), "late": bool(p >= model.threshold)}
                            for p in probabilities]})

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        """The process answers."""
        return {"status": "alive"}

    @router.get("/health/ready", responses={503: {"model": ErrorBody}})
    async def ready(state: StateDep) -> JSONResponse:
        """200 once the champion is loaded and smoke-tested; 503 before, and from shutdown on."""
        holder = state.holder
        if not state.ready:
            reason = ("shutting down" if holder.shutting_down else
                      f"restarting: {', '.join(sorted(state.dead_loops))}" if state.dead_loops
                      else "no model loaded yet")
            return JSONResponse({"status": "not ready", "detail": reason}, status_code=503)
        assert holder.current is not None
        return JSONResponse({"status": "ready", "model_version": holder.current.version})

    @router.get("/model", response_model=ModelInfo, responses={503: {"model": ErrorBody}})
    async def model_info(model: ModelDep) -> ModelInfo:
        """The version serving and its certification summary."""
        return ModelInfo(model_name=model.name, model_version=model.version,
                         run_id=model.run_id, threshold=model.threshold,
                         certification=model.tags.get("certification", "unknown"),
                         tags={k: v for k, v in model.tags.items()
                               if k.startswith(PUBLIC_TAG_PREFIXES)
                               and not k.endswith(PRIVATE_TAG_SUFFIXES)})

    @router.get("/metrics", response_class=PlainTextResponse)
    async def prometheus(state: StateDep) -> PlainTextResponse:
        """Prometheus text: requests by status, latency, model version, reloads, batch sizes."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest(state.metrics.registry),
                                 media_type=CONTENT_TYPE_LATEST)

    @router.post("/admin/reload", responses={403: {"model": ErrorBody}})
    async def reload(state: StateDep,
                     x_api_key: Annotated[str | None, Security(API_KEY_HEADER)] = None
                     ) -> dict[str, Any]:
        """Load @champion now (X-API-Key required); a bad version is refused, the old one stays."""
        expected = state.settings.service_api_key
        if expected is None:
            raise HTTPException(403, "admin API disabled: set MLOPS_SERVICE_API_KEY")
        # Header values arrive as latin-1 text: any byte is one character, so encoding back
        # gives the bytes sent, whatever they are (compare_digest refuses non-ASCII text).
        given = (x_api_key or "").encode("latin-1", errors="replace")
        if not secrets.compare_digest(given, expected.get_secret_value().encode()):
            raise HTTPException(403, "wrong or missing X-API-Key")
        outcome = await state.holder.reload()
        state.metrics.reloads.labels("swapped" if outcome.swapped else "kept").inc()
        return {"swapped": outcome.swapped, "version": outcome.version,
                "message": outcome.message}

    return router
