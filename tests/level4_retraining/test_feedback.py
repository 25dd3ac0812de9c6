"""Ground truth joins the logged predictions by flight key; the unmatched are counted."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from level1_devops.features import LABEL_COLUMN, build_label
from level1_devops.feed import Feed
from level1_devops.ingest import ingest
from level4_retraining.feedback import join_ground_truth


def test_landed_flights_get_their_label_and_the_rest_are_counted(tmp_path: Path,
                                                                 small_feed: Path) -> None:
    raw = tmp_path / "raw"
    ingest(Feed(small_feed), raw, tmp_path / "quarantine", until="2013-02")
    january = pd.read_parquet(raw / "2013-01.parquet").head(20)
    predictions = january.drop(columns=["arr_delay", "flight_id"]).assign(probability=0.3)
    no_key = predictions.head(3).assign(flight=None)             # a caller that named no flight
    not_landed = predictions.head(2).assign(month=9)             # September: not ingested yet
    feedback = join_ground_truth(pd.concat([predictions, no_key, not_landed]), raw)
    assert len(feedback.labelled) == 20 and feedback.n_unmatched == 5
    expected = build_label(january).tolist()
    assert feedback.labelled[LABEL_COLUMN].tolist() == expected


def test_nothing_landed_yet(tmp_path: Path, small_feed: Path) -> None:
    predictions = pd.DataFrame({"year": [2013], "month": [1], "day": [1], "carrier": ["UA"],
                                "flight": [1545], "origin": ["EWR"], "sched_dep_time": [515]})
    feedback = join_ground_truth(predictions, tmp_path / "raw")
    assert feedback.labelled.empty and feedback.n_unmatched == 1
