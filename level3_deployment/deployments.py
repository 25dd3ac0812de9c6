"""Entry flows for Prefect deployments: a deployment's run starts in a fresh process, so these
build the settings (from the environment) and the params (from params.yaml) themselves, once,
and hand them to the library flows."""

from __future__ import annotations

from prefect import flow

from level1_devops.settings import load_settings
from level2_training.orchestration import configure_process
from level3_deployment.batch import BatchScores, batch_score
from level3_deployment.params import DeploymentParams


@flow(name="scheduled-batch-score", log_prints=True)
def scheduled_batch_score(period: str | None = None) -> BatchScores:
    """The scheduled run of `batch-score`: one period (default: the newest ingested) scored
    by @champion, with this checkout's settings and params.yaml."""
    settings = load_settings()
    configure_process(settings)
    params = DeploymentParams.load(settings.project_dir)
    return batch_score(settings, params.model_name, period)
