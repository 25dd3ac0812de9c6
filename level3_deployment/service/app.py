"""The scoring service: FastAPI app serving ``models:/<name>@champion``.

Create it with ``create_app(settings, params)`` (uvicorn: ``--factory``, which calls it with
no arguments: then it reads the environment and params.yaml, as an entry point does). The
routes live in ``routes.py``; a higher level attaches through the declared arguments
(``sinks``, ``lifespans``, ``collectors``: see ``hooks.py``). Importing starts nothing.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from level1_devops.features import PREDICTION_DESCRIPTION, SERVICE_TITLE
from level1_devops.settings import Settings, get_settings
from level2_training.tracking import client as tracking_client
from level3_deployment.params import DeploymentParams
from level3_deployment.service.batching import MicroBatcher
from level3_deployment.service.holder import ModelHolder
from level3_deployment.service.hooks import Collector, Lifespan, PredictionSink
from level3_deployment.service.metrics import create_metrics
from level3_deployment.service.middleware import Instrumented, RequestGuard
from level3_deployment.service.routes import ServiceState, scoring_router
from level3_deployment.service.schemas import batch_request_model

log = logging.getLogger("mlops.service")


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


def _lifespan(state: ServiceState, extensions: Sequence[Lifespan]) -> Any:
    """The batcher and the model follower run for the app's life; the extensions inside it,
    so they start after the service and stop before it (after the last answer)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _flag_shutdown(state.holder)
        tasks = [asyncio.create_task(state.batcher.run()),
                 asyncio.create_task(_load_then_follow(state.holder,
                                                       state.serve.poll_interval_s))]
        try:
            async with AsyncExitStack() as stack:
                for extension in extensions:
                    await stack.enter_async_context(extension())
                yield
        finally:
            state.holder.shutting_down = True
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    return lifespan


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    # Each error names its field (loc) and the problem; the offending value is left out
    # because it may not be valid JSON at all (NaN, Infinity).
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type")}
              for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


def create_app(settings: Settings | None = None, params: DeploymentParams | None = None, *,
               sinks: Sequence[PredictionSink] = (), lifespans: Sequence[Lifespan] = (),
               collectors: Sequence[Collector] = ()) -> FastAPI:
    """The service for one checkout's registry and params (Level 3's app).

    Args:
        settings: where the registry is; default: the environment (the factory's default).
        params: ``serve`` limits and the model name; default: the project's params.yaml.
        sinks: called with every prediction (Level 4's prediction log).
        lifespans: run beside the app (Level 4's log writer).
        collectors: more ``/metrics`` series (Level 4's monitoring gauges).
    """
    from threadpoolctl import threadpool_limits

    settings = settings or get_settings()
    params = params or DeploymentParams.load(settings.project_dir)
    serve = params.serve
    threadpool_limits(1)  # one OpenMP thread per worker: measured 14 -> 51 ms p50 with two
    metrics = create_metrics()
    for collector in collectors:
        metrics.registry.register(collector)
    holder = ModelHolder(tracking_client(settings), params.model_name)
    holder.listeners.append(lambda old, new: metrics.model_version.labels(
        params.model_name).set(float(new.version)))
    batcher = MicroBatcher(lambda: holder.current, serve.microbatch_max_rows,
                           serve.microbatch_wait_ms / 1000, metrics.batch_size.observe)
    state = ServiceState(settings, serve, holder, batcher, metrics, tuple(sinks))

    app = FastAPI(title=SERVICE_TITLE, lifespan=_lifespan(state, lifespans),
                  description=f"{PREDICTION_DESCRIPTION}. Serves the registry's @champion "
                  "and follows it without a restart.")
    app.state.service = state
    router = scoring_router(batch_request_model(serve.max_batch_rows))
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_middleware(RequestGuard, max_body_bytes=serve.max_body_bytes)
    app.add_middleware(Instrumented, metrics=metrics,
                       routes={r.path for r in router.routes})  # type: ignore[attr-defined]
    return app
