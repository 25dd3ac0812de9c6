"""Entry flows for Prefect deployments: a deployment's run starts in a fresh process, so these
build the settings (from the environment) and the params (from params.yaml) themselves, once,
and hand them to the library flows."""

from __future__ import annotations

from prefect import flow

from level1_devops.settings import load_settings
from level2_training.flows import TrainResult, train
from level2_training.orchestration import configure_process
from level2_training.params import TrainingParams


@flow(name="scheduled-train", log_prints=True)
def scheduled_train() -> TrainResult:
    """The scheduled run of `train`, with this checkout's settings and params.yaml."""
    settings = load_settings()
    configure_process(settings)
    return train(settings, TrainingParams.load(settings.project_dir))
