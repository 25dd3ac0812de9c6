"""The small real project the team-profile tests run the loop on: a DVC project (git, DVC, the
repo's dvc.yaml and params.yaml) whose feed is 2,000 real flights a month for January-June,
with params small enough for a few minutes and a gate a retrain on that slice passes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from tests.conftest import SMALL_TRAIN
from tests.helpers import make_dvc_project, run, write_feed

MONTHS = ["2013-05", "2013-06"]  # scored through the service and monitored


def make_team_project(root: Path, real_flights: pd.DataFrame,
                      real_weather: pd.DataFrame) -> tuple[Path, Path]:
    """The project folder and its feed folder under ``root``."""
    months = real_flights[real_flights["month"].between(1, 6)]
    flights = months.groupby("month").sample(2000, random_state=3).sort_index()
    feed = write_feed(root / "feed", flights, real_weather)
    project = make_dvc_project(root / "project")
    params = yaml.safe_load((project / "params.yaml").read_text())
    # What the feed holds: a retrain's ingestion then pulls nothing new (a fresh runner's
    # checkout has only what DVC pulled).
    params["ingest"] = {**params["ingest"], "until": MONTHS[-1]}
    params["train"] = {**params["train"], **SMALL_TRAIN}
    # Four candidates: with one thread per Dask worker they spread over both workers.
    params["tune"] = {"candidates": [{"learning_rate": 0.05}, {"max_leaf_nodes": 31},
                                     {"learning_rate": 0.2}, {"min_samples_leaf": 40}]}
    params["certify"] = {**params["certify"], "min_roc_auc": 0.55, "max_log_loss": 0.75,
                         "slice_min_roc_auc": 0.45, "max_auc_drop": 0.2,
                         "max_log_loss_increase": 0.2,
                         # 2,000 flights a month: the weather scenarios are noisy on so few.
                         "min_directional_shift": -0.1,
                         # The gate times single rows while the service processes, the
                         # callers and every server share the 2 cores.
                         "max_p95_latency_ms": 250}
    params["monitor"] = {**params["monitor"], "retrain_train_periods": 2, "min_samples": 500}
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init"],
        project)
    return project, feed
