"""The scoring service's routes, on one ``APIRouter``; everything they use comes through
dependencies from the app's ``ServiceState`` (never a module global).

(No ``from __future__ import annotations`` here: FastAPI reads the route annotations, and the
batch body model is built per app, from ``serve.max_batch_rows``.)
"""

import asyncio
import secrets
import uuid
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel

from level1_devops.schema import RECORDS_NAME
from level1_devops.settings import Settings
from level3_deployment.loading import LoadedModel
from level3_deployment.params import ServeParams
from level3_deployment.service.batching import MicroBatcher, NoModelError
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
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text} for code, text in {
        413: "Body larger than the configured limit", 415: "Content-Type is not JSON",
        422: "Invalid record(s): the body names the field", 503: "No model loaded yet",
        504: "Prediction slower than the configured timeout"}.items()}
# The model tags a public answer may show; audit tags (who promoted) stay in the registry.
PUBLIC_TAG_PREFIXES = ("certification", "promoted", "rolled_back")


@dataclass
class ServiceState:
    """Everything the routes use, built once by ``create_app``."""

    settings: Settings
    serve: ServeParams
    holder: ModelHolder
    batcher: MicroBatcher
    metrics: ServiceMetrics
    sinks: Sequence[PredictionSink] = field(default_factory=tuple)

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

    @router.post("/predict", response_model=PredictionResponse, responses=ERRORS)
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

    @router.post("/predict/batch", response_model=BatchResponse, responses=ERRORS)
    async def predict_batch(body: batch_request, state: StateDep,  # type: ignore[valid-type]
                            model: ModelDep) -> JSONResponse:
        """P(positive) for up to `max_batch_rows` records in one call."""
        records = [r.model_dump() for r in getattr(body, RECORDS_NAME)]
        probabilities = await state.timed(asyncio.to_thread(model.predict_records, records))
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
        if not holder.ready:
            reason = "shutting down" if holder.shutting_down else "no model loaded yet"
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
                               if k.startswith(PUBLIC_TAG_PREFIXES)})

    @router.get("/metrics", response_class=PlainTextResponse)
    async def prometheus(state: StateDep) -> PlainTextResponse:
        """Prometheus text: requests by status, latency, model version, reloads, batch sizes."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest(state.metrics.registry),
                                 media_type=CONTENT_TYPE_LATEST)

    @router.post("/admin/reload", responses={403: {"model": ErrorBody}})
    async def reload(state: StateDep,
                     x_api_key: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        """Load @champion now (X-API-Key required); a bad version is refused, the old one stays."""
        expected = state.settings.service_api_key
        if expected is None:
            raise HTTPException(403, "admin API disabled: set MLOPS_SERVICE_API_KEY")
        if not secrets.compare_digest(x_api_key or "", expected.get_secret_value()):
            raise HTTPException(403, "wrong or missing X-API-Key")
        outcome = await state.holder.reload()
        state.metrics.reloads.labels("swapped" if outcome.swapped else "kept").inc()
        return {"swapped": outcome.swapped, "version": outcome.version,
                "message": outcome.message}

    return router
