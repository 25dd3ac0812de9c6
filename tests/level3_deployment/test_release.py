"""Certification, promotion and rollback against a real MLflow registry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from mlflow import MlflowClient

from level1_devops.settings import Settings
from level3_deployment.loading import version_for_alias
from level3_deployment.release import ReleaseError, certify, promote, rollback
from tests.helpers import context, make
from tests.level3_deployment.conftest import set_champion

pytestmark = pytest.mark.slow


def client() -> MlflowClient:
    return MlflowClient(tracking_uri=Settings().tracking_uri)


def champion() -> str | None:
    return version_for_alias(client(), "flight-delay", "champion")


def test_a_sound_model_passes_every_check_and_the_report_is_kept(trained: Any) -> None:
    report = certify(*context(), trained.version)
    assert report.passed, report.to_markdown()
    names = {c.name for c in report.checks}
    assert {"loads_with_service_loader", "schema_compatibility", "holdout_roc_auc",
            "holdout_log_loss", "invariance", "directional_bad_weather", "slice_origin_JFK",
            "p95_single_row_latency_ms", "model_size_mb"} <= names
    folder = Settings().certification_dir
    saved = json.loads((folder / f"flight-delay-v{trained.version}.json").read_text())
    assert saved["passed"] is True
    version = client().get_model_version("flight-delay", trained.version)
    assert version.tags["certification"] == "passed"
    logged = {a.path for a in client().list_artifacts(version.run_id, "certification")}
    assert f"certification/flight-delay-v{trained.version}.md" in logged


def test_a_model_trained_on_shuffled_labels_is_refused(trained: Any, broken_version: str) -> None:
    set_champion(trained.version)
    with pytest.raises(ReleaseError, match=r"holdout_roc_auc: 0\.\d+ \(needs >= 0.58\)"):
        promote(*context(), broken_version)
    assert champion() == trained.version
    failed = client().get_model_version("flight-delay", broken_version).tags
    assert "holdout_roc_auc" in failed["certification.failed"]


def test_a_schema_incompatible_model_is_refused(trained: Any, incompatible_version: str) -> None:
    set_champion(trained.version)
    report = certify(*context(), incompatible_version)
    assert [c.name for c in report.failed] == ["schema_compatibility"]
    assert "not used: visib" in report.failed[0].detail
    with pytest.raises(ReleaseError, match="schema_compatibility"):
        promote(*context(), incompatible_version)
    assert champion() == trained.version


def test_a_model_the_service_cannot_load_is_refused(trained: Any,
                                                    unloadable_version: str) -> None:
    report = certify(*context(), unloadable_version)
    assert [c.name for c in report.failed] == ["loads_with_service_loader"]
    assert "untrusted types: copy.copy" in report.failed[0].detail


def test_promote_then_rollback_restores_the_previous_champion(trained: Any,
                                                              good_version: str) -> None:
    set_champion(trained.version)
    report, previous = promote(*context(), good_version, reason="test: better seed")
    assert report.passed and previous == trained.version and champion() == good_version
    tags = client().get_model_version("flight-delay", good_version).tags
    assert tags["promoted.previous_champion"] == trained.version
    assert tags["promoted.reason"] == "test: better seed" and tags["promoted.by"]
    assert tags["promoted.at"].startswith("20")
    assert rollback(*context(), reason="test: undo") == (good_version, trained.version)
    assert champion() == trained.version
    restored = client().get_model_version("flight-delay", trained.version).tags
    assert restored["rolled_back_to.previous_champion"] == good_version
    assert restored["rolled_back_to.reason"] == "test: undo"


def test_the_fast_path_agrees_with_the_pipeline_on_real_flights(trained: Any) -> None:
    import numpy as np

    from level1_devops.features import build_features
    from level1_devops.schema import REQUEST_COLUMNS as REQUEST_FIELDS
    from level2_training.data import load_periods
    from level3_deployment.loading import load_version

    loaded = load_version(client(), "flight-delay", trained.version)
    assert loaded.fast is not None
    flights = load_periods(Settings().raw_dir, ["2013-04"]).head(500)
    records = flights[list(REQUEST_FIELDS)].astype(object).where(
        flights[list(REQUEST_FIELDS)].notna(), None).to_dict(orient="records")
    np.testing.assert_allclose(loaded.fast.predict_proba(records),
                               loaded.predict_proba(build_features(flights)), rtol=0, atol=1e-12)


def test_the_workshop_exercise_promote_then_rollback_with_make(trained: Any, good_version: str,
                                                               l2_project: Any) -> None:
    """Level 3's exercise, as typed: `make promote VERSION=n`, then `make rollback`."""
    set_champion(trained.version)
    done = make("promote", f"VERSION={good_version}", project=l2_project)
    assert champion() == good_version, done.stdout
    done = make("rollback", project=l2_project)
    assert champion() == trained.version, done.stdout
    assert client().get_model_version("flight-delay", trained.version).tags[
        "rolled_back_to.reason"] == "make rollback"
