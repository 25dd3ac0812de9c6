"""The drift policy: from a history of monitored windows to one decision, with its reason.

Pure: no I/O, no clock. A window *breaches* when its features drifted (drift share at or over
the threshold) or its ROC AUC fell below the champion's holdout AUC by the threshold; each
kind of breach has a severity. Retraining needs ``k_consecutive`` retrain-severity breaches
in a row since the last retrain, outside the cooldown, in windows with enough flights.

The history is per window (``per_window``): a window monitored again replaces its earlier
result, and windows count in time order (their names, ``YYYY-MM`` or ``YYYY-Www``, sort in
time), so "k in a row" is k distinct windows however often each was monitored.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any, Literal

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

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> WindowResult:
        """From its JSON form (``asdict``); keys it does not know are left out.

        Raises:
            ValueError: a field is missing or of the wrong type.
        """
        known = {f.name for f in fields(cls)}
        for name, types in _FIELD_TYPES.items():
            if name not in record:
                if name in _REQUIRED:
                    raise ValueError(f"no {name}")
            elif not isinstance(record[name], types):
                raise ValueError(f"{name} is {record[name]!r}")
        return cls(**{k: v for k, v in record.items() if k in known})


_NUMBER = (int, float)
_OPTIONAL_NUMBER = (int, float, type(None))
_REQUIRED = ("window", "n", "drift_share")
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "window": (str,), "n": (int,), "drift_share": _NUMBER, "roc_auc": _OPTIONAL_NUMBER,
    "reference_auc": _OPTIONAL_NUMBER, "retrained": (bool,),
    "prediction_drift": _OPTIONAL_NUMBER, "n_unmatched": (int,)}


def per_window(history: Sequence[WindowResult]) -> list[WindowResult]:
    """One result per window, the latest of each (``history`` is in the order the windows were
    monitored), in time order. A window keeps ``retrained`` once a retrain ran after it."""
    latest: dict[str, WindowResult] = {}
    for w in history:
        earlier = latest.get(w.window)
        latest[w.window] = (replace(w, retrained=True) if earlier is not None
                            and earlier.retrained and not w.retrained else w)
    return [latest[name] for name in sorted(latest)]


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

    def decide(self, history: Sequence[WindowResult]) -> Decision:
        """The decision for the window just measured, ``history[-1]``; ``history`` is every
        result in the order the windows were monitored (a window may come more than once).

        The current window is decided on the windows up to it, in time order: they make its
        streak. A retrain after window W blocks the next ``cooldown_windows`` windows, and W
        itself for good: a window monitored again never retrains again.
        """
        p = self.params
        current = history[-1]
        if current.n < p.min_samples:
            return Decision("skip", f"{current.window}: {current.n} flights, fewer than "
                                    f"min_samples {p.min_samples}")
        found = self.breaches(current)
        if not found:
            return Decision("none", f"{current.window}: no breach")
        why = "; ".join(reason for _, reason in found)
        windows = per_window([*history[:-1], current])
        now = next(i for i, w in enumerate(windows) if w.window == current.window)
        last = max((i for i, w in enumerate(windows[:now + 1]) if w.retrained), default=None)
        if last == now:
            return Decision("warn", f"{current.window}: {why}; a retrain already ran after "
                                    "this window")
        if last is not None and now - last <= p.cooldown_windows:
            return Decision("warn", f"{current.window}: {why}; in cooldown after the retrain "
                                    f"at {windows[last].window}")
        streak = 0
        start = 0 if last is None else last + 1
        for w in reversed(windows[start:now + 1]):
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
