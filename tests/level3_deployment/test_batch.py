"""Batch scoring from the registry: real MLflow registry, real Prefect flow, real files."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.helpers import context, mlops
from tests.level3_deployment.conftest import move_alias_by_hand, set_champion

pytestmark = pytest.mark.slow


def test_the_newest_period_is_scored_by_the_certified_champion(trained: Any) -> None:
    from level1_devops.features import build_features
    from level1_devops.score import PROBABILITY_COLUMN
    from level2_training.tracking import client
    from level3_deployment.batch import VERSION_COLUMN, batch_score, scores_path
    from level3_deployment.loading import load_version

    set_champion(trained.version)
    settings, params = context()
    result = batch_score(settings, params.model_name)
    newest = sorted(p.stem for p in settings.raw_dir.glob("*.parquet"))[-1]
    assert result.period == newest and result.version == trained.version
    assert result.output_path == scores_path(settings, newest, trained.version)
    assert result.output_path.name == f"scores-{newest}-v{trained.version}.parquet"
    assert result.output_path.is_relative_to(settings.reports_dir)

    scores = pd.read_parquet(result.output_path)
    flights = pd.read_parquet(settings.raw_dir / f"{newest}.parquet")
    assert len(scores) == len(flights) == result.n_scored > 0
    assert set(scores[VERSION_COLUMN]) == {trained.version}
    # The very probabilities the service's loader gives for the registered version.
    loaded = load_version(client(settings), params.model_name, trained.version)
    expected = loaded.predict_proba(build_features(flights))
    np.testing.assert_allclose(scores[PROBABILITY_COLUMN].to_numpy(), expected, rtol=1e-12)


def test_mlops_batch_score_names_the_version_in_its_output(trained: Any, l2_project) -> None:
    set_champion(trained.version)
    done = mlops(l2_project, "batch-score", "--period", "2013-03")
    out = l2_project / "local" / "reports" / "level3" / "batch" / (
        f"scores-2013-03-v{trained.version}.parquet")
    assert f"flight-delay v{trained.version}" in done.stdout and str(out) in done.stdout
    assert set(pd.read_parquet(out)["model_version"]) == {trained.version}

    helped = mlops(l2_project, "batch-score", "--help")
    assert "--period" in helped.stdout and "@champion" in helped.stdout


def test_a_champion_the_service_would_refuse_scores_nothing(trained: Any, good_version: str,
                                                           l2_project) -> None:
    """An alias moved by hand (no certification, no release record) is refused, as the
    service refuses it; nothing is written."""
    from level3_deployment.batch import batch_score
    from level3_deployment.loading import ModelLoadError

    settings, params = context()
    before = sorted(settings.batch_scores_dir.glob("*"))
    move_alias_by_hand(good_version)
    try:
        with pytest.raises(ModelLoadError, match="not certified|release record"):
            batch_score(settings, params.model_name, "2013-02")
        failed = mlops(l2_project, "batch-score", "--period", "2013-02", check=False)
        assert failed.returncode == 1 and "Nothing was written" in failed.stderr
    finally:
        set_champion(trained.version)
    after = sorted(settings.batch_scores_dir.glob("*"))
    assert after == before


def test_a_period_that_is_not_ingested_is_refused_before_any_loading(trained: Any) -> None:
    from level3_deployment.batch import batch_score

    settings, params = context()
    with pytest.raises(ValueError, match="period '2013-11' is not ingested"):
        batch_score(settings, params.model_name, "2013-11")
