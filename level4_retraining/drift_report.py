"""Evidently on one window: what the policy reads, and the report people look at.

One report per window, against the champion's reference sample (kept with its training run):
- data drift of the model's features (DataDriftPreset, minus calendar columns): the policy's
  drift share;
- prediction drift: the drift of the logged probability against the reference's;
- data quality: DataSummaryPreset over the features (missing values, ranges, constants);
- classification performance (ClassificationPreset) once the window's labels are in.
Evidently's work is kept to that: the reference is a fixed sample (``train.reference_rows``),
and tests inside the presets are off. The report is saved as HTML (for people) and JSON (for
machines), and added to the Evidently workspace that ``make evidently-ui`` opens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import Any

import pandas as pd

from level1_devops.features import CATEGORICAL_FEATURES, LABEL_COLUMN, NUMERIC_FEATURES
from level2_training.tracking import PROBABILITY_COLUMN

PROBABILITY = PROBABILITY_COLUMN  # the model's P beside the features (reference and log)


@dataclass
class DriftResult:
    share: float                                            # share of features that drifted
    drifted: dict[str, float] = field(default_factory=dict)  # column -> drift score
    prediction_drift: float | None = None                    # drift score of the probability
    snapshot: Any = None

    def save(self, folder: Path, name: str, decision: dict[str, str] | None = None
             ) -> tuple[Path, Path]:
        """HTML (for people) and JSON (for machines) of the report, each opening with the
        policy's ``decision`` (action and reason) when given."""
        folder.mkdir(parents=True, exist_ok=True)
        html, js = folder / f"{name}.html", folder / f"{name}.json"
        self.snapshot.save_html(str(html))
        self.snapshot.save_json(str(js))
        if decision:
            banner = (f"<body>\n<h2 style=\"font-family: sans-serif\">{escape(name)}: "
                      f"{escape(decision['action'])}</h2>\n<p style=\"font-family: sans-serif\">"
                      f"{escape(decision['reason'])}</p>")
            html.write_text(html.read_text().replace("<body>", banner, 1))
            js.write_text(json.dumps({"decision": decision, **json.loads(js.read_text())}))
        return html, js


def is_drift(score: float, config: dict[str, Any]) -> bool:
    """p-value tests drift below their threshold; distances at or above it."""
    threshold = float(config.get("threshold", 0.1))
    is_p_value = "p_value" in str(config.get("method", "")).lower()
    return (score < threshold) if is_p_value else (score >= threshold)


def feature_drift(reference: pd.DataFrame, current: pd.DataFrame, ignore: list[str]
                  ) -> DriftResult:
    """Evidently over one window (features as the feature builder makes them).

    Prediction drift is measured when both frames have ``probability``, classification
    performance when both have the label too; the data summary always.
    """
    from evidently import BinaryClassification, DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift
    from evidently.presets import ClassificationPreset, DataDriftPreset, DataSummaryPreset

    numeric = [c for c in NUMERIC_FEATURES if c not in ignore]
    categorical = [c for c in CATEGORICAL_FEATURES if c not in ignore]
    features = categorical + numeric
    extra = [c for c in (PROBABILITY, LABEL_COLUMN)
             if c in reference.columns and c in current.columns]
    metrics: list[Any] = [DataDriftPreset(columns=features)]
    classification = []
    if PROBABILITY in extra:
        numeric = [*numeric, PROBABILITY]
        metrics.append(ValueDrift(column=PROBABILITY))
        if LABEL_COLUMN in extra:
            classification = [BinaryClassification(target=LABEL_COLUMN,
                                                   prediction_probas=PROBABILITY, pos_label=1)]
            metrics.append(ClassificationPreset())
    metrics.append(DataSummaryPreset(columns=features))
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical,
                                classification=classification or None)
    columns = features + extra

    def dataset(frame: pd.DataFrame) -> Any:
        frame = frame[columns]
        if LABEL_COLUMN in extra:
            frame = frame.astype({LABEL_COLUMN: int})
        return Dataset.from_pandas(frame, data_definition=definition)

    snapshot = Report(metrics).run(current_data=dataset(current),
                                   reference_data=dataset(reference))
    share, drifted, prediction_drift = 0.0, {}, None
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        kind = config.get("type", "")
        if kind.endswith("DriftedColumnsCount"):
            share = float(metric["value"]["share"])
        elif kind.endswith("ValueDrift"):
            score = float(metric["value"])
            if config["column"] == PROBABILITY:
                prediction_drift = score
            elif is_drift(score, config):
                drifted[config["column"]] = score
    return DriftResult(share, drifted, prediction_drift, snapshot)


def add_to_workspace(workspace: Path, project_name: str, snapshot: Any) -> None:
    """Keep the window's report in the Evidently workspace (``make evidently-ui``)."""
    from evidently.ui.workspace import Workspace

    space = Workspace.create(str(workspace))
    projects = space.search_project(project_name)
    project = projects[0] if projects else space.create_project(project_name)
    space.add_run(project.id, snapshot, include_data=False)
