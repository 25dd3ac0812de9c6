"""Level 4's part of `mlops status` and of the service's /metrics: the monitoring history."""

from __future__ import annotations

import json
from typing import Any

from level1_devops.settings import Settings


def history_lines(settings: Settings) -> list[dict[str, Any]]:
    """Every monitored window's result and decision (``settings.history_path``), oldest first."""
    path = settings.history_path
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def monitoring_status(settings: Settings) -> dict[str, Any]:
    """Last window, its drift share, the last decision, how many retrains ran; and the same
    for the last replay (`make level4`), which keeps its own state."""
    state = _summary(history_lines(settings))
    replay = settings.for_state(settings.replay_dir)
    if replay.reports_dir != settings.reports_dir and replay.monitoring_dir.is_dir():
        state["replay"] = _summary(history_lines(replay))
    return state


def _summary(lines: list[dict[str, Any]]) -> dict[str, Any]:
    if not lines:
        return {"windows": 0, "last_window": None, "drift_share": None, "last_decision": None,
                "retrains": 0, "promoted": 0}
    last = lines[-1]
    return {"windows": len(lines), "last_window": last["result"]["window"],
            "drift_share": round(last["result"]["drift_share"], 4),
            "roc_auc": last["result"]["roc_auc"],
            "last_decision": last["decision"],
            "retrains": sum(bool(line["result"].get("retrained")) for line in lines),
            "promoted": sum((line.get("retrain") or {}).get("status") == "promoted"
                            for line in lines)}
