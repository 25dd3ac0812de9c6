"""The drift policy, pure: the reliability rules the retraining loop stands on."""

from __future__ import annotations

from level4_retraining.params import MonitorParams
from level4_retraining.policy import DriftPolicy, WindowResult

PARAMS = MonitorParams(drift_share_threshold=0.5, performance_drop_threshold=0.05,
                       k_consecutive=2, cooldown_windows=2, min_samples=1000,
                       drift_severity="warn", performance_severity="retrain")


def window(i: int, auc: float | None = 0.72, drift: float = 0.1, n: int = 20_000,
           retrained: bool = False) -> WindowResult:
    return WindowResult(f"2013-{i:02d}", n, drift, auc, 0.72, retrained)


def replay(windows: list[WindowResult]) -> list[str]:
    """Decide window by window, marking a retrain where the policy called one."""
    policy, history, actions = DriftPolicy(PARAMS), [], []
    for w in windows:
        history.append(w)
        decision = policy.decide(history)
        actions.append(decision.action)
        if decision.action == "retrain":
            history[-1] = WindowResult(w.window, w.n, w.drift_share, w.roc_auc, w.reference_auc,
                                       retrained=True)
    return actions


def test_one_bad_window_does_not_retrain() -> None:
    assert replay([window(1), window(2, auc=0.60), window(3)]) == ["none", "warn", "none"]


def test_k_consecutive_windows_retrain_exactly_once() -> None:
    bad = [window(i, auc=0.60) for i in range(1, 5)]
    assert replay(bad) == ["warn", "retrain", "warn", "warn"]  # then the cooldown


def test_cooldown_holds_then_a_breach_that_goes_on_retrains_again() -> None:
    """Two windows of cooldown; the breaches seen in them (on the new model) still count."""
    bad = [window(i, auc=0.60) for i in range(1, 8)]
    assert replay(bad) == ["warn", "retrain", "warn", "warn", "retrain", "warn", "warn"]


def test_drift_alone_warns_at_its_severity() -> None:
    drifting = [window(i, drift=0.8) for i in range(1, 5)]
    assert replay(drifting) == ["warn"] * 4
    reason = DriftPolicy(PARAMS).decide(drifting[:1]).reason
    assert "drift share 0.80 >= 0.50" in reason


def test_small_windows_decide_nothing_and_do_not_break_a_streak() -> None:
    windows = [window(1, auc=0.60), window(2, auc=0.50, n=200), window(3, auc=0.60)]
    assert replay(windows) == ["warn", "skip", "retrain"]
    assert "fewer than min_samples 1000" in DriftPolicy(PARAMS).decide(windows[:2]).reason
