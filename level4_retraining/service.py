"""The Level 3 scoring service plus the Level 4 prediction log.

``create_app`` builds the Level 3 app and attaches the log as a prediction observer; the log's
writer runs beside the app and flushes on shutdown. Level 3 knows nothing of Level 4.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from level1_devops.settings import Settings
from level3_deployment.service.app import create_app as create_scoring_app
from level4_retraining.prediction_log import PredictionLog


def create_app(settings: Settings | None = None, **kwargs: Any) -> FastAPI:
    """The scoring service with every prediction logged under ``settings.predictions_dir``."""
    settings = settings or Settings()
    app = create_scoring_app(settings, **kwargs)
    prediction_log = PredictionLog(settings.predictions_dir)
    app.state.prediction_sinks.append(prediction_log.record)
    app.state.prediction_log = prediction_log
    scoring_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        async with scoring_lifespan(application) as state:
            writer = asyncio.create_task(prediction_log.run())
            try:
                yield state
            finally:
                writer.cancel()
                await asyncio.gather(writer, return_exceptions=True)
                # After the scoring app has drained: everything answered is also logged.
                await asyncio.to_thread(prediction_log.flush)

    app.router.lifespan_context = lifespan
    return app
