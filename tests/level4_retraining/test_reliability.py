"""A corrupted batch through the live service and the feed: quarantined, never a retrain.

August's flights (a period no other test touches) are scored by the real uvicorn service,
with a third of the requests broken; then August's labels land through a feed in which a
third of the rows are broken. Level 1 quarantines those, the broken requests get a 4xx and
are never logged, and the monitor flow, under a policy that retrains on the first
performance breach, neither retrains nor moves the champion.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest
from mlflow import MlflowClient

from level1_devops.feed import Feed
from level1_devops.ingest import ingest, partition_path
from level1_devops.settings import Settings
from level2_training.data import load_periods
from level3_deployment.client import as_requests
from level4_retraining.params import MonitorParams
from level4_retraining.prediction_log import read_predictions
from tests.helpers import context_with, corrupt, write_feed
from tests.level3_deployment.conftest import LiveService, serve_app, set_champion

pytestmark = pytest.mark.slow
PERIOD = "2013-08"


@pytest.fixture(scope="module")
def logged_service(l2_project: Path, trained: Any,
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """Level 4's app (every prediction logged) under a real uvicorn."""
    yield from serve_app("level4", trained, tmp_path_factory)


@pytest.fixture(scope="module")
def august(real_flights: pd.DataFrame, real_weather: pd.DataFrame,
           tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """1,500 real August flights with their weather, as the service receives them."""
    sample = real_flights[real_flights["month"] == 8].sample(1500, random_state=3).sort_index()
    folder = tmp_path_factory.mktemp("august")
    feed = write_feed(folder / "feed", sample, real_weather)
    ingest(Feed(feed), folder / "raw", folder / "quarantine")
    return load_periods(folder / "raw", [PERIOD])


def test_a_corrupted_batch_is_quarantined_and_triggers_no_retrain(
        logged_service: LiveService, trained: Any, august: pd.DataFrame,
        real_flights: pd.DataFrame, real_weather: pd.DataFrame, tmp_path: Path) -> None:
    from level4_retraining.monitor_flow import monitor

    settings = Settings()
    set_champion(trained.version)
    client = MlflowClient(tracking_uri=settings.tracking_uri)
    versions_before = {v.version for v in client.search_model_versions("name='flight-delay'")}
    before = len(read_predictions(settings.predictions_dir))

    # The requests: every third one broken (six ways); each broken one gets a 4xx with a body.
    requests = pd.DataFrame(as_requests(august))
    broken, n_broken = corrupt(requests)
    statuses = []
    with httpx.Client(base_url=logged_service.base_url, timeout=30) as http:
        for record in broken.astype(object).where(broken.notna(), None).to_dict("records"):
            reply = http.post("/predict", json=record)
            statuses.append(reply.status_code)
            if reply.status_code != 200:
                assert 400 <= reply.status_code < 500 and reply.json()["detail"]
    n_ok = statuses.count(200)
    assert len(statuses) - n_ok == n_broken - 2  # the two duplicates are valid requests

    # The labels land through a feed with every third row broken: Level 1 quarantines them.
    month = real_flights[real_flights["month"] == 8]
    landed = month[month.set_index(["day", "carrier", "flight", "sched_dep_time"]).index.isin(
        august.set_index(["day", "carrier", "flight", "sched_dep_time"]).index)]
    # Shuffled: the broken labels are not those of the broken requests.
    feed_rows, n_bad_feed = corrupt(landed.sample(frac=1, random_state=5))
    feed = write_feed(tmp_path / "feed", feed_rows, real_weather)
    [result] = ingest(Feed(feed), settings.raw_dir, settings.quarantine_dir, until=PERIOD)
    assert result.n_quarantined == n_bad_feed and result.n_raw == len(feed_rows) - n_bad_feed
    quarantined = pd.read_parquet(partition_path(settings.quarantine_dir, PERIOD))
    assert quarantined["reason"].str.len().gt(0).all()

    # Every answered request is logged (the writer flushes every 2 s), no broken one.
    deadline = time.monotonic() + 30
    while len(read_predictions(settings.predictions_dir)) - before < n_ok:
        assert time.monotonic() < deadline, "the prediction log never caught up"
        time.sleep(0.2)

    retrain_on_first_breach = MonitorParams(k_consecutive=1, cooldown_windows=0,
                                            drift_severity="warn", min_samples=500,
                                            performance_drop_threshold=0.05)
    outcome = monitor(*context_with(retrain_on_first_breach), PERIOD)
    assert outcome.result.n == n_ok
    assert outcome.result.roc_auc is not None  # the performance breach was really measured
    # Predictions whose flight was quarantined stay, counted as unmatched.
    assert outcome.result.n_unmatched > 0
    assert outcome.decision.action != "retrain" and outcome.retrain is None, outcome.decision
    assert {v.version for v in client.search_model_versions("name='flight-delay'")} == (
        versions_before)
    assert str(client.get_model_version_by_alias("flight-delay", "champion").version) == (
        str(trained.version))
