"""The Level 3 scoring service plus the Level 4 prediction log.

``create_app`` builds the Level 3 app and attaches the log as a prediction observer; the log's
writer runs beside the app and flushes on shutdown. Level 3 knows nothing of Level 4.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from level1_devops.settings import Settings
from level3_deployment.service.app import create_app as create_scoring_app
from level4_retraining.prediction_log import PredictionLog
from level4_retraining.status import monitoring_status


class MonitoringCollector:
    """Gauges of the latest monitored window, read from the history at each scrape."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        state = monitoring_status(self.settings)
        for name, key, text in (
                ("mlops_monitor_drift_share", "drift_share", "Drift share of the last window"),
                ("mlops_monitor_roc_auc", "roc_auc", "ROC AUC of the last labelled window"),
                ("mlops_monitor_retrains", "retrains", "Retrains started by the drift policy")):
            if state.get(key) is not None:
                yield GaugeMetricFamily(name, text, value=float(state[key]))


def create_app(settings: Settings | None = None, **kwargs: Any) -> FastAPI:
    """The scoring service with every prediction logged under ``settings.predictions_dir``."""
    settings = settings or Settings()
    app = create_scoring_app(settings, **kwargs)
    prediction_log = PredictionLog(settings.predictions_dir)
    app.state.prediction_sinks.append(prediction_log.record)
    app.state.prediction_log = prediction_log
    app.state.metrics.registry.register(MonitoringCollector(settings))
    scoring_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: FastAPI) -> AsyncIterator[Any]:
        stop = asyncio.Event()
        async with scoring_lifespan(application) as state:
            writer = asyncio.create_task(prediction_log.run(stop))
            try:
                yield state
            finally:
                # After the app has drained its requests: the writer finishes the flush it is
                # in, then writes the rest, so everything answered is also logged.
                stop.set()
                await writer

    app.router.lifespan_context = lifespan
    return app
