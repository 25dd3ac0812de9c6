"""The monitoring flow on a real window: real Prefect, MLflow, Evidently, logged predictions."""

from __future__ import annotations

import html
import json
from typing import Any

import pandas as pd
import pytest
from mlflow import MlflowClient

from level1_devops.schema import REQUEST_COLUMNS as REQUEST_FIELDS
from level1_devops.settings import Settings
from level2_training.data import load_periods
from level4_retraining.prediction_log import PredictionLog
from tests.helpers import context, context_with
from tests.level3_deployment.conftest import set_champion

pytestmark = pytest.mark.slow


def log_period(period: str, version: str) -> int:
    """A version's predictions for a period's flights, logged as the service logs them."""
    from level1_devops.feed import Feed
    from level1_devops.ingest import ingest
    from level3_deployment.loading import load_version

    settings = Settings()
    ingest(Feed(settings.feed_dir), settings.raw_dir, settings.quarantine_dir, until=period)
    champion = load_version(MlflowClient(tracking_uri=settings.tracking_uri), "flight-delay",
                            version)
    flights = load_periods(settings.raw_dir, [period])[list(REQUEST_FIELDS)]
    records = flights.astype(object).where(flights.notna(), None).to_dict(orient="records")
    probabilities = champion.predict_records(records)
    log = PredictionLog(settings.predictions_dir)
    log.record(f"{period}-logged", champion, records, [float(p) for p in probabilities])
    return log.flush()


@pytest.fixture(scope="module")
def logged_march(trained: Any, prefect_server: str) -> int:
    """The champion's predictions for March's 2,000 flights."""
    set_champion(trained.version)
    return log_period("2013-03", trained.version)


def test_a_window_is_measured_decided_and_recorded(logged_march: int) -> None:
    from level4_retraining.monitor_flow import monitor

    outcome = monitor(*context(), "2013-03")
    result = outcome.result
    assert result.n == logged_march == 2000
    assert result.roc_auc is not None and 0.55 < result.roc_auc < 0.95  # labels joined
    assert 0 <= result.drift_share <= 1 and result.reference_auc is not None
    assert outcome.decision.action in {"none", "warn"} and outcome.decision.reason
    lines = Settings().history_path.read_text().splitlines()
    assert json.loads(lines[-1])["decision"]["action"] == outcome.decision.action
    assert outcome.report_path.stat().st_size > 100_000  # the Evidently HTML report
    # The report opens with the decision and its reason.
    assert html.escape(outcome.decision.reason) in outcome.report_path.read_text()
    assert json.loads(outcome.report_path.with_suffix(".json").read_text())["decision"] == {
        "action": outcome.decision.action, "reason": outcome.decision.reason}
    assert result.prediction_drift is not None and result.n_unmatched == 0
    kinds = {m["config"]["type"].rsplit(":", 1)[-1] for m in json.loads(
        outcome.report_path.with_suffix(".json").read_text())["metrics"]}
    # feature drift, prediction drift, classification, data quality
    assert {"DriftedColumnsCount", "ValueDrift", "RocAuc", "MissingValueCount"} <= kinds
    from evidently.ui.workspace import Workspace

    space = Workspace(str(Settings().evidently_dir))
    project = space.search_project(Settings().monitoring_project)[0]
    assert len(space.list_runs(project.id)) >= 1  # what `make evidently-ui` shows
    client = MlflowClient(tracking_uri=Settings().tracking_uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("flight-delay-monitoring").experiment_id])
    assert runs[0].data.tags["decision"] == outcome.decision.action
    assert "drift_share" in runs[0].data.metrics


def test_a_window_without_predictions_is_an_error(logged_march: int) -> None:
    from level4_retraining.monitor_flow import monitor

    with pytest.raises(ValueError, match="no logged predictions for flights of 2013-11"):
        monitor(*context(), "2013-11")


def test_a_retrain_decision_retrains_certifies_and_releases_by_itself(
        trained: Any, logged_march: int) -> None:
    """Thresholds set so that May must retrain: the flow trains, certifies, maybe promotes."""
    from level4_retraining.monitor_flow import monitor
    from level4_retraining.params import MonitorParams

    set_champion(trained.version)
    log_period("2013-05", trained.version)
    eager = MonitorParams(drift_share_threshold=0.01, drift_severity="retrain", k_consecutive=1,
                          cooldown_windows=0, min_samples=100, retrain_train_periods=1)
    outcome = monitor(*context_with(eager), "2013-05")
    assert outcome.decision.action == "retrain"
    assert outcome.retrain is not None and outcome.retrain.status in {"promoted", "refused"}
    last = json.loads(Settings().history_path.read_text().splitlines()[-1])
    assert last["result"]["retrained"] is True and last["result"]["window"] == "2013-05"
    champion = MlflowClient(tracking_uri=Settings().tracking_uri).get_model_version_by_alias(
        "flight-delay", "champion").version
    expected = outcome.retrain.version if outcome.retrain.status == "promoted" else (
        trained.version)
    assert str(champion) == expected
    set_champion(trained.version)


def test_status_and_metrics_show_the_monitoring_history(trained: Any, logged_march: int) -> None:
    from fastapi.testclient import TestClient

    from level4_retraining.logged_service import create_app
    from level4_retraining.monitor_flow import monitor
    from level4_retraining.status import monitoring_status

    monitor(*context(), "2013-03")
    state = monitoring_status(Settings())
    assert state["windows"] >= 1 and state["last_window"] == "2013-03"
    assert state["last_decision"]["action"] in {"none", "warn"}
    with TestClient(create_app(Settings()), base_url="http://127.0.0.1") as service:
        text = service.get("/metrics").text
    assert f"mlops_monitor_drift_share {state['drift_share']}" in text.replace("e-0", "e-0")
    assert "mlops_monitor_retrains" in text


def test_a_retrain_that_cannot_run_is_recorded_with_an_alert(trained: Any,
                                                              logged_march: int) -> None:
    """Too little labelled history for the retrain window: the decision is kept, an alert
    says why, the champion stays, and the window does not start a cooldown."""
    from level4_retraining.monitor_flow import monitor
    from level4_retraining.params import MonitorParams

    set_champion(trained.version)
    eager = MonitorParams(drift_share_threshold=0.01, drift_severity="retrain", k_consecutive=1,
                          cooldown_windows=0, min_samples=100, retrain_train_periods=6)
    outcome = monitor(*context_with(eager), "2013-03")
    assert outcome.decision.action == "retrain"
    assert outcome.retrain is not None and outcome.retrain.status == "failed"
    assert "periods not ingested" in outcome.retrain.detail
    last = json.loads(Settings().history_path.read_text().splitlines()[-1])
    assert last["retrain"]["status"] == "failed" and last["result"]["retrained"] is False
    alerts = Settings().alerts_path.read_text().splitlines()
    assert "could not run" in json.loads(alerts[-1])["message"]
    champion = MlflowClient(tracking_uri=Settings().tracking_uri).get_model_version_by_alias(
        "flight-delay", "champion").version
    assert str(champion) == str(trained.version)


def test_a_week_is_a_window_too(logged_march: int) -> None:
    """ISO week 10 of 2013 (March 4-10): only its flights, too few to decide anything."""
    from level4_retraining.monitor_flow import monitor
    from level4_retraining.prediction_log import read_predictions

    logged = read_predictions(Settings().predictions_dir)
    dates = pd.to_datetime(logged[["year", "month", "day"]].astype(int))
    expected = int(dates.between("2013-03-04", "2013-03-10").sum())
    outcome = monitor(*context(), "2013-W10")
    assert outcome.result.window == "2013-W10" and outcome.result.n == expected > 0
    assert outcome.decision.action == "skip" and "min_samples" in outcome.decision.reason
    with pytest.raises(ValueError, match="expected YYYY-MM"):
        monitor(*context(), "March")
