"""Typed views of the ``train``, ``tune`` and ``registry`` sections of params.yaml.

``TrainingParams`` is params.yaml as Level 2 reads it: an entry point loads it once and hands
it down; no flow or task reads params.yaml itself. Levels 3 and 4 extend it with their own
sections.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Self

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from level1_devops.features import DEFAULT_DECISION_THRESHOLD, FeatureParams
from level1_devops.params import load_section

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
    decision_threshold: float = Field(DEFAULT_DECISION_THRESHOLD, gt=0, lt=1)
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


def windows_ending(holdout: str, n_train: int) -> dict[str, str]:
    """Train on ``n_train`` periods, validate on the next one, hold out ``holdout``: the
    consecutive periods that end at ``holdout``, as ``TrainParams`` fields."""
    last = pd.Period(holdout, freq="M")
    first = last - (n_train + 1)
    return {"train_from": str(first), "train_to": str(last - 2),
            "validation_from": str(last - 1), "validation_to": str(last - 1),
            "holdout_from": str(last), "holdout_to": str(last)}


class TrainingParams(BaseModel):
    """The sections Level 2 uses, loaded once (``load``) and passed down."""

    model_config = ConfigDict(extra="forbid")
    train: TrainParams = TrainParams()
    tune: TuneParams = TuneParams()
    registry: RegistryParams = RegistryParams()

    @property
    def model_name(self) -> str:
        return self.registry.model_name

    def with_train(self, **update: Any) -> Self:
        """A copy whose ``train`` section has ``update`` applied (validated)."""
        train = TrainParams.model_validate({**self.train.model_dump(), **update})
        return self.model_copy(update={"train": train})

    @classmethod
    def sections(cls, project_dir: Path) -> dict[str, Any]:
        """Every section this class declares, read from the project's params.yaml; ``train``
        has the ``features`` section folded in (one label definition)."""
        found: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            model = field.annotation
            assert isinstance(model, type) and issubclass(model, BaseModel)
            found[name] = load_section(project_dir, name, model)
        found["train"] = found["train"].model_copy(update={
            "features": load_section(project_dir, "features", FeatureParams)})
        return found

    @classmethod
    def load(cls, project_dir: Path) -> Self:
        """params.yaml of ``project_dir``, every section validated.

        Raises:
            ValueError: a section does not fit its model; the message names the key.
        """
        return cls(**cls.sections(project_dir))
