"""Evidently on one window: feature drift against the champion's reference sample.

Evidently's work is kept to what the policy reads (the drift preset over the model's
features, minus calendar columns); the report is saved as HTML and JSON for people.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from level1_devops.features import CATEGORICAL_FEATURES, NUMERIC_FEATURES


@dataclass
class DriftResult:
    share: float
    drifted: dict[str, float] = field(default_factory=dict)  # column -> drift score
    snapshot: Any = None

    def save(self, folder: Path, name: str) -> tuple[Path, Path]:
        """HTML (for people) and JSON (for machines) of the report."""
        folder.mkdir(parents=True, exist_ok=True)
        html, js = folder / f"{name}.html", folder / f"{name}.json"
        self.snapshot.save_html(str(html))
        self.snapshot.save_json(str(js))
        return html, js


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame,
                  ignore: list[str]) -> DriftResult:
    """Evidently's DataDriftPreset over the model's features (as the feature builder makes them)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    numeric = [c for c in NUMERIC_FEATURES if c not in ignore]
    categorical = [c for c in CATEGORICAL_FEATURES if c not in ignore]
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    columns = categorical + numeric
    snapshot = Report([DataDriftPreset(columns=columns)]).run(
        current_data=Dataset.from_pandas(current[columns], data_definition=definition),
        reference_data=Dataset.from_pandas(reference[columns], data_definition=definition))
    share, drifted = 0.0, {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        if config.get("type", "").endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif config.get("type", "").endswith("ValueDrift"):
            score, threshold = float(metric["value"]), float(config.get("threshold", 0.1))
            # p-value tests drift below their threshold; distances at or above it.
            is_p_value = "p_value" in str(config.get("method", "")).lower()
            if (score < threshold) if is_p_value else (score >= threshold):
                drifted[config["column"]] = score
    return DriftResult(share, drifted, snapshot)
