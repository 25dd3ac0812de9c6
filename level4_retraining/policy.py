"""The drift policy: from a history of monitored windows to one decision, with its reason.

Pure: no I/O, no clock. A window *breaches* when its features drifted (drift share at or over
the threshold) or its ROC AUC fell below the champion's holdout AUC by the threshold; each
kind of breach has a severity. Retraining needs ``k_consecutive`` retrain-severity breaches
in a row since the last retrain, outside the cooldown, in windows with enough flights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from level4_retraining.params import MonitorParams

Action = Literal["skip", "none", "warn", "retrain"]


@dataclass(frozen=True)
class WindowResult:
    """What monitoring measured on one window."""

    window: str
    n: int
    drift_share: float
    roc_auc: float | None = None        # None until the labels are in
    reference_auc: float | None = None  # the champion's holdout AUC
    retrained: bool = False             # a retrain was started after this window
    prediction_drift: float | None = None  # drift score of the logged probabilities
    n_unmatched: int = 0                # predictions with no landed flight (yet)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


class DriftPolicy:
    def __init__(self, params: MonitorParams) -> None:
        self.params = params

    def breaches(self, w: WindowResult) -> list[tuple[str, str]]:
        """(severity, why) of each breach in a window."""
        p = self.params
        found: list[tuple[str, str]] = []
        if w.drift_share >= p.drift_share_threshold:
            found.append((p.drift_severity, f"drift share {w.drift_share:.2f} >= "
                                            f"{p.drift_share_threshold:.2f}"))
        if w.roc_auc is not None and w.reference_auc is not None and (
                w.reference_auc - w.roc_auc >= p.performance_drop_threshold):
            found.append((p.performance_severity, f"ROC AUC {w.roc_auc:.3f} is "
                          f"{w.reference_auc - w.roc_auc:.3f} below the champion's "
                          f"{w.reference_auc:.3f}"))
        return found

    def decide(self, history: list[WindowResult]) -> Decision:
        """The decision for the newest window of ``history`` (oldest first)."""
        p = self.params
        current = history[-1]
        if current.n < p.min_samples:
            return Decision("skip", f"{current.window}: {current.n} flights, fewer than "
                                    f"min_samples {p.min_samples}")
        found = self.breaches(current)
        if not found:
            return Decision("none", f"{current.window}: no breach")
        why = "; ".join(reason for _, reason in found)
        last = max((i for i, w in enumerate(history[:-1]) if w.retrained), default=None)
        if last is not None and len(history) - 1 - last <= p.cooldown_windows:
            return Decision("warn", f"{current.window}: {why}; in cooldown after the retrain "
                                    f"at {history[last].window}")
        streak = 0
        start = 0 if last is None else last + 1
        for w in reversed(history[start:]):
            if w.n < p.min_samples:
                continue
            if not any(sev == "retrain" for sev, _ in self.breaches(w)):
                break
            streak += 1
        if streak >= p.k_consecutive:
            return Decision("retrain", f"{current.window}: {why}; {streak} breaching windows "
                                       f"in a row (k = {p.k_consecutive})")
        return Decision("warn", f"{current.window}: {why}; {streak} of {p.k_consecutive} "
                                "retrain-severity breaches in a row")
