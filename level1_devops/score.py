"""Level 1 batch scoring: the handed-off model file applied to a file of flights.

Input rows are validated with the schema first; rows that fail are written beside the
output with their reason (``<output>.rejected.parquet``), never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from level1_devops.features import FEATURE_COLUMNS, build_features
from level1_devops.model_file import ModelFileError, load_model
from level1_devops.schema import KEY_COLUMNS, RECORD_ID_COLUMN, validate

PROBABILITY_COLUMN = "p_late"


@dataclass(frozen=True)
class ScoreSummary:
    n_input: int
    n_scored: int
    n_rejected: int
    output_path: Path
    rejected_path: Path | None


def check_model_inputs(model: Any, where: str) -> None:
    """Refuse a model that needs inputs the feature builder does not make."""
    expected = list(getattr(model, "feature_names_in_", FEATURE_COLUMNS))
    unknown = [c for c in expected if c not in FEATURE_COLUMNS]
    if unknown:
        raise ModelFileError(f"{where}: the model needs inputs the feature builder does not make: "
                             f"{', '.join(unknown)}")


def score_flights(model: Any, flights: pd.DataFrame) -> pd.DataFrame:
    """P(late) for validated flights, with the flight key."""
    features = build_features(flights)
    expected = list(getattr(model, "feature_names_in_", FEATURE_COLUMNS))
    scores = flights[[RECORD_ID_COLUMN, *KEY_COLUMNS]].copy()
    scores[PROBABILITY_COLUMN] = model.predict_proba(features[expected])[:, 1]
    return scores


def read_flights(path: Path) -> pd.DataFrame:
    """A Parquet or CSV file of flight records."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such input file")
    if path.suffix == ".parquet":
        return pd.read_parquet(path)
    return pd.read_csv(path, dtype={"carrier": str, "origin": str, "dest": str, "tailnum": str,
                                    "time_hour": str}, low_memory=False)


def write_frame(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def score_file(model_path: Path, input_path: Path, output_path: Path) -> ScoreSummary:
    """Score every valid flight of ``input_path`` with the model file at ``model_path``.

    Raises:
        ModelFileError: the model cannot be loaded safely or needs unknown inputs.
        SchemaError: the input lacks schema columns.
    """
    model = load_model(model_path)
    check_model_inputs(model, str(model_path))
    flights = read_flights(input_path)
    valid, rejected = validate(flights, where=str(input_path))
    write_frame(score_flights(model, valid), output_path)
    rejected_path = None
    if len(rejected):
        rejected_path = output_path.with_name(output_path.stem + ".rejected.parquet")
        write_frame(rejected, rejected_path)
    return ScoreSummary(len(flights), len(valid), len(rejected), output_path, rejected_path)
