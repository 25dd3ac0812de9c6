"""The monitoring flow on a real window: real Prefect, MLflow, Evidently, logged predictions."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from mlflow import MlflowClient

from level1_devops.settings import Settings
from level2_training.data import load_periods
from level3_deployment.service.schemas import REQUEST_FIELDS
from level4_retraining.prediction_log import PredictionLog
from tests.level3_deployment.conftest import set_champion

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def logged_march(trained: Any, prefect_server: str) -> int:
    """The champion's predictions for March's 2,000 flights, logged as the service logs them."""
    from level3_deployment.loading import load_version

    set_champion(trained.version)
    settings = Settings()
    champion = load_version(MlflowClient(tracking_uri=settings.tracking_uri), "flight-delay",
                            trained.version)
    flights = load_periods(settings.raw_dir, ["2013-03"])[list(REQUEST_FIELDS)]
    records = flights.astype(object).where(flights.notna(), None).to_dict(orient="records")
    probabilities = champion.predict_records(records)
    log = PredictionLog(settings.predictions_dir)
    log.record([{**r, "request_id": f"m{i}", "row": 0, "timestamp": time.time(),
                 "model_name": "flight-delay", "model_version": trained.version,
                 "probability": float(p)} for i, (r, p) in enumerate(zip(records, probabilities,
                                                                         strict=True))])
    return log.flush()


def test_a_window_is_measured_decided_and_recorded(logged_march: int) -> None:
    from level4_retraining.monitoring import EXPERIMENT, history_path, monitor

    outcome = monitor("2013-03")
    result = outcome.result
    assert result.n == logged_march == 2000
    assert result.roc_auc is not None and 0.55 < result.roc_auc < 0.95  # labels joined
    assert 0 <= result.drift_share <= 1 and result.reference_auc is not None
    assert outcome.decision.action in {"none", "warn"} and outcome.decision.reason
    lines = history_path(Settings()).read_text().splitlines()
    assert json.loads(lines[-1])["decision"]["action"] == outcome.decision.action
    assert outcome.report_path.stat().st_size > 100_000  # the Evidently HTML report
    client = MlflowClient(tracking_uri=Settings().tracking_uri)
    runs = client.search_runs([client.get_experiment_by_name(EXPERIMENT).experiment_id])
    assert runs[0].data.tags["decision"] == outcome.decision.action
    assert "drift_share" in runs[0].data.metrics


def test_a_window_without_predictions_is_an_error(logged_march: int) -> None:
    from level4_retraining.monitoring import monitor

    with pytest.raises(ValueError, match="no logged predictions for flights of 2013-11"):
        monitor("2013-11")
