"""Typed views of the ``train``, ``tune`` and ``registry`` sections of params.yaml."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from level1_devops.params import FeatureParams, load_section

PERIOD = r"^\d{4}-\d{2}$"


class ModelParams(BaseModel):
    """Hyper-parameters of the HistGradientBoostingClassifier."""

    model_config = ConfigDict(extra="forbid")
    max_iter: int = Field(200, ge=1)
    learning_rate: float = Field(0.1, gt=0, le=1)
    max_leaf_nodes: int = Field(31, ge=2)
    min_samples_leaf: int = Field(40, ge=1)
    l2_regularization: float = Field(0.0, ge=0)


class TrainParams(BaseModel):
    """The ``train`` section: windows, seed, threshold and the model."""

    model_config = ConfigDict(extra="forbid")
    train_from: str = Field("2013-01", pattern=PERIOD)
    train_to: str = Field("2013-05", pattern=PERIOD)
    validation_from: str = Field("2013-06", pattern=PERIOD)
    validation_to: str = Field("2013-06", pattern=PERIOD)
    holdout_from: str = Field("2013-07", pattern=PERIOD)
    holdout_to: str = Field("2013-07", pattern=PERIOD)
    seed: int = 42
    decision_threshold: float = Field(0.3, gt=0, lt=1)
    max_rows_per_period: int | None = Field(None, ge=100)
    reference_rows: int = Field(5000, ge=100)
    model: ModelParams = ModelParams()
    features: FeatureParams = FeatureParams()

    @model_validator(mode="after")
    def _windows_in_time_order(self) -> TrainParams:
        order = [self.train_from, self.train_to, self.validation_from, self.validation_to,
                 self.holdout_from, self.holdout_to]
        if order != sorted(order) or self.train_to >= self.validation_from or (
                self.validation_to >= self.holdout_from):
            raise ValueError("windows must follow each other in time without overlap: "
                             f"train {self.train_from}..{self.train_to}, validation "
                             f"{self.validation_from}..{self.validation_to}, holdout "
                             f"{self.holdout_from}..{self.holdout_to}")
        return self

    def digest(self) -> str:
        """A short hash of every parameter (a lineage tag and part of the fingerprint)."""
        text = json.dumps(self.model_dump(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class TuneParams(BaseModel):
    """The ``tune`` section: candidate overrides of ``train.model``."""

    model_config = ConfigDict(extra="forbid")
    candidates: list[dict[str, Any]] = Field(default_factory=list)


class RegistryParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model_name: str = "flight-delay"


def load_train_params(project_dir: Path) -> TrainParams:
    """The ``train`` section, with the ``features`` section folded in (one label definition)."""
    train = load_section(project_dir, "train", TrainParams)
    return train.model_copy(update={
        "features": load_section(project_dir, "features", FeatureParams)})


def load_tune_params(project_dir: Path) -> TuneParams:
    return load_section(project_dir, "tune", TuneParams)


def load_registry_params(project_dir: Path) -> RegistryParams:
    return load_section(project_dir, "registry", RegistryParams)
