"""Entry flows for Prefect deployments: a deployment's run starts in a fresh process, so these
build the settings (from the environment) and the params (from params.yaml) themselves, once,
and hand them to the library flows."""

from __future__ import annotations

from prefect import flow

from level1_devops.ingest import ingested_periods
from level1_devops.settings import load_settings
from level2_training.orchestration import configure_process
from level4_retraining.monitor_flow import (
    MonitorOutcome,
    latest_window,
    monitor,
    retrain_problem,
)
from level4_retraining.params import RetrainingParams
from level4_retraining.retrain import RetrainOutcome, retrain_and_release


@flow(name="monitor-latest", log_prints=True)
def monitor_latest() -> MonitorOutcome:
    """The scheduled run: the newest window of the prediction log, with this checkout's
    settings and params.yaml; a retrain follows by itself when the policy says so.

    Raises:
        RuntimeError: the policy's retrain was refused or could not run (the window and the
            alert are recorded): the run fails, so it shows in the Prefect UI.
    """
    settings = load_settings()
    configure_process(settings)
    params = RetrainingParams.load(settings.project_dir)
    outcome = monitor(settings, params, latest_window(settings, params.monitor.window))
    if problem := retrain_problem(outcome):
        raise RuntimeError(problem)
    return outcome


@flow(name="retrain-on-demand", log_prints=True)
def retrain_on_demand(period: str | None = None, reason: str = "on demand") -> RetrainOutcome:
    """Retrain on the history before ``period`` (default: the newest ingested), certify the
    new version against @champion on ``period``, promote it if it passes: what the monitor
    does when the policy says retrain, triggered by a person or another system.

    Raises:
        ValueError: nothing is ingested yet.
        RuntimeError: the new version was refused (the champion is unchanged, the alert
            recorded): the run fails, so the refusal shows in the Prefect UI.
    """
    settings = load_settings()
    configure_process(settings)
    params = RetrainingParams.load(settings.project_dir)
    periods = ingested_periods(settings.raw_dir)
    if period is None and not periods:
        raise ValueError(f"no ingested period in {settings.raw_dir}: run `mlops ingest` first")
    outcome = retrain_and_release(settings, params, period or periods[-1], reason)
    if outcome.status == "refused":
        raise RuntimeError(f"retrained v{outcome.version} refused, @champion unchanged: "
                           f"{outcome.detail}")
    return outcome
