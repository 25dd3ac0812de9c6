"""Ground truth: when the outcome is known, the labels join the predictions made for them.

A prediction is matched by the record key (the adapter's ``KEY_COLUMNS``; for the flights:
date, carrier, flight number, origin, scheduled departure) to a validated record in
``data/raw``; predictions that name no record, or one not ingested yet, stay unmatched and
are counted, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from level1_devops.features import LABEL_COLUMN, LABEL_SOURCE_COLUMNS, FeatureParams, build_label
from level1_devops.feed import period_of
from level1_devops.ingest import ingested_periods, partition_path
from level1_devops.schema import KEY_COLUMNS, RECORD_ID_COLUMN, record_id


@dataclass
class Feedback:
    labelled: pd.DataFrame  # predictions with their label
    n_unmatched: int


def join_ground_truth(predictions: pd.DataFrame, raw_dir: Path,
                      params: FeatureParams | None = None) -> Feedback:
    """Label the predictions whose records are in raw with their outcome
    (``LABEL_SOURCE_COLUMNS``)."""
    has_key = predictions[list(KEY_COLUMNS)].notna().all(axis=1)
    keyed = predictions[has_key].copy()
    if keyed.empty:
        return Feedback(keyed.assign(**{LABEL_COLUMN: []}), len(predictions))
    keyed[RECORD_ID_COLUMN] = record_id(keyed)
    periods = set(period_of(keyed).dropna())
    landed = [partition_path(raw_dir, p) for p in sorted(periods & set(ingested_periods(raw_dir)))]
    if not landed:
        return Feedback(keyed.iloc[0:0].assign(**{LABEL_COLUMN: []}), len(predictions))
    truth = pd.concat(pd.read_parquet(p, columns=[RECORD_ID_COLUMN, *LABEL_SOURCE_COLUMNS])
                      for p in landed)
    truth[LABEL_COLUMN] = build_label(truth, params)
    labelled = keyed.merge(truth[[RECORD_ID_COLUMN, LABEL_COLUMN]], on=RECORD_ID_COLUMN,
                           how="inner")
    return Feedback(labelled, len(predictions) - len(labelled))
