"""Level 2 fixtures: one Prefect API and one small real project for the whole session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.helpers import make_dvc_project, run, write_feed

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

    return train()
