"""The monitoring flow: one window of logged predictions, measured, decided, recorded.

A window is the flights of one month (``YYYY-MM``) or ISO week (``YYYY-Www``), by scheduled
date (``windows.py``). Its features are
compared with the champion's reference sample (kept with its training run), its logged
probabilities with the ground truth once flights have landed, and the drift policy decides.
Each decision is kept with its reason: in ``reports/level4/history.jsonl``, in an MLflow run of
the ``flight-delay-monitoring`` experiment, and in the window's Evidently report.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sklearn.metrics import roc_auc_score

from level1_devops.features import LABEL_COLUMN, build_features
from level1_devops.settings import Settings
from level2_training.data import TrainingDataError
from level2_training.params import load_registry_params, load_train_params
from level2_training.registry import CHAMPION
from level2_training.tracking import REFERENCE_ARTIFACT, use_tracking
from level4_retraining.feedback import join_ground_truth
from level4_retraining.monitor import add_to_workspace, feature_drift
from level4_retraining.params import MonitorParams, load_monitor_params
from level4_retraining.policy import Decision, DriftPolicy, WindowResult
from level4_retraining.prediction_log import read_predictions
from level4_retraining.retrain import RetrainOutcome, alert, retrain_and_release
from level4_retraining.status import history_lines, history_path
from level4_retraining.windows import in_window, month_of, window_kind, windows_of

EXPERIMENT = "flight-delay-monitoring"


@dataclass
class MonitorOutcome:
    result: WindowResult
    decision: Decision
    report_path: Path
    retrain: RetrainOutcome | None = None


def read_history(settings: Settings) -> list[WindowResult]:
    return [WindowResult(**line["result"]) for line in history_lines(settings)]


def latest_window(settings: Settings) -> str:
    """The newest window (of the kind `monitor.window` names) with logged predictions.

    Raises:
        ValueError: nothing is logged yet.
    """
    logged = read_predictions(settings.predictions_dir)
    if logged.empty:
        raise ValueError(f"no logged predictions in {settings.predictions_dir}: run the "
                         "service (`make serve`) and send it flights first")
    kind = load_monitor_params(settings.project_dir).window
    return str(windows_of(logged, kind).max())


@task(cache_policy=NO_CACHE)
def load_window(settings: Settings, window: str) -> pd.DataFrame:
    """Logged predictions for the flights of ``window``."""
    logged = read_predictions(settings.predictions_dir)
    if logged.empty:
        return logged
    return logged[in_window(logged, window)].reset_index(drop=True)


@task(cache_policy=NO_CACHE)
def load_reference(client: Any, model_name: str) -> tuple[pd.DataFrame, float | None, str]:
    """The champion's reference sample, its holdout ROC AUC and its version."""
    import mlflow

    champion = client.get_model_version_by_alias(model_name, CHAMPION)
    with tempfile.TemporaryDirectory() as tmp:
        path = mlflow.artifacts.download_artifacts(
            run_id=champion.run_id, artifact_path=REFERENCE_ARTIFACT, dst_path=tmp,
            tracking_uri=client.tracking_uri)
        reference = pd.read_parquet(path)
    auc = client.get_run(champion.run_id).data.metrics.get("holdout_roc_auc")
    return reference, auc, str(champion.version)


@task(cache_policy=NO_CACHE)
def measure(settings: Settings, window: str, predictions: pd.DataFrame,
            reference: pd.DataFrame, reference_auc: float | None,
            params: MonitorParams) -> tuple[WindowResult, Any]:
    """Drift against the reference and, once flights landed, ROC AUC of the logged scores."""
    feedback = join_ground_truth(predictions, settings.raw_dir,
                                 load_train_params(settings.project_dir).features)
    labelled = feedback.labelled
    auc = None
    if len(labelled) >= params.min_samples and labelled[LABEL_COLUMN].nunique() == 2:
        auc = float(roc_auc_score(labelled[LABEL_COLUMN], labelled["probability"]))
        # Labels are in: the report covers the labelled predictions, with performance.
        current = build_features(labelled).assign(
            probability=labelled["probability"].to_numpy(),
            is_late=labelled[LABEL_COLUMN].to_numpy())
    else:
        current = build_features(predictions).assign(
            probability=predictions["probability"].to_numpy())
    drift = feature_drift(reference, current, params.ignore_columns)
    return WindowResult(window, len(predictions), drift.share, auc, reference_auc,
                        prediction_drift=drift.prediction_drift,
                        n_unmatched=feedback.n_unmatched), drift


@task(cache_policy=NO_CACHE)
def record(settings: Settings, result: WindowResult, decision: Decision, drift: Any,
           champion_version: str, retrain: RetrainOutcome | None = None) -> Path:
    """Keep the decision with its reason: history file, MLflow run, Evidently report."""
    import mlflow

    folder = settings.reports_dir / "level4" / "windows"
    # The decision and its reason name the report (its title in the HTML and in the UI).
    drift.snapshot.set_name(f"{result.window}: {decision.action} ({decision.reason})"[:250])
    html, js = drift.save(folder, result.window, asdict(decision))
    add_to_workspace(settings.evidently_dir, settings.monitoring_project, drift.snapshot)
    line = {"result": asdict(result), "decision": asdict(decision), "champion": champion_version,
            "retrain": asdict(retrain) if retrain else None}
    path = history_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps(line) + "\n")
    mlflow.set_experiment(EXPERIMENT)
    with mlflow.start_run(run_name=f"window-{result.window}"):
        optional = {"roc_auc": result.roc_auc, "prediction_drift": result.prediction_drift}
        mlflow.log_metrics({"drift_share": result.drift_share, "n": float(result.n),
                            "n_unmatched": float(result.n_unmatched),
                            **{k: v for k, v in optional.items() if v is not None}})
        mlflow.set_tags({"window": result.window, "decision": decision.action,
                         "reason": decision.reason[:5000], "champion_version": champion_version})
        mlflow.log_artifact(str(html), "evidently")
        mlflow.log_artifact(str(js), "evidently")
    return html


@flow(name="monitor", log_prints=True)
def monitor(window: str, policy_params: MonitorParams | None = None) -> MonitorOutcome:
    """Measure one window, decide with the drift policy, record the decision and its reason;
    when the policy says retrain, retrain, certify and (maybe) promote, by itself."""
    from mlflow import MlflowClient

    window_kind(window)  # a clear error for a malformed window, before any work
    settings = Settings()
    use_tracking(settings)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    model_name = load_registry_params(settings.project_dir).model_name
    predictions = load_window(settings, window)
    if predictions.empty:
        raise ValueError(f"no logged predictions for flights of {window}")
    reference, reference_auc, champion = load_reference(client, model_name)
    policy = DriftPolicy(policy_params or load_monitor_params(settings.project_dir))
    result, drift = measure(settings, window, predictions, reference, reference_auc,
                            policy.params)
    decision = policy.decide([*read_history(settings), result])
    retrain = None
    if decision.action == "retrain":
        try:
            retrain = retrain_and_release(settings, month_of(window),
                                          f"drift policy: {decision.reason}",
                                          policy.params.retrain_train_periods)
        except TrainingDataError as err:  # not enough labelled history yet: say so, go on
            alert(settings, f"retrain after {window} could not run: {err}")
            retrain = RetrainOutcome("failed", None, str(err))
        # The window is marked only once a retrain really ran (cooldown counts from it).
        result = replace(result, retrained=retrain.status in {"promoted", "refused"})
    report = record(settings, result, decision, drift, champion, retrain)
    get_run_logger().info("%s: %s (%s)%s", window, decision.action, decision.reason,
                          f"; retrain: {retrain.status} {retrain.detail}" if retrain else "")
    return MonitorOutcome(result, decision, report, retrain)


@flow(name="monitor-latest", log_prints=True)
def monitor_latest() -> MonitorOutcome:
    """The scheduled run: monitor the newest window of the prediction log."""
    return monitor(latest_window(Settings()))
