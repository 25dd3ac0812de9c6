"""Ground truth: when flights land, their labels join the predictions made for them.

A prediction is matched by the flight key (date, carrier, flight number, origin, scheduled
departure) to a validated flight in ``data/raw``; predictions that name no flight, or a
flight not ingested yet, stay unmatched and are counted, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from level1_devops.features import LABEL_COLUMN, build_label
from level1_devops.ingest import ingested_periods, partition_path
from level1_devops.params import FeatureParams
from level1_devops.schema import FLIGHT_ID_COLUMN, KEY_COLUMNS, flight_id


@dataclass
class Feedback:
    labelled: pd.DataFrame  # predictions with their label
    n_unmatched: int


def join_ground_truth(predictions: pd.DataFrame, raw_dir: Path,
                      params: FeatureParams | None = None) -> Feedback:
    """Label the predictions whose flights have landed (are in raw with their arr_delay)."""
    has_key = predictions[list(KEY_COLUMNS)].notna().all(axis=1)
    keyed = predictions[has_key].copy()
    if keyed.empty:
        return Feedback(keyed.assign(**{LABEL_COLUMN: []}), len(predictions))
    keyed[FLIGHT_ID_COLUMN] = flight_id(keyed)
    periods = {f"{y:04d}-{m:02d}" for y, m in zip(keyed["year"].astype(int),
                                                  keyed["month"].astype(int), strict=True)}
    landed = [partition_path(raw_dir, p) for p in sorted(periods & set(ingested_periods(raw_dir)))]
    if not landed:
        return Feedback(keyed.iloc[0:0].assign(**{LABEL_COLUMN: []}), len(predictions))
    truth = pd.concat(pd.read_parquet(p, columns=[FLIGHT_ID_COLUMN, "arr_delay"])
                      for p in landed)
    truth[LABEL_COLUMN] = build_label(truth, params)
    labelled = keyed.merge(truth[[FLIGHT_ID_COLUMN, LABEL_COLUMN]], on=FLIGHT_ID_COLUMN,
                           how="inner")
    return Feedback(labelled, len(predictions) - len(labelled))
