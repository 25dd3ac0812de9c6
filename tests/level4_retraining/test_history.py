"""The monitoring history: one entry per window, and a broken line never stops anything."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path

import pytest

from level1_devops.settings import Settings
from level4_retraining.params import MonitorParams
from level4_retraining.policy import Decision, DriftPolicy, WindowResult

PARAMS = MonitorParams(drift_share_threshold=0.5, performance_drop_threshold=0.05,
                       k_consecutive=2, cooldown_windows=2, min_samples=1000,
                       drift_severity="warn", performance_severity="retrain")


def bad(name: str, retrained: bool = False) -> WindowResult:
    """A window whose ROC AUC fell (a retrain-severity breach)."""
    return WindowResult(name, 20_000, 0.1, 0.60, 0.72, retrained)


def good(name: str) -> WindowResult:
    return WindowResult(name, 20_000, 0.1, 0.72, 0.72)


def decide(history: list[WindowResult]) -> str:
    return DriftPolicy(PARAMS).decide(history).action


# The policy: k in a row means k distinct windows, in time order.

def test_the_same_window_monitored_twice_is_one_breach_not_two() -> None:
    assert decide([bad("2013-07"), bad("2013-07")]) == "warn"
    assert decide([good("2013-06"), bad("2013-07"), bad("2013-07"), bad("2013-07")]) == "warn"
    assert decide([bad("2013-06"), bad("2013-07"), bad("2013-07")]) == "retrain"  # two months
    assert "1 of 2" in DriftPolicy(PARAMS).decide([bad("2013-W27"), bad("2013-W27")]).reason


def test_a_window_monitored_again_replaces_its_earlier_result() -> None:
    # July first breached, then (say, with more labels in) did not: no streak is left.
    assert decide([bad("2013-06"), bad("2013-07"), good("2013-07")]) == "none"
    assert decide([bad("2013-06"), good("2013-07"), bad("2013-07")]) == "retrain"


def test_windows_count_in_time_order_not_in_the_order_they_were_monitored() -> None:
    # August monitored before July: July's decision sees June (and not August).
    assert decide([bad("2013-08"), good("2013-06"), bad("2013-07")]) == "warn"
    assert decide([bad("2013-08"), bad("2013-06"), bad("2013-07")]) == "retrain"
    assert decide([bad("2013-07"), bad("2013-06")]) == "warn"  # June is the first of them


def test_re_monitoring_does_not_use_up_the_cooldown() -> None:
    """A retrain after June blocks July and August, however often they are monitored."""
    history = [bad("2013-05"), bad("2013-06", retrained=True), bad("2013-07"), bad("2013-08"),
               bad("2013-08")]
    decision = DriftPolicy(PARAMS).decide(history)
    assert decision.action == "warn" and "cooldown after the retrain at 2013-06" in decision.reason
    assert decide([*history, bad("2013-09")]) == "retrain"  # then the cooldown is over


def test_a_window_a_retrain_ran_after_never_retrains_again() -> None:
    """The daily workflow monitors the latest month every day: one retrain, not one a day."""
    once = [bad("2013-06"), bad("2013-07", retrained=True)]
    for cooldown in (0, 2):
        policy = DriftPolicy(PARAMS.model_copy(update={"cooldown_windows": cooldown}))
        assert policy.decide([*once, bad("2013-07")]).action == "warn"
        assert policy.decide([*once, bad("2013-07"), bad("2013-07")]).action == "warn"
    # An older window monitored later is decided on the windows up to it, as it would have
    # been in its time (a retrain after a later window is not its cooldown).
    assert decide([bad("2013-07", retrained=True), bad("2013-05"), bad("2013-06")]) == "retrain"


# The history file the monitoring flow keeps.

def settings_for(tmp_path: Path) -> Settings:
    return Settings(project_dir=tmp_path, reports_dir=tmp_path / "reports")


def history_line(result: WindowResult, action: str = "warn") -> str:
    return json.dumps({"result": asdict(result), "decision": asdict(Decision(action, "why")),
                       "champion": "1", "retrain": None})


def write_history(settings: Settings, lines: list[str]) -> Path:
    path = settings.history_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_read_history_has_one_entry_per_window_the_latest_in_time_order(
        tmp_path: Path) -> None:
    from level4_retraining.monitor_flow import read_history

    settings = settings_for(tmp_path)
    write_history(settings, [history_line(bad("2013-07")), history_line(bad("2013-06")),
                             history_line(good("2013-07"), "none")])
    history = read_history(settings)
    assert [w.window for w in history] == ["2013-06", "2013-07"]
    assert history[-1].roc_auc == 0.72  # July's latest result
    # A retrain that ran after a window stays recorded when the window is monitored again.
    write_history(settings, [history_line(bad("2013-06")),
                             history_line(bad("2013-07", retrained=True), "retrain"),
                             history_line(bad("2013-07"))])
    (july,) = [w for w in read_history(settings) if w.window == "2013-07"]
    assert july.retrained


def test_a_broken_history_line_is_skipped_with_a_warning_naming_file_and_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from level4_retraining.logged_service import MonitoringCollector
    from level4_retraining.monitor_flow import read_history
    from level4_retraining.status import history_lines, monitoring_status

    settings = settings_for(tmp_path)
    june, july = history_line(bad("2013-06")), history_line(good("2013-07"), "none")
    missing = json.loads(june)
    del missing["result"]["drift_share"]
    path = write_history(settings, [
        june,
        june[: len(june) // 2],              # 2: truncated mid-line (a crash while appending)
        "[1, 2, 3]",                         # 3: JSON, not an object
        json.dumps({"decision": {}}),        # 4: no result
        json.dumps(missing),                 # 5: a result without its drift share
        json.dumps({**json.loads(june), "result": {**json.loads(june)["result"],
                                                    "n": "many"}}),  # 6: mistyped
        "",
        july])
    with caplog.at_level(logging.WARNING):
        lines = history_lines(settings)
    assert [line["result"]["window"] for line in lines] == ["2013-06", "2013-07"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    for number in (2, 3, 4, 5, 6):
        assert any(str(path) in m and f"line {number}" in m for m in warned), (number, warned)
    assert [w.window for w in read_history(settings)] == ["2013-06", "2013-07"]
    state = monitoring_status(settings)  # mlops status
    assert state["last_window"] == "2013-07" and state["windows"] == 2
    gauges = {m.name: m.samples[0].value for m in MonitoringCollector(settings).collect()}
    assert gauges["mlops_monitor_drift_share"] == 0.1  # /metrics


def test_a_line_after_one_a_crash_left_unfinished_is_kept(tmp_path: Path) -> None:
    """Appending after a truncated last line ends it first: the crash costs one line only."""
    from level4_retraining.status import append_json_line, history_lines

    settings = settings_for(tmp_path)
    june = history_line(bad("2013-06"))
    path = write_history(settings, [june])
    path.write_text(path.read_text() + june[:40])  # no newline: the crash
    append_json_line(path, json.loads(history_line(good("2013-07"))))
    assert [line["result"]["window"] for line in history_lines(settings)] == [
        "2013-06", "2013-07"]


def test_an_alert_after_one_a_crash_left_unfinished_is_kept(tmp_path: Path) -> None:
    from level4_retraining.retrain import alert

    settings = settings_for(tmp_path)
    alerts = settings.alerts_path
    alert(settings, "first")
    alerts.write_text(alerts.read_text() + '{"at": "2013-')
    alert(settings, "second")
    texts = alerts.read_text().splitlines()
    assert json.loads(texts[0])["message"] == "first"
    assert json.loads(texts[-1])["message"] == "second"
