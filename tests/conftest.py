"""Session-wide fixtures: the real 2013 feed and small real slices of it."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from level1_devops.feed import default_feed_dir
from tests.helpers import make_dvc_project, run, write_feed


def pytest_configure(config: pytest.Config) -> None:
    """Before anything imports Prefect: a throw-away PREFECT_HOME and the project's defaults."""
    from level1_devops.settings import Settings
    from level2_training.orchestration import configure_process

    home = Path(tempfile.mkdtemp(prefix="mlops-tests-prefect-"))
    os.environ["PREFECT_HOME"] = str(home)
    configure_process(Settings(prefect_home=home))  # the test session is an entry point


@pytest.fixture(scope="session")
def real_feed_dir() -> Path:
    return default_feed_dir()


@pytest.fixture(scope="session")
def real_flights(real_feed_dir: Path) -> pd.DataFrame:
    return pd.read_csv(real_feed_dir / "flights.csv.zip")


@pytest.fixture(scope="session")
def real_weather(real_feed_dir: Path) -> pd.DataFrame:
    return pd.read_csv(real_feed_dir / "weather.csv")


@pytest.fixture(scope="session")
def small_flights(real_flights: pd.DataFrame) -> pd.DataFrame:
    """600 real flights from each of January-March, in file order."""
    months = real_flights[real_flights["month"].isin([1, 2, 3])]
    return months.groupby("month").sample(600, random_state=0).sort_index().reset_index(drop=True)


@pytest.fixture
def small_feed(tmp_path: Path, small_flights: pd.DataFrame, real_weather: pd.DataFrame) -> Path:
    return write_feed(tmp_path / "feed", small_flights, real_weather)


@pytest.fixture(scope="session")
def level0_handoff(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Execute the Level 0 notebook once, on a 10% sample, into a temporary MLflow and models dir.

    Returns the folder holding the handed-off model file and its note.
    """

    from tests.helpers import make

    out = tmp_path_factory.mktemp("level0")
    # Through the make target (the workshop's Level 0 exercise), on a 10% sample.
    make("level0", f"LEVEL0_ARGS=-p SAMPLE_FRAC=0.1 "
                   f"-p MLFLOW_TRACKING_URI=sqlite:///{out / 'mlflow.db'} "
                   f"-p MLFLOW_ARTIFACTS_DIR={out / 'artifacts'} "
                   f"-p MODELS_DIR={out / 'models'} --output {out / 'executed.ipynb'}")
    return out


# One Prefect API, one small real project and one trained model for the whole session:
# Levels 2, 3 and 4 build on them.
SMALL_TRAIN = {
    "train_from": "2013-01", "train_to": "2013-02",
    "validation_from": "2013-03", "validation_to": "2013-03",
    "holdout_from": "2013-04", "holdout_to": "2013-04",
    "seed": 7, "decision_threshold": 0.3,
    "model": {"max_iter": 40, "learning_rate": 0.1, "max_leaf_nodes": 15, "min_samples_leaf": 20},
}


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[str]:
    """One real Prefect API (on the session's temporary PREFECT_HOME) shared by every flow."""
    from level2_training.orchestration import prefect_api

    with prefect_api() as url:
        yield url


@pytest.fixture(scope="session")
def l2_project(tmp_path_factory: pytest.TempPathFactory, real_flights: pd.DataFrame,
               real_weather: pd.DataFrame) -> Iterator[Path]:
    """A DVC project whose feed is 2,000 real flights a month for January-May.

    ``MLOPS_PROJECT_DIR`` points at it for the session, as it would for a fork.
    """
    root = tmp_path_factory.mktemp("l2")
    months = real_flights[real_flights["month"].between(1, 5)]
    flights = months.groupby("month").sample(2000, random_state=1).sort_index()
    feed = write_feed(root / "feed", flights, real_weather)
    project = make_dvc_project(root / "project")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["train"] = {**params["train"], **SMALL_TRAIN}
    params["tune"] = {"candidates": [{"learning_rate": 0.05}, {"max_leaf_nodes": 31}]}
    # A small slice makes a weaker model: the gate's floors are scaled to it.
    params["certify"] = {**params["certify"], "min_roc_auc": 0.58, "max_log_loss": 0.7,
                         "slice_min_roc_auc": 0.5}
    # Five months of history: a retrain fits on one; drift alone warns (tests that need a
    # retrain say so with their own policy).
    params["monitor"] = {**params["monitor"], "retrain_train_periods": 1, "drift_severity": "warn"}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init"],
        project)
    saved = {k: os.environ.get(k) for k in ("MLOPS_PROJECT_DIR", "MLOPS_FEED_DIR")}
    os.environ.update({"MLOPS_PROJECT_DIR": str(project), "MLOPS_FEED_DIR": str(feed)})
    yield project
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def trained(prefect_server: str, l2_project: Path):
    """The train flow, run once for the session."""
    from level2_training.flows import train
    from level2_training.params import TrainingParams
    from tests.helpers import context

    return train(*context(TrainingParams))
