"""Level 4's part of `mlops status` and of the service's /metrics: the monitoring history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from level1_devops.settings import Settings


def history_path(settings: Settings) -> Path:
    """Where every monitored window's result and decision is kept, one JSON line each."""
    return settings.reports_dir / "level4" / "history.jsonl"


def history_lines(settings: Settings) -> list[dict[str, Any]]:
    path = history_path(settings)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def monitoring_status(settings: Settings) -> dict[str, Any]:
    """Last window, its drift share, the last decision, how many retrains ran."""
    lines = history_lines(settings)
    if not lines:
        return {"windows": 0, "last_window": None, "drift_share": None, "last_decision": None,
                "retrains": 0}
    last = lines[-1]
    return {"windows": len(lines), "last_window": last["result"]["window"],
            "drift_share": round(last["result"]["drift_share"], 4),
            "roc_auc": last["result"]["roc_auc"],
            "last_decision": last["decision"],
            "retrains": sum(bool(line["result"].get("retrained")) for line in lines)}
