"""The service's own model loader, also used by certification: what certifies is what serves.

A registered version is downloaded from MLflow, loaded with skops trusting only the project's
listed types (never MLflow's pickle path), checked for the inputs the feature builder makes,
and given one smoke prediction. Any failure raises ModelLoadError and nothing is returned.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from level1_devops.features import DEFAULT_DECISION_THRESHOLD, FEATURE_COLUMNS, build_features
from level1_devops.model_file import ModelFileError, load_model
from level1_devops.schema import EXAMPLE_RECORD, PROBE_RECORDS
from level1_devops.score import check_model_inputs
from level3_deployment.fastpath import FastScorer

MODEL_FILE = "model.skops"


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
    signature_inputs: list[str] | None = None  # the inputs of its MLflow signature
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


def with_fast_path(loaded: LoadedModel) -> LoadedModel:
    """``loaded`` with its pandas-free scorer, when there is one and it agrees with the model
    on the adapter's probe records (unseen categories, missing values)."""
    fast = FastScorer.from_pipeline(loaded.model)
    probes = PROBE_RECORDS
    if fast is None or not fast.agrees_with(loaded.model, probes, records_to_features(probes)):
        return loaded
    return replace(loaded, fast=fast)


def smoke_test(loaded: LoadedModel) -> None:
    """One prediction on the example record: a finite probability, or ModelLoadError."""
    try:
        p = float(loaded.predict_records([EXAMPLE_RECORD])[0])
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
    from mlflow.models import Model

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
            signature = Model.load(str(folder / "MLmodel")).signature
        check_model_inputs(model, f"{name} v{version}")
        params = client.get_run(mv.run_id).data.params if mv.run_id else {}
    except ModelFileError as err:
        raise ModelLoadError(str(err)) from err
    except Exception as err:  # MLflow: unknown version, missing artifacts, dead store
        raise ModelLoadError(f"{name} v{version}: cannot be loaded: {type(err).__name__}: "
                             f"{str(err)[:300]}") from err
    loaded = LoadedModel(model, name, str(version), mv.run_id or "",
                         float(params.get("decision_threshold", DEFAULT_DECISION_THRESHOLD)),
                         size, dict(mv.tags),
                         signature.inputs.input_names() if signature is not None else None)
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
