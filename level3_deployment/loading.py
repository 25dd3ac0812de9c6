"""The service's own model loader, also used by certification: what certifies is what serves.

A registered version is downloaded from MLflow, loaded with skops trusting only the project's
listed types (never MLflow's pickle path), checked for the inputs the feature builder makes,
and given one smoke prediction. Any failure raises ModelLoadError and nothing is returned.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from level1_devops.features import FEATURE_COLUMNS, build_features
from level1_devops.model_file import ModelFileError, load_model
from level1_devops.score import check_model_inputs
from level3_deployment.fastpath import FastScorer

MODEL_FILE = "model.skops"
DEFAULT_THRESHOLD = 0.5

# One real flight (2013-07-01, JFK to LAX) as the service receives it: the smoke test of
# every load and the example in the OpenAPI docs.
EXAMPLE_FLIGHT: dict[str, Any] = {
    "year": 2013, "month": 7, "day": 1, "carrier": "AA", "flight": 1, "origin": "JFK",
    "dest": "LAX", "distance": 2475, "hour": 9, "minute": 0, "sched_dep_time": 900,
    "temp": 80.06, "dewp": 66.02, "humid": 62.21, "wind_dir": 200.0, "wind_speed": 10.36,
    "wind_gust": None, "precip": 0.0, "pressure": 1012.4, "visib": 10.0,
}


class ModelLoadError(RuntimeError):
    """A version cannot be served: the message says which and why."""


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to serve, with where it came from."""

    model: Any
    name: str
    version: str
    run_id: str
    threshold: float
    size_bytes: int
    tags: dict[str, str] = field(default_factory=dict)
    fast: FastScorer | None = None

    def predict_proba(self, features: pd.DataFrame) -> np.ndarray:
        """P(late) for rows already built by the feature builder."""
        return np.asarray(self.model.predict_proba(features[self.input_columns])[:, 1])

    def predict_records(self, records: list[dict[str, Any]]) -> np.ndarray:
        """P(late) for validated request records: the fast path when it was verified."""
        if self.fast is not None:
            return self.fast.predict_proba(records)
        return self.predict_proba(records_to_features(records))

    @property
    def input_columns(self) -> list[str]:
        return list(getattr(self.model, "feature_names_in_", FEATURE_COLUMNS))


def records_to_features(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The feature builder's frame from request records (one place, for every route)."""
    frame = pd.DataFrame.from_records(records)
    return build_features(frame)


def probe_records() -> list[dict[str, Any]]:
    """Records that exercise the fast path's edges: unseen categories, missing weather."""
    return [EXAMPLE_FLIGHT,
            {**EXAMPLE_FLIGHT, "dest": "ZZZ", "carrier": "HA", "hour": 23, "minute": 59},
            {**EXAMPLE_FLIGHT, **{k: None for k in ("temp", "dewp", "humid", "wind_dir",
                                                     "wind_speed", "precip", "pressure",
                                                     "visib")}},
            {**EXAMPLE_FLIGHT, "origin": "EWR", "month": 12, "day": 24, "visib": 0.25}]


def with_fast_path(loaded: LoadedModel) -> LoadedModel:
    """``loaded`` with its pandas-free scorer, when there is one and it agrees with the model."""
    fast = FastScorer.from_pipeline(loaded.model)
    probes = probe_records()
    if fast is None or not fast.agrees_with(loaded.model, probes, records_to_features(probes)):
        return loaded
    return replace(loaded, fast=fast)


def smoke_test(loaded: LoadedModel) -> None:
    """One prediction on the example flight: a finite probability, or ModelLoadError."""
    try:
        p = float(loaded.predict_records([EXAMPLE_FLIGHT])[0])
    except Exception as err:  # whatever a broken model raises, it is refused
        raise ModelLoadError(f"{loaded.name} v{loaded.version}: smoke prediction failed: "
                             f"{type(err).__name__}: {err}") from err
    if not (math.isfinite(p) and 0.0 <= p <= 1.0):
        raise ModelLoadError(f"{loaded.name} v{loaded.version}: smoke prediction {p} "
                             "is not a probability")


def load_version(client: Any, name: str, version: str) -> LoadedModel:
    """Download, load safely and smoke-test one registered version.

    Raises:
        ModelLoadError: the version does not exist, cannot be loaded with the trusted types,
            needs inputs the feature builder does not make, or fails its smoke prediction.
    """
    import mlflow

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # a log, not a tty
    try:
        mv = client.get_model_version(name, str(version))
        with tempfile.TemporaryDirectory(prefix="mlops-model-") as tmp:
            # The logged model's own location: no registry lookup through global state.
            model_id = mv.model_id or str(mv.source).removeprefix("models:/")
            location = client.get_logged_model(model_id).artifact_location
            folder = Path(mlflow.artifacts.download_artifacts(
                artifact_uri=location, dst_path=tmp, tracking_uri=client.tracking_uri))
            path = folder / MODEL_FILE
            model = load_model(path)
            size = path.stat().st_size
        check_model_inputs(model, f"{name} v{version}")
        params = client.get_run(mv.run_id).data.params if mv.run_id else {}
    except ModelFileError as err:
        raise ModelLoadError(str(err)) from err
    except Exception as err:  # MLflow: unknown version, missing artifacts, dead store
        raise ModelLoadError(f"{name} v{version}: cannot be loaded: {type(err).__name__}: "
                             f"{str(err)[:300]}") from err
    loaded = LoadedModel(model, name, str(version), mv.run_id or "",
                         float(params.get("decision_threshold", DEFAULT_THRESHOLD)), size,
                         dict(mv.tags))
    smoke_test(loaded)
    loaded = with_fast_path(loaded)
    smoke_test(loaded)
    return loaded


def version_for_alias(client: Any, name: str, alias: str) -> str | None:
    """The version an alias points at, or None when it points nowhere."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None
