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
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from level1_devops.features import PREDICTION_DESCRIPTION, SERVICE_TITLE
from level1_devops.settings import Settings, get_settings, is_loopback
from level2_training.tracking import client as tracking_client
from level3_deployment.params import DeploymentParams
from level3_deployment.service.batching import MicroBatcher
from level3_deployment.service.holder import ModelHolder
from level3_deployment.service.hooks import Collector, Lifespan, PredictionSink
from level3_deployment.service.metrics import create_metrics
from level3_deployment.service.middleware import (
    AdmissionGuard,
    ExposureGuard,
    Instrumented,
    RequestGuard,
)
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
            wait_s = max(interval_s, holder.backoff_s)
            log.warning("not ready: %s; retrying in %.0f s", outcome.message, wait_s)
            await asyncio.sleep(wait_s)
    # The libraries and the model are loaded: keep the garbage collector off them. Full
    # collections over everything pandas, scikit-learn and MLflow allocate stalled requests
    # (measured here: p99 about 240 ms under load before, see benchmarks/service_latency.py).
    gc.collect()
    gc.freeze()
    await holder.poll(interval_s)


def exposed_listeners() -> list[str]:
    """The non-loopback addresses this process listens on (inherited sockets included)."""
    import psutil

    return sorted({f"{c.laddr.ip}:{c.laddr.port}"
                   for c in psutil.Process().net_connections(kind="inet")
                   if c.status == psutil.CONN_LISTEN and not is_loopback(c.laddr.ip)})


async def _refuse_exposed_without_key(state: ServiceState, watch_s: float = 30) -> None:
    """Stop the service when it listens on an exposed address without an API key.

    The server binds its sockets after the app has started, so this looks for a while; until
    then ``ExposureGuard`` already refuses every request that arrives on such an address.
    """
    deadline = time.monotonic() + watch_s
    while time.monotonic() < deadline:
        exposed = exposed_listeners()
        if exposed:
            log.critical("refusing to serve on %s without MLOPS_SERVICE_API_KEY: stopping "
                         "(bind 127.0.0.1, or set a key of at least 16 characters)",
                         ", ".join(exposed))
            state.holder.shutting_down = True
            os.kill(os.getpid(), signal.SIGTERM)
            return
        await asyncio.sleep(0.2)


async def supervised(state: ServiceState, name: str, run: Callable[[], Awaitable[None]],
                     restart_s: float = 1.0) -> None:
    """Run a background loop for the app's life: when it dies, the service is not ready
    (``/health/ready`` 503 names it) until it has been restarted, and ``/metrics`` counts it."""
    while True:
        try:
            await run()
            return
        except Exception:
            log.exception("background loop %s died; restarting it in %.0f s", name, restart_s)
            state.dead_loops.add(name)
            state.metrics.loop_restarts.labels(name).inc()
            await asyncio.sleep(restart_s)
            state.dead_loops.discard(name)


def _lifespan(state: ServiceState, extensions: Sequence[Lifespan]) -> Any:
    """The batcher and the model follower run for the app's life, supervised; the extensions
    inside it, so they start after the service and stop before it (after the last answer)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        _flag_shutdown(state.holder)
        loops: dict[str, Callable[[], Awaitable[None]]] = {
            "batcher": state.batcher.run,
            "model follower": lambda: _load_then_follow(state.holder,
                                                        state.serve.poll_interval_s)}
        # Under a server (its loop on the main thread) the process's own listeners are the
        # service's; an in-process test client runs the app on another thread: not checked.
        if state.settings.service_api_key is None and (
                threading.current_thread() is threading.main_thread()):
            loops["exposure check"] = lambda: _refuse_exposed_without_key(state)
        tasks = [asyncio.create_task(supervised(state, name, run)) for name, run in loops.items()]
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
    # A JSON string may hold a lone surrogate ("\udcff"), which has no UTF-8 form: names are
    # escaped, so any body gets its 422.
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": [_printable(part) for part in e.get("loc", ())],
               "msg": _printable(e.get("msg", "")), "type": e.get("type")}
              for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


def _printable(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


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
    holder.on_refusal.append(lambda kind: metrics.refusals.labels(kind).inc())
    batcher = MicroBatcher(lambda: holder.current, serve.microbatch_max_rows,
                           serve.microbatch_wait_ms / 1000, metrics.batch_size.observe,
                           serve.max_queued_requests)
    state = ServiceState(settings, serve, holder, batcher, metrics, tuple(sinks))

    app = FastAPI(title=SERVICE_TITLE, lifespan=_lifespan(state, lifespans),
                  description=f"{PREDICTION_DESCRIPTION}. Serves the registry's @champion "
                  "and follows it without a restart.")
    app.state.service = state
    router = scoring_router(batch_request_model(serve.max_batch_rows))
    app.include_router(router)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_middleware(RequestGuard, max_body_bytes=serve.max_body_bytes)
    app.add_middleware(AdmissionGuard, full=state.full, retry_after_s=serve.retry_after_s,
                       on_shed=lambda bound: metrics.overload.labels(bound).inc())
    app.add_middleware(ExposureGuard, has_key=settings.service_api_key is not None)
    app.add_middleware(Instrumented, metrics=metrics,
                       routes={r.path for r in router.routes})  # type: ignore[attr-defined]
    return app
