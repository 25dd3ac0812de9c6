"""The model: an ordinal-encoded ColumnTransformer feeding a HistGradientBoostingClassifier.

Pure: build and fit only, no I/O. The fitted pipeline takes the feature builder's frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OrdinalEncoder

from level1_devops.features import CATEGORICAL_FEATURES
from level2_training.params import ModelParams


def build_model(params: ModelParams, seed: int) -> Pipeline:
    """An unfitted pipeline; categories unseen in training are treated as missing."""
    encode = ColumnTransformer(
        [("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                       encoded_missing_value=np.nan), CATEGORICAL_FEATURES)],
        remainder="passthrough", verbose_feature_names_out=False)
    boost = HistGradientBoostingClassifier(
        max_iter=params.max_iter, learning_rate=params.learning_rate,
        max_leaf_nodes=params.max_leaf_nodes, min_samples_leaf=params.min_samples_leaf,
        l2_regularization=params.l2_regularization,
        categorical_features=list(range(len(CATEGORICAL_FEATURES))),
        early_stopping=False,  # a fixed number of trees keeps runs reproducible and comparable
        random_state=seed)
    return Pipeline([("encode", encode), ("model", boost)])


def fit_model(X: pd.DataFrame, y: pd.Series, params: ModelParams, seed: int) -> Pipeline:
    """Build and fit; raises ValueError with sklearn's message when the data cannot be fit."""
    if y.nunique() < 2:
        raise ValueError(f"cannot fit: the training labels have a single class ({y.iloc[0]})")
    return build_model(params, seed).fit(X, y)
