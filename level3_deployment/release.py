"""Release by alias: certify a version, promote it to @champion, roll back in one command.

Every move of @champion is recorded as tags on the model versions (who, when, why, and the
previous champion): the registry is the audit trail.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from level1_devops.locks import LockTimeout, exclusive
from level1_devops.settings import Settings
from level2_training.data import load_periods, periods_between
from level2_training.registry import CHALLENGER, CHAMPION
from level2_training.tracking import client as tracking_client
from level2_training.tracking import experiment_name, use_tracking
from level3_deployment.certify import CertificationReport, Check, run_checks
from level3_deployment.loading import (
    CERTIFIED_DIGEST_TAG,
    RELEASE_TAG,
    ModelLoadError,
    certified_as_registered,
    load_version,
    version_for_alias,
)
from level3_deployment.params import DeploymentParams


class ReleaseError(RuntimeError):
    """A release step cannot be done; the champion is unchanged."""

    def __init__(self, message: str, report: CertificationReport | None = None) -> None:
        super().__init__(message)
        self.report = report  # the failed certification, when that is why


def _client(settings: Settings, params: DeploymentParams) -> Any:
    use_tracking(settings, experiment_name(params.model_name))  # fails fast on a dead store
    return tracking_client(settings)


def resolve_version(client: Any, name: str, version: str | None, alias: str) -> str:
    """``version`` as given, else the version ``alias`` points at."""
    resolved = version or version_for_alias(client, name, alias)
    if resolved is None:
        raise ReleaseError(f"{name}: no version given and no @{alias} to take (run `mlops train`)")
    return str(resolved)


def certify(settings: Settings, params: DeploymentParams, version: str | None = None,
            holdout_periods: list[str] | None = None) -> CertificationReport:
    """Certify ``version`` (default @challenger) against @champion; write and log the report.

    The holdout is ``train``'s frozen holdout unless ``holdout_periods`` says otherwise (the
    retraining loop certifies on the most recent labelled window).
    """
    client = _client(settings, params)
    name = params.model_name
    version = resolve_version(client, name, version, CHALLENGER)
    champion_version = version_for_alias(client, name, CHAMPION)
    report = CertificationReport(name, version, champion_version)
    try:
        candidate = load_version(client, name, version)
    except ModelLoadError as err:
        report.checks.append(Check("loads_with_service_loader", False, "error", "loads", str(err)))
        return _record(settings, client, report)
    report.sha256 = candidate.sha256  # what this certification verified: that very file
    champion = None
    if champion_version and champion_version != version:
        try:
            champion = load_version(client, name, champion_version)
        except ModelLoadError as err:  # a broken champion must not block its replacement
            report.checks.append(Check("champion_loads", True, "error", "-",
                                       f"champion not compared: {err}"))
    train = params.train
    holdout = load_periods(settings.raw_dir, holdout_periods
                           or periods_between(train.holdout_from, train.holdout_to))
    report.checks += run_checks(candidate, champion, holdout, params.certify, train.features)
    return _record(settings, client, report)


def _record(settings: Settings, client: Any, report: CertificationReport) -> CertificationReport:
    """Write the report (JSON + markdown), log it to the candidate's run, tag the version."""
    folder = settings.certification_dir
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{report.model_name}-v{report.version}"
    Path(f"{stem}.json").write_text(json.dumps(report.as_dict(), indent=2, default=str))
    Path(f"{stem}.md").write_text(report.to_markdown())
    from mlflow.exceptions import MlflowException

    try:
        mv = client.get_model_version(report.model_name, report.version)
        if mv.run_id:
            for suffix in (".json", ".md"):
                client.log_artifact(mv.run_id, f"{stem}{suffix}", "certification")
        client.set_model_version_tag(report.model_name, report.version, "certification",
                                     "passed" if report.passed else "failed")
        client.set_model_version_tag(report.model_name, report.version, "certification.failed",
                                     ",".join(c.name for c in report.failed) or "none")
        client.set_model_version_tag(report.model_name, report.version, CERTIFIED_DIGEST_TAG,
                                     report.sha256 or "none")
    except MlflowException:
        pass  # a version that does not exist has nothing to tag; the report says why
    return report


def _audit(client: Any, name: str, version: str, action: str, reason: str,
           previous: str | None) -> None:
    """Who moved @champion to this version, when, why, and from which version."""
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    tags = {f"{action}.at": stamp, f"{action}.by": getpass.getuser(),
            f"{action}.reason": reason, f"{action}.previous_champion": previous or "none"}
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)


def move_champion(client: Any, name: str, version: str, expected: str | None, action: str,
                  reason: str) -> None:
    """Make ``version`` @champion, if @champion still is ``expected`` (compare, then set).

    The release record (``RELEASE_TAG`` on the registered model) is written first and the
    alias moved after, so the service never sees an alias that `mlops promote` moved without
    its record; if the alias cannot be moved, the record goes back.

    Raises:
        ReleaseError: @champion moved since ``expected`` was read (certified against a stale
            champion), or ``version`` has no passed certification.
    """
    current = version_for_alias(client, name, CHAMPION)
    if current != expected:
        raise ReleaseError(f"@{CHAMPION} moved from v{expected or 'none'} to v{current} since "
                           f"v{version} was certified against it: run `mlops promote` again")
    if not certified_as_registered(client.get_model_version(name, version).tags):
        raise ReleaseError(f"{name} v{version} has no passed certification of its registered "
                           "file: run `mlops certify` (or `mlops promote`) first")
    previous_record = client.get_registered_model(name).tags.get(RELEASE_TAG)
    client.set_registered_model_tag(name, RELEASE_TAG, version)
    try:
        _audit(client, name, version, action, reason, current)
        client.set_registered_model_alias(name, CHAMPION, version)
    except Exception:
        if previous_record is None:
            client.delete_registered_model_tag(name, RELEASE_TAG)
        else:
            client.set_registered_model_tag(name, RELEASE_TAG, previous_record)
        raise


def promote(settings: Settings, params: DeploymentParams, version: str | None = None,
            reason: str = "certified", holdout_periods: list[str] | None = None
            ) -> tuple[CertificationReport, str | None]:
    """Certify, then move @champion to the version; returns the report and the previous champion.

    One release at a time (``settings.release_lock_path``): a second `mlops promote` waits,
    then certifies against the champion the first one left.

    Raises:
        ReleaseError: certification failed, or @champion moved meanwhile (the champion stays).
    """
    try:
        with exclusive(settings.release_lock_path, "release"):
            report = certify(settings, params, version, holdout_periods)
            if not report.passed:
                failed = "; ".join(f"{c.name}: {c.value} (needs {c.threshold}) {c.detail}".strip()
                                   for c in report.failed)
                raise ReleaseError(f"{report.model_name} v{report.version} not promoted, failed "
                                   f"certification: {failed}", report)
            if report.champion_version == report.version:
                return report, report.version
            move_champion(_client(settings, params), report.model_name, report.version,
                          report.champion_version, "promoted", reason)
            return report, report.champion_version
    except LockTimeout as err:
        raise ReleaseError(str(err)) from err


def rollback(settings: Settings, params: DeploymentParams,
             reason: str = "rollback") -> tuple[str, str]:
    """Move @champion back to the champion before it; returns (from, to).

    Raises:
        ReleaseError: no champion, it has no recorded predecessor, or that one is no longer
            certified.
    """
    client = _client(settings, params)
    name = params.model_name
    try:
        with exclusive(settings.release_lock_path, "release"):
            current = version_for_alias(client, name, CHAMPION)
            if current is None:
                raise ReleaseError(f"{name}: no @{CHAMPION} to roll back")
            tags = client.get_model_version(name, current).tags
            previous = tags.get("promoted.previous_champion", "none")
            if previous == "none":
                raise ReleaseError(f"{name} v{current} has no previous champion to roll back to")
            move_champion(client, name, previous, current, "rolled_back_to", reason)
            return current, previous
    except LockTimeout as err:
        raise ReleaseError(str(err)) from err
