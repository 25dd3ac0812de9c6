"""The state of this checkout as one dictionary: what `mlops status` prints.

Level 1 reports the data; higher levels add their own sections through the
``mlops.status`` entry-point group (a function taking Settings, returning a dict).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from level1_devops.ingest import count_rows, ingested_periods
from level1_devops.settings import Settings
from level1_devops.versioning import remote_in_sync

STATUS_GROUP = "mlops.status"


def data_status(settings: Settings) -> dict[str, Any]:
    """Ingested periods, row counts and whether the DVC remote holds every version."""
    periods = ingested_periods(settings.raw_dir)
    return {
        "periods": periods,
        "n_periods": len(periods),
        "rows_raw": count_rows(settings.raw_dir),
        "rows_quarantined": count_rows(settings.quarantine_dir),
        "dvc_remote_in_sync": remote_in_sync(settings.project_dir),
    }


def collect_status(settings: Settings) -> dict[str, Any]:
    """Every section: data, folders, then one per installed higher level."""
    status: dict[str, Any] = {
        "data": data_status(settings),
        "folders": {name: str(path) for name, path in settings.folders().items()},
    }
    for ep in sorted(entry_points(group=STATUS_GROUP), key=lambda e: e.name):
        try:
            status[ep.name] = ep.load()(settings)
        except Exception as err:  # one broken section must not hide the others
            status[ep.name] = {"error": f"{type(err).__name__}: {err}"}
    return status
