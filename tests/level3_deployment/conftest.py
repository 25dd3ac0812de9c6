"""Level 3 fixtures: models registered on purpose (good, broken, incompatible) and services."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from level3_deployment.client import free_port, wait_ready

API_KEY = "test-admin-key-0123456789"


def register_model(model: Any, run_name: str, threshold: float = 0.3) -> str:
    """Log ``model`` like the train flow does and register it as a new version (@challenger)."""
    import mlflow

    from level1_devops.schema import EXAMPLE_RECORD
    from level1_devops.settings import Settings
    from level2_training.registry import register
    from level2_training.tracking import log_model, use_tracking
    from level3_deployment.loading import records_to_features

    use_tracking(Settings(), "flight-delay-training")
    example = records_to_features([EXAMPLE_RECORD])[list(model.feature_names_in_)]
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({"decision_threshold": threshold})
        info = log_model(model, example)
    return register(mlflow.MlflowClient(), "flight-delay", info.model_uri,
                    {"run_id": run.info.run_id, "test_model": run_name})


@pytest.fixture(scope="session")
def training_frame(l2_project: Path, trained: Any) -> tuple[Any, Any]:
    from level1_devops.features import build_features, build_label
    from level1_devops.settings import Settings
    from level2_training.data import load_periods

    flights = load_periods(Settings().raw_dir, ["2013-01", "2013-02"])
    return build_features(flights), build_label(flights)


def _fit(X: Any, y: Any, seed: int) -> Any:
    from level2_training.model import fit_model
    from level2_training.params import ModelParams

    return fit_model(X, y, ModelParams(max_iter=40, max_leaf_nodes=15, min_samples_leaf=20), seed)


@pytest.fixture(scope="session")
def good_version(training_frame: tuple[Any, Any]) -> str:
    """A second sound model (another seed and more trees): a certified alternative."""
    X, y = training_frame
    return register_model(_fit(X, y, seed=11), "good-alternative")


@pytest.fixture(scope="session")
def broken_version(training_frame: tuple[Any, Any]) -> str:
    """Trained on shuffled labels: it loads and answers, but knows nothing."""
    X, y = training_frame
    shuffled = y.sample(frac=1, random_state=3).reset_index(drop=True)
    return register_model(_fit(X, shuffled, seed=3), "shuffled-labels")


@pytest.fixture(scope="session")
def incompatible_version(training_frame: tuple[Any, Any]) -> str:
    """Trained without a column the request schema carries (visib)."""
    X, y = training_frame
    return register_model(_fit(X.drop(columns=["visib"]), y, seed=5), "no-visibility")


@pytest.fixture(scope="session")
def unloadable_version(trained: Any) -> str:
    """A model whose file needs a type outside the service's trusted list."""
    import copy

    import mlflow
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer

    from level1_devops.model_file import TRUSTED_TYPES
    from level1_devops.settings import Settings
    from level2_training.registry import register
    from level2_training.tracking import use_tracking
    from level3_deployment.loading import load_version

    use_tracking(Settings(), "flight-delay-training")
    inner = load_version(mlflow.MlflowClient(), "flight-delay", trained.version).model
    model = Pipeline([("copy", FunctionTransformer(copy.copy)), ("model", inner)])
    with mlflow.start_run(run_name="untrusted-type") as run:
        info = mlflow.sklearn.log_model(model, name="model", serialization_format="skops",
                                        skops_trusted_types=[*TRUSTED_TYPES, "copy.copy"],
                                        pip_requirements=["scikit-learn"])
    return register(mlflow.MlflowClient(), "flight-delay", info.model_uri,
                    {"run_id": run.info.run_id, "test_model": "untrusted-type"})


def set_champion(version: str) -> None:
    """Make a version @champion as `mlops promote` records it: certified (once per version;
    it must pass), then the release record and the alias."""
    from mlflow import MlflowClient

    from level3_deployment.loading import certified_as_registered, version_for_alias
    from level3_deployment.release import certify, move_champion
    from tests.helpers import context

    settings, params = context()
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    if not certified_as_registered(client.get_model_version("flight-delay", version).tags):
        report = certify(settings, params, version)
        assert report.passed, report.to_markdown()
    move_champion(client, "flight-delay", version, version_for_alias(
        client, "flight-delay", "champion"), "promoted", "test: set_champion")


def move_alias_by_hand(version: str) -> None:
    """Point @champion straight at a version, bypassing the gate, as an operator could."""
    from mlflow import MlflowClient

    from level1_devops.settings import Settings

    MlflowClient(tracking_uri=Settings().tracking_uri).set_registered_model_alias(
        "flight-delay", "champion", version)


@dataclass
class LiveService:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path


@pytest.fixture(scope="module")
def live_service(l2_project: Path, trained: Any,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """`mlops serve --app level3` under a real uvicorn, serving the session's trained model."""
    yield from serve_app("level3", trained, tmp_path_factory)


def serve_app(app: str, trained: Any,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """`mlops serve --app APP` under a real uvicorn, serving the session's trained model.

    Its output goes to a file: a pipe nobody reads fills up and blocks the server.
    """
    set_champion(trained.version)
    port = free_port()
    env = {**os.environ, "MLOPS_SERVICE_API_KEY": API_KEY}
    log_path = tmp_path_factory.mktemp("service") / "service.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "level1_devops.cli", "serve", "--app", app, "--port",
             str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT)
    service = LiveService(f"http://127.0.0.1:{port}", process, log_path)
    try:
        wait_ready(service.base_url)
        yield service
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
