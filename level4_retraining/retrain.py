"""The retraining loop's action: train on the latest labelled window, certify, maybe promote.

One retrain at a time (a file lock: a second trigger while one runs is skipped, not queued).
Training registers a new @challenger (Level 2); certification compares it with @champion on
the most recent labelled window (Level 3) and promotion moves @champion only if it passes; the
running service then picks the new champion up by itself. A failed certification leaves the
champion and records an alert; a crash anywhere leaves the aliases as they were.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

from level1_devops.settings import Settings
from level2_training.data import periods_between
from level2_training.params import load_train_params
from level3_deployment.certify import CertificationReport
from level3_deployment.release import ReleaseError, promote
from level4_retraining.params import load_monitor_params


@dataclass
class RetrainOutcome:
    status: str            # promoted, refused, skipped, failed (could not train)
    version: str | None
    detail: str
    roc_auc: float | None = None  # the new version's ROC AUC on the window it was certified on


def retrain_windows(latest: str, n_train: int) -> dict[str, str]:
    """Train on ``n_train`` periods, validate on the next, hold out ``latest`` (labelled)."""
    periods = periods_between("2000-01", latest)[-(n_train + 2):]
    if len(periods) < n_train + 2:
        raise ValueError(f"not enough periods before {latest} to retrain")
    return {"train_from": periods[0], "train_to": periods[-3], "validation_from": periods[-2],
            "validation_to": periods[-2], "holdout_from": latest, "holdout_to": latest}


@contextmanager
def single_retrain(settings: Settings) -> Iterator[bool]:
    """True when this process holds the retrain lock; False when another retrain runs."""
    path = settings.reports_dir / "level4" / "retrain.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def alert(settings: Settings, message: str) -> None:
    path = settings.reports_dir / "level4" / "alerts.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as out:
        out.write(json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds"),
                              "message": message}) + "\n")


def retrain_and_release(settings: Settings, latest_window: str, reason: str,
                        train_periods: int | None = None) -> RetrainOutcome:
    """Retrain on the window's recent history, certify against the champion, promote if it passes.

    Raises:
        Whatever training raises (a missing window, a dead store): the aliases are unchanged.
    """
    from level2_training.flows import train

    with single_retrain(settings) as mine:
        if not mine:
            return RetrainOutcome("skipped", None, "another retrain is running")
        windows = retrain_windows(latest_window, train_periods or load_monitor_params(
            settings.project_dir).retrain_train_periods)
        params = load_train_params(settings.project_dir).model_copy(update=windows)
        trained = train(params=params)
        try:
            report, _ = promote(settings, trained.version, reason=reason,
                                holdout_periods=[latest_window])
        except ReleaseError as err:
            alert(settings, f"retrained v{trained.version} refused: {err}")
            return RetrainOutcome("refused", trained.version, str(err), _auc(err.report))
        auc = _auc(report)
        return RetrainOutcome("promoted", report.version,
                              f"certified on {latest_window} (ROC AUC {auc}) and promoted", auc)


def _auc(report: CertificationReport | None) -> float | None:
    checks = {c.name: c.value for c in report.checks} if report else {}
    value = checks.get("holdout_roc_auc")
    return float(value) if isinstance(value, int | float) else None
