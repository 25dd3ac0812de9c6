"""The MLflow model registry: one model name, versions, and aliases (never the old stages).

``challenger`` points at the newest trained version; Level 3 moves ``champion``. Every
version records the sha256 of its model file at registration (``DIGEST_TAG``): what is
certified and what is served must be that very file.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from level1_devops.params import load_section
from level1_devops.settings import Settings
from level2_training.lineage import file_digest

CHALLENGER = "challenger"
CHAMPION = "champion"
KEY_METRICS = ("holdout_roc_auc", "holdout_log_loss", "validation_roc_auc")
MODEL_FILE = "model.skops"  # the skops file inside a logged model
DIGEST_TAG = "model.sha256"  # on each version: its model file's sha256, from registration


def sha256_of(path: Path) -> str:
    return file_digest(path, "sha256")


def download_model(client: Any, model_id: str, dst: Path) -> Path:
    """The logged model's folder (MLmodel, the skops file), downloaded into ``dst``."""
    import mlflow

    location = client.get_logged_model(model_id).artifact_location
    return Path(mlflow.artifacts.download_artifacts(
        artifact_uri=location, dst_path=str(dst), tracking_uri=client.tracking_uri))


def find_by_fingerprint(client: Any, name: str, fingerprint: str) -> Any | None:
    """The registered version made from exactly these inputs, if any."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return None
    matches = [v for v in versions if v.tags.get("fingerprint") == fingerprint]
    return max(matches, key=lambda v: int(v.version)) if matches else None


def register(client: Any, name: str, model_uri: str, tags: dict[str, str],
             alias: str = CHALLENGER) -> str:
    """Register ``model_uri`` as a new version with ``tags`` and its model file's digest, and
    point ``alias`` at it.

    All or nothing: if the digest or the alias cannot be set, the new version is deleted again.
    """
    import mlflow

    registered = mlflow.register_model(model_uri, name, tags=tags)
    version = registered.version
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-register-") as tmp:
            model_id = registered.model_id or str(registered.source).removeprefix("models:/")
            folder = download_model(client, model_id, Path(tmp))
            client.set_model_version_tag(name, version, DIGEST_TAG, sha256_of(folder / MODEL_FILE))
        client.set_registered_model_alias(name, alias, version)
    except Exception:
        client.delete_model_version(name, version)
        raise
    return str(version)


def describe_versions(client: Any, name: str) -> list[dict[str, Any]]:
    """Each version, newest first, with its aliases and key metrics."""
    from mlflow.exceptions import MlflowException

    try:
        model = client.get_registered_model(name)
        versions = client.search_model_versions(f"name = '{name}'")
    except MlflowException:
        return []
    aliases_of: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases_of.setdefault(str(version), []).append(alias)
    rows = []
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        metrics = client.get_run(v.run_id).data.metrics if v.run_id else {}
        rows.append({
            "version": str(v.version),
            "aliases": sorted(aliases_of.get(str(v.version), [])),
            "run_id": v.run_id,
            "metrics": {k: round(metrics[k], 4) for k in KEY_METRICS if k in metrics},
        })
    return rows


def registry_status(settings: Settings) -> dict[str, Any]:
    """The `mlops status` section (an entry point of the ``mlops.status`` group): model name
    and versions (no store is created to answer)."""
    from level2_training.params import RegistryParams
    from level2_training.tracking import client

    name = load_section(settings.project_dir, "registry", RegistryParams).model_name
    uri = settings.tracking_uri
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return {"model_name": name, "tracking_uri": uri, "versions": []}
    return {"model_name": name, "tracking_uri": uri,
            "versions": describe_versions(client(settings), name)}
