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
from level2_training.registry import CHAMPION, DIGEST_TAG, MODEL_FILE, download_model, sha256_of
from level3_deployment.fastpath import FastScorer

# On a version: the digest its passed certification verified. On the registered model: the
# version `mlops promote` / `mlops rollback` made @champion (the release record).
CERTIFIED_DIGEST_TAG = "certification.sha256"
RELEASE_TAG = "champion.version"


class ModelLoadError(RuntimeError):
    """A version cannot be served: the message says which and why.

    ``transient``: the registry or the artifact store did not answer; trying again later may
    work. Otherwise the refusal is deliberate (digest, certification, schema, trusted types).
    """

    def __init__(self, message: str, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


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
    sha256: str = ""  # of the model file, verified against the registration's record

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


def _fetch(client: Any, name: str, version: str, dst: Path) -> tuple[Any, Path, dict[str, str]]:
    """The version's record, its downloaded model folder and its run's params.

    Raises:
        ModelLoadError: deliberate for a version the registry says does not exist; transient
            for anything else (a registry or an artifact store that does not answer, or a
            download that fails, may work later).
    """
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version(name, str(version))
    except MlflowException as err:
        missing = err.error_code == "RESOURCE_DOES_NOT_EXIST"
        raise ModelLoadError(f"{name} v{version}: {str(err)[:300]}",
                             transient=not missing) from err
    except Exception as err:  # a dead registry, a lost connection
        raise ModelLoadError(f"{name} v{version}: registry unreachable: {type(err).__name__}: "
                             f"{str(err)[:300]}", transient=True) from err
    try:
        model_id = mv.model_id or str(mv.source).removeprefix("models:/")
        folder = download_model(client, model_id, dst)
        params = client.get_run(mv.run_id).data.params if mv.run_id else {}
    except Exception as err:  # the artifact store did not give the files (yet)
        raise ModelLoadError(f"{name} v{version}: cannot be downloaded: {type(err).__name__}: "
                             f"{str(err)[:300]}", transient=True) from err
    return mv, folder, params


def load_version(client: Any, name: str, version: str) -> LoadedModel:
    """Download, verify, load safely and smoke-test one registered version.

    The model file must be the one registered: its sha256 is compared with the version's
    ``DIGEST_TAG`` before it is opened.

    Raises:
        ModelLoadError: the version does not exist, its file is not the registered one, it
            cannot be loaded with the trusted types, needs inputs the feature builder does not
            make, has a threshold that is not a probability, or fails its smoke prediction
            (all deliberate); or the store did not answer (``transient``).
    """
    from mlflow.models import Model

    where = f"{name} v{version}"
    with tempfile.TemporaryDirectory(prefix="mlops-model-") as tmp:
        mv, folder, params = _fetch(client, name, version, Path(tmp))
        path = folder / MODEL_FILE
        if not path.is_file():  # an upload not finished, or a store half there: try again
            raise ModelLoadError(f"{where}: the logged model has no {MODEL_FILE} (yet)",
                                 transient=True)
        digest = sha256_of(path)
        recorded = mv.tags.get(DIGEST_TAG)
        if recorded is None:
            raise ModelLoadError(f"{where}: no {DIGEST_TAG} recorded at registration "
                                 "(registered outside `mlops train`): refused")
        if digest != recorded:
            raise ModelLoadError(f"{where}: the model file's sha256 {digest[:12]}... is not the "
                                 f"one recorded at registration ({recorded[:12]}...): the "
                                 "artifact was changed after registration: refused")
        try:
            model = load_model(path)
            signature = Model.load(str(folder / "MLmodel")).signature
        except ModelFileError as err:
            raise ModelLoadError(str(err)) from err
        except Exception as err:  # an MLmodel file that does not parse
            raise ModelLoadError(f"{where}: unreadable MLmodel: {type(err).__name__}: "
                                 f"{str(err)[:300]}") from err
        size = path.stat().st_size
    try:
        check_model_inputs(model, where)
    except ModelFileError as err:
        raise ModelLoadError(str(err)) from err
    loaded = LoadedModel(model, name, str(version), mv.run_id or "",
                         _threshold(params, where), size, dict(mv.tags),
                         signature.inputs.input_names() if signature is not None else None,
                         sha256=digest)
    smoke_test(loaded)
    loaded = with_fast_path(loaded)
    smoke_test(loaded)
    return loaded


def _threshold(params: dict[str, str], where: str) -> float:
    """The run's decision threshold: a probability strictly between 0 and 1, or a refusal."""
    raw = params.get("decision_threshold", DEFAULT_DECISION_THRESHOLD)
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = math.nan
    if not 0.0 < value < 1.0:
        raise ModelLoadError(f"{where}: decision_threshold {raw!r} is not a probability "
                             "strictly between 0 and 1")
    return value


def certified_as_registered(tags: dict[str, str]) -> bool:
    """A passed certification of the very file registered (its digest is the recorded one)."""
    return (tags.get("certification") == "passed" and DIGEST_TAG in tags
            and tags.get(CERTIFIED_DIGEST_TAG) == tags[DIGEST_TAG])


def release_problem(client: Any, loaded: LoadedModel) -> str | None:
    """Why ``loaded`` may not serve as @champion, or None when it may.

    It must have passed certification of this very file (``certification.sha256``), and the
    registry's release record (the ``champion.version`` tag that `mlops promote` and
    `mlops rollback` write before they move the alias) must name it: an alias moved by hand
    does not.
    """
    tags = loaded.tags
    if tags.get("certification") != "passed":
        return (f"v{loaded.version} is not certified (certification: "
                f"{tags.get('certification', 'never run')}): run `mlops promote`")
    certified = tags.get(CERTIFIED_DIGEST_TAG, "none")
    if not certified_as_registered(tags):  # the loader verified the file is the registered one
        return (f"v{loaded.version}: the certified file ({certified[:12]}...) is not the one "
                f"served ({loaded.sha256[:12]}...)")
    record = client.get_registered_model(loaded.name).tags.get(RELEASE_TAG)
    if record != loaded.version:
        return (f"@{CHAMPION} points at v{loaded.version} but the release record says "
                f"v{record or 'none'}: the alias was moved without `mlops promote`")
    return None


def version_for_alias(client: Any, name: str, alias: str) -> str | None:
    """The version an alias points at, or None when it points nowhere."""
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None
