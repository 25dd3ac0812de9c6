"""Level 4's part of `mlops status` and of the service's /metrics: the monitoring history.

The history is read where ``shared_state`` says it lives (JSON-lines files under ``local/``,
or PostgreSQL in the team profile). An entry that cannot be read is skipped with a warning
naming it, so one bad line or row never stops monitoring, `mlops status` or ``/metrics``.
"""

from __future__ import annotations

from typing import Any

from level1_devops.settings import Settings
from level4_retraining.json_lines import append_json_line, read_json_lines
from level4_retraining.shared_state import has_history, history_lines

__all__ = ["append_json_line", "history_lines", "monitoring_status", "read_json_lines"]


def monitoring_status(settings: Settings) -> dict[str, Any]:
    """Last window, its drift share, the last decision, how many retrains ran; and the same
    for the last replay (`make level4`), which keeps its own state."""
    state = _summary(history_lines(settings))
    replay = settings.for_state(settings.replay_dir)
    apart = (replay.reports_dir != settings.reports_dir if settings.state_db_dsn is None
             else replay.monitoring_project != settings.monitoring_project)
    if apart and has_history(replay):
        state["replay"] = _summary(history_lines(replay))
    return state


def _summary(lines: list[dict[str, Any]]) -> dict[str, Any]:
    if not lines:
        return {"windows": 0, "last_window": None, "drift_share": None, "last_decision": None,
                "retrains": 0, "promoted": 0}
    last = lines[-1]
    return {"windows": len({line["result"]["window"] for line in lines}),
            "last_window": last["result"]["window"],
            "drift_share": round(last["result"]["drift_share"], 4),
            "roc_auc": last["result"].get("roc_auc"),
            "last_decision": last["decision"],
            "retrains": sum(bool(line["result"].get("retrained")) for line in lines),
            "promoted": sum((line.get("retrain") or {}).get("status") == "promoted"
                            for line in lines)}
