"""The retraining loop's action against the real registry: one at a time, crash-safe."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from mlflow import MlflowClient

from level1_devops.settings import Settings
from level2_training.data import TrainingDataError
from level2_training.params import windows_ending
from level3_deployment.loading import version_for_alias
from level4_retraining.retrain import retrain_and_release, single_retrain
from tests.helpers import context
from tests.level3_deployment.conftest import set_champion

pytestmark = pytest.mark.slow


def aliases() -> dict[str, str]:
    model = MlflowClient(tracking_uri=Settings().tracking_uri).get_registered_model("flight-delay")
    return {k: str(v) for k, v in model.aliases.items()}


def test_retrain_windows_end_at_the_latest_labelled_period() -> None:
    assert windows_ending("2013-07", 3) == {
        "train_from": "2013-03", "train_to": "2013-05", "validation_from": "2013-06",
        "validation_to": "2013-06", "holdout_from": "2013-07", "holdout_to": "2013-07"}


def test_a_second_trigger_while_one_runs_is_skipped(trained: Any, prefect_server: str) -> None:
    settings, params = context()
    held, release = threading.Event(), threading.Event()

    def busy() -> None:
        with single_retrain(settings) as mine:
            assert mine
            held.set()
            release.wait(30)

    worker = threading.Thread(target=busy)
    worker.start()
    try:
        assert held.wait(10)
        before = aliases()
        outcome = retrain_and_release(settings, params, "2013-05", "test: concurrent trigger")
        assert outcome.status == "skipped" and aliases() == before
    finally:
        release.set()
        worker.join()


def test_a_crash_midway_changes_no_alias_and_the_next_run_recovers(trained: Any,
                                                                    prefect_server: str) -> None:
    settings, params = context()
    set_champion(trained.version)
    before = aliases()
    with pytest.raises(TrainingDataError, match="periods not ingested"):
        retrain_and_release(settings, params, "2013-09", "test: window not there")  # in train
    assert aliases() == before
    started = time.monotonic()
    outcome = retrain_and_release(settings, params, "2013-05", "test: recovery")  # lock released
    assert outcome.status in {"promoted", "refused"}, outcome
    assert time.monotonic() - started < 300
    champion = version_for_alias(MlflowClient(tracking_uri=settings.tracking_uri),
                                 "flight-delay", "champion")
    if outcome.status == "promoted":
        assert champion == outcome.version
    else:
        assert champion == trained.version
    set_champion(trained.version)
