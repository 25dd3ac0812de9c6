"""Level 4's part of `mlops status` and of the service's /metrics: the monitoring history.

The history and the alerts are JSON-lines files (``append_json_line``). A line that cannot be
read (cut short by a crash, edited by hand) is skipped with a warning naming the file and the
line, so one bad line never stops monitoring, `mlops status` or ``/metrics``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from level1_devops.settings import Settings
from level4_retraining.policy import WindowResult

log = logging.getLogger("mlops.monitoring")
_warned: set[tuple[str, int, str]] = set()  # each broken line is reported once per process


def append_json_line(path: Path, value: dict[str, Any]) -> None:
    """Append one JSON line to ``path``. A last line a crash left unfinished is ended first:
    it stays broken (and is skipped when read), the new line is whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as out:
        unfinished = False
        if out.seek(0, 2) > 0:
            out.seek(-1, 2)
            unfinished = out.read(1) != b"\n"
        out.write((("\n" if unfinished else "") + json.dumps(value) + "\n").encode())


def read_json_lines(path: Path,
                    problem: Callable[[dict[str, Any]], str | None] = lambda _: None,
                    ) -> list[dict[str, Any]]:
    """The JSON objects of ``path``, one a line, oldest first; a line that is not one, or that
    ``problem`` finds fault with (it returns why), is skipped with a warning."""
    if not path.is_file():
        return []
    found: list[dict[str, Any]] = []
    for number, text in enumerate(path.read_text(errors="replace").split("\n"), 1):
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        except ValueError as err:
            why: str | None = f"not JSON ({err})"
        else:
            why = problem(value) if isinstance(value, dict) else "not a JSON object"
        if why is None:
            found.append(value)
        elif (key := (str(path), number, text)) not in _warned:
            _warned.add(key)
            log.warning("%s, line %d skipped: %s", path, number, why)
    return found


def _history_problem(line: dict[str, Any]) -> str | None:
    result, decision, retrain = line.get("result"), line.get("decision"), line.get("retrain")
    if not isinstance(result, dict):
        return "no result"
    if not isinstance(decision, dict) or not isinstance(decision.get("action"), str):
        return "no decision"
    if retrain is not None and not isinstance(retrain, dict):
        return "retrain is not an object"
    try:
        WindowResult.from_record(result)
    except ValueError as err:
        return f"result: {err}"
    return None


def history_lines(settings: Settings) -> list[dict[str, Any]]:
    """Every monitored window's result and decision (``settings.history_path``), oldest first;
    a window monitored again has a line per run."""
    return read_json_lines(settings.history_path, _history_problem)


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
    return {"windows": len({line["result"]["window"] for line in lines}),
            "last_window": last["result"]["window"],
            "drift_share": round(last["result"]["drift_share"], 4),
            "roc_auc": last["result"].get("roc_auc"),
            "last_decision": last["decision"],
            "retrains": sum(bool(line["result"].get("retrained")) for line in lines),
            "promoted": sum((line.get("retrain") or {}).get("status") == "promoted"
                            for line in lines)}
