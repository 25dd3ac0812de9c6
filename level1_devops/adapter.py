"""What the platform needs from an example, and where a fork states it.

Levels 2-4 know nothing of flights: everything about the example comes from Level 1's adapter,
and a fork that brings its own data rewrites these three modules and ``params.yaml``:

- ``schema.py``: the columns (``COLUMNS``, ``COLUMNS_BY_NAME``), the record key
  (``KEY_COLUMNS``, ``RECORD_ID_COLUMN``, ``record_id``), ``validate``, what the scoring
  service takes (``REQUEST_COLUMNS``, ``OPTIONAL_REQUEST_COLUMNS``, ``record_problems``,
  ``RECORDS_NAME``) and its examples (``EXAMPLE_RECORD``, ``PROBE_RECORDS``,
  ``INVALID_RECORD``, ``describe_record``);
- ``feed.py``: the upstream (``Feed``, ``FeedError``, ``default_feed_dir``) and the period and
  date of a record (``PERIOD_COLUMN``, ``period_of``, ``record_dates``);
- ``features.py``: the features and the label (``FeatureParams``, ``CATEGORICAL_FEATURES``,
  ``NUMERIC_FEATURES``, ``FEATURE_COLUMNS``, ``LABEL_COLUMN``, ``LABEL_SOURCE_COLUMNS``,
  ``build_features``, ``feature_row``, ``build_label``), what must never move a prediction
  (``LEAKAGE_COLUMNS``, ``INVARIANT_COLUMNS``), the behaviour scenarios certification runs
  (``SCENARIOS``), ``DEFAULT_DECISION_THRESHOLD`` and the service's words
  (``SERVICE_TITLE``, ``PREDICTION_DESCRIPTION``).

``tests/test_fork.py`` runs the whole chain on a second example given this way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Scenario:
    """A behaviour test: records changed one way must move P(positive) one way (or not at all).

    ``direction`` +1: the transform must not lower the mean probability; -1: must not raise it.
    """

    name: str
    description: str
    transform: Callable[[pd.DataFrame], pd.DataFrame]
    direction: int = 1
