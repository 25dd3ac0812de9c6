"""The retraining loop's action: train on the latest labelled window, certify, maybe promote.

One retrain at a time (``shared_state.retrain_lock``: a file lock on a laptop, a PostgreSQL
advisory lock across machines; a second trigger while one runs is skipped, not queued).
Training registers a new @challenger (Level 2); certification compares it with @champion on
the most recent labelled window (Level 3) and promotion moves @champion only if it passes; the
running service then picks the new champion up by itself. A failed certification leaves the
champion and records an alert; a crash anywhere leaves the aliases as they were.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from level1_devops.locks import LockTimeout
from level1_devops.settings import Settings
from level2_training.params import windows_ending
from level3_deployment.certify import CertificationReport
from level3_deployment.release import ReleaseError, promote
from level4_retraining.alerts import alert
from level4_retraining.params import RetrainingParams
from level4_retraining.shared_state import retrain_lock

__all__ = ["RetrainOutcome", "alert", "retrain_and_release", "single_retrain"]


@dataclass
class RetrainOutcome:
    status: str            # promoted, refused, skipped, failed (could not train)
    version: str | None
    detail: str
    roc_auc: float | None = None  # the new version's ROC AUC on the window it was certified on


@contextmanager
def single_retrain(settings: Settings) -> Iterator[bool]:
    """True when this process holds the retrain lock; False when another retrain runs (a
    second trigger is skipped, not queued)."""
    with ExitStack() as held:
        try:
            held.enter_context(retrain_lock(settings))
        except LockTimeout:
            yield False
            return
        yield True


def retrain_and_release(settings: Settings, params: RetrainingParams, latest_window: str,
                        reason: str) -> RetrainOutcome:
    """Retrain on the window's recent history (``monitor.retrain_train_periods`` periods, then
    a validation one), certify against the champion, promote if it passes.

    Raises:
        Whatever training raises (a missing window, a dead store): the aliases are unchanged.
    """
    from level2_training.flows import train

    with single_retrain(settings) as mine:
        if not mine:
            return RetrainOutcome("skipped", None, "another retrain is running")
        windows = windows_ending(latest_window, params.monitor.retrain_train_periods)
        retrain_params = params.with_train(**windows)
        trained = train(settings, retrain_params)
        try:
            report, _ = promote(settings, retrain_params, trained.version, reason=reason,
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
