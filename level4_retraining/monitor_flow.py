"""The monitoring flow: one window of logged predictions, measured, decided, recorded.

A window is the flights of one month (``YYYY-MM``) or ISO week (``YYYY-Www``), by scheduled
date (``windows.py``). Its features are
compared with the champion's reference sample (kept with its training run), its logged
probabilities with the ground truth once flights have landed, and the drift policy decides.
Each decision is kept with its reason: in the history (``reports/level4/history.jsonl``, or
PostgreSQL in the team profile: ``shared_state``), in an MLflow run of
the ``flight-delay-monitoring`` experiment, and in the window's Evidently report.

``monitor(settings, params, window)`` is the flow; ``deployments.monitor_latest`` is the entry
flow of the scheduled deployment.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from sklearn.metrics import roc_auc_score

from level1_devops.features import LABEL_COLUMN, FeatureParams, build_features
from level1_devops.schema import RECORDS_NAME
from level1_devops.settings import Settings
from level2_training.data import TrainingDataError
from level2_training.registry import CHAMPION
from level2_training.tracking import (
    PROBABILITY_COLUMN,
    REFERENCE_ARTIFACT,
    experiment_name,
    use_tracking,
)
from level2_training.tracking import client as tracking_client
from level4_retraining.drift_report import add_to_workspace, feature_drift
from level4_retraining.feedback import join_ground_truth
from level4_retraining.params import MonitorParams, RetrainingParams
from level4_retraining.policy import Decision, DriftPolicy, WindowResult, per_window
from level4_retraining.retrain import RetrainOutcome, alert, retrain_and_release
from level4_retraining.shared_state import history_lines, log_location, read_logged, record_window
from level4_retraining.windows import WindowKind, in_window, month_of, window_kind, windows_of

MONITORING = "monitoring"  # the experiment of the monitored windows: <model name>-monitoring


@dataclass
class MonitorOutcome:
    result: WindowResult
    decision: Decision
    report_path: Path
    retrain: RetrainOutcome | None = None


def retrain_problem(outcome: MonitorOutcome) -> str | None:
    """Why a run must fail visibly although its window was recorded: the retrain the policy
    asked for was refused by certification, or could not run; None otherwise (a retrain
    skipped because another one runs is not a failure)."""
    retrain = outcome.retrain
    if retrain is None or retrain.status not in {"refused", "failed"}:
        return None
    what = (f"retrained v{retrain.version} was refused by certification"
            if retrain.status == "refused" else "the retrain could not run")
    return (f"{outcome.result.window}: the drift policy asked for a retrain and {what}: "
            f"{retrain.detail}. @champion is unchanged; the alert is recorded.")


def read_history(settings: Settings) -> list[WindowResult]:
    """The monitored windows, one result each (the latest), in time order (``per_window``)."""
    return per_window([WindowResult.from_record(line["result"])
                       for line in history_lines(settings)])


def latest_window(settings: Settings, kind: WindowKind) -> str:
    """The newest window of ``kind`` (`monitor.window`) with logged predictions.

    Raises:
        ValueError: nothing is logged yet.
    """
    logged = read_logged(settings)
    if logged.empty:
        raise ValueError(f"no logged predictions in {log_location(settings)}: run the "
                         f"service (`make serve`) and send it {RECORDS_NAME} first")
    return str(windows_of(logged, kind).max())


@task(cache_policy=NO_CACHE)
def load_window(settings: Settings, window: str) -> pd.DataFrame:
    """Logged predictions for the flights of ``window``."""
    logged = read_logged(settings)
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
            reference: pd.DataFrame, reference_auc: float | None, params: MonitorParams,
            features: FeatureParams) -> tuple[WindowResult, Any]:
    """Drift against the reference and, once the labels are in, ROC AUC of the logged scores."""
    feedback = join_ground_truth(predictions, settings.raw_dir, features)
    labelled = feedback.labelled
    auc = None
    if len(labelled) >= params.min_samples and labelled[LABEL_COLUMN].nunique() == 2:
        auc = float(roc_auc_score(labelled[LABEL_COLUMN], labelled[PROBABILITY_COLUMN]))
        # Labels are in: the report covers the labelled predictions, with performance.
        current = build_features(labelled).assign(**{
            PROBABILITY_COLUMN: labelled[PROBABILITY_COLUMN].to_numpy(),
            LABEL_COLUMN: labelled[LABEL_COLUMN].to_numpy()})
    else:
        current = build_features(predictions).assign(**{
            PROBABILITY_COLUMN: predictions[PROBABILITY_COLUMN].to_numpy()})
    drift = feature_drift(reference, current, params.ignore_columns)
    return WindowResult(window, len(predictions), drift.share, auc, reference_auc,
                        prediction_drift=drift.prediction_drift,
                        n_unmatched=feedback.n_unmatched), drift


@task(cache_policy=NO_CACHE)
def record(settings: Settings, model_name: str, result: WindowResult, decision: Decision,
           drift: Any, champion_version: str, retrain: RetrainOutcome | None = None) -> Path:
    """Keep the decision with its reason: history file, MLflow run, Evidently report."""
    import mlflow

    folder = settings.windows_dir
    # The decision and its reason name the report (its title in the HTML and in the UI).
    drift.snapshot.set_name(f"{result.window}: {decision.action} ({decision.reason})"[:250])
    html, js = drift.save(folder, result.window, asdict(decision))
    add_to_workspace(settings.evidently_dir, settings.monitoring_project, drift.snapshot)
    line = {"result": asdict(result), "decision": asdict(decision), "champion": champion_version,
            "retrain": asdict(retrain) if retrain else None}
    record_window(settings, line)
    # Created (when missing) with its artifacts under the project's state.
    use_tracking(settings, experiment_name(model_name, MONITORING))
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
def monitor(settings: Settings, params: RetrainingParams, window: str) -> MonitorOutcome:
    """Measure one window, decide with the drift policy (``params.monitor``), record the
    decision and its reason; when the policy says retrain, retrain, certify and (maybe)
    promote, by itself."""
    window_kind(window)  # a clear error for a malformed window, before any work
    use_tracking(settings, experiment_name(params.model_name))
    client = tracking_client(settings)
    predictions = load_window(settings, window)
    if predictions.empty:
        raise ValueError(f"no logged predictions for {RECORDS_NAME} of {window}")
    reference, reference_auc, champion = load_reference(client, params.model_name)
    policy = DriftPolicy(params.monitor)
    result, drift = measure(settings, window, predictions, reference, reference_auc,
                            policy.params, params.train.features)
    decision = policy.decide([*read_history(settings), result])
    retrain = None
    if decision.action == "retrain":
        try:
            retrain = retrain_and_release(settings, params, month_of(window),
                                          f"drift policy: {decision.reason}")
        except TrainingDataError as err:  # not enough labelled history yet: say so, go on
            alert(settings, f"retrain after {window} could not run: {err}")
            retrain = RetrainOutcome("failed", None, str(err))
        # The window is marked only once a retrain really ran (cooldown counts from it).
        result = replace(result, retrained=retrain.status in {"promoted", "refused"})
    report = record(settings, params.model_name, result, decision, drift, champion, retrain)
    get_run_logger().info("%s: %s (%s)%s", window, decision.action, decision.reason,
                          f"; retrain: {retrain.status} {retrain.detail}" if retrain else "")
    return MonitorOutcome(result, decision, report, retrain)
