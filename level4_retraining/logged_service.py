"""The Level 3 scoring service plus the Level 4 prediction log: Level 4's app.

``create_app`` builds Level 3's app with the log attached through its declared arguments: the
log as a prediction sink, its writer as a lifespan (it flushes everything on shutdown), and the
monitoring gauges and the log's counters as ``/metrics`` collectors. Level 3 knows nothing of
Level 4.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import psycopg
from fastapi import FastAPI

from level1_devops.settings import Settings, get_settings
from level3_deployment.params import DeploymentParams
from level3_deployment.service.app import create_app as create_scoring_app
from level4_retraining.prediction_log import PredictionLog
from level4_retraining.shared_state import prediction_log as shared_prediction_log
from level4_retraining.state_db import StateDBError
from level4_retraining.status import monitoring_status

log = logging.getLogger("mlops.monitoring")


class MonitoringCollector:
    """Gauges of the latest monitored window, read from the history at each scrape."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            state = monitoring_status(self.settings)
        except (StateDBError, psycopg.Error) as err:  # a database outage must not fail /metrics
            log.warning("monitoring gauges left out of /metrics: %s", err)
            return
        for name, key, text in (
                ("mlops_monitor_drift_share", "drift_share", "Drift share of the last window"),
                ("mlops_monitor_roc_auc", "roc_auc", "ROC AUC of the last labelled window"),
                ("mlops_monitor_retrains", "retrains", "Retrains started by the drift policy")):
            if state.get(key) is not None:
                yield GaugeMetricFamily(name, text, value=float(state[key]))


class PredictionLogCollector:
    """The prediction log's counters: rows dropped (buffer full while writes failed), failed
    flushes, rows written, and rows waiting for the next flush."""

    def __init__(self, prediction_log: PredictionLog) -> None:
        self.log = prediction_log

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        log = self.log
        yield CounterMetricFamily("mlops_prediction_log_rows_dropped",
                                  "Logged predictions dropped, oldest first, while the buffer "
                                  "was full", value=log.n_dropped)
        yield CounterMetricFamily("mlops_prediction_log_flush_failures",
                                  "Prediction log flushes that could not write their rows",
                                  value=log.n_failed_flushes)
        yield CounterMetricFamily("mlops_prediction_log_rows_written",
                                  "Logged predictions written", value=log.n_written)
        yield GaugeMetricFamily("mlops_prediction_log_rows_buffered",
                                "Logged predictions waiting to be written", value=log.n_buffered)


def create_app(settings: Settings | None = None,
               params: DeploymentParams | None = None) -> FastAPI:
    """The scoring service with every prediction logged (under ``settings.predictions_dir``,
    or in PostgreSQL when ``settings.state_db_dsn`` is set; no arguments: the environment and
    params.yaml, as uvicorn's ``--factory`` calls it)."""
    settings = settings or get_settings()
    prediction_log = shared_prediction_log(settings)
    app = create_scoring_app(settings, params, sinks=[prediction_log.record],
                             lifespans=[prediction_log.writing],
                             collectors=[MonitoringCollector(settings),
                                         PredictionLogCollector(prediction_log)])
    return app
