"""Entry flows for Prefect deployments: a deployment's run starts in a fresh process, so these
build the settings (from the environment) and the params (from params.yaml) themselves, once,
and hand them to the library flows."""

from __future__ import annotations

from prefect import flow

from level1_devops.settings import load_settings
from level2_training.orchestration import configure_process
from level4_retraining.monitor_flow import MonitorOutcome, latest_window, monitor
from level4_retraining.params import RetrainingParams


@flow(name="monitor-latest", log_prints=True)
def monitor_latest() -> MonitorOutcome:
    """The scheduled run: the newest window of the prediction log, with this checkout's
    settings and params.yaml; a retrain follows by itself when the policy says so."""
    settings = load_settings()
    configure_process(settings)
    params = RetrainingParams.load(settings.project_dir)
    return monitor(settings, params, latest_window(settings, params.monitor.window))
