"""Request and response models of the scoring service, built from the one schema.

Strict: a number is a JSON number (not a string, not a boolean), NaN and infinities are
refused, a closed category accepts only its values, and unknown fields are errors.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    create_model,
    model_validator,
)

from level1_devops.schema import COLUMNS_BY_NAME, Column
from level3_deployment.loading import EXAMPLE_FLIGHT

# What a caller sends: the flight as scheduled and the weather at its origin. The key fields
# (flight, sched_dep_time) are optional: they name the flight but never change its score.
REQUEST_FIELDS = ("year", "month", "day", "carrier", "flight", "origin", "dest", "distance",
                  "hour", "minute", "sched_dep_time", "temp", "dewp", "humid", "wind_dir",
                  "wind_speed", "wind_gust", "precip", "pressure", "visib")
OPTIONAL_KEY_FIELDS = ("flight", "sched_dep_time")


def _whole_number(value: Any) -> Any:
    """JSON Schema's integer includes 2033.0: accept a whole float as an int (never a bool)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _field(column: Column) -> tuple[Any, Any]:
    """The pydantic type and Field of one schema column (bounds on the type, so that they
    also hold, and show in the OpenAPI schema, when the field is optional)."""
    annotation: Any
    if column.allowed is not None:
        annotation = Literal[tuple(sorted(column.allowed))]
    elif column.kind == "str":
        annotation = Annotated[str, StringConstraints(pattern=column.pattern or r".+")]
    elif column.kind == "int":
        # Bounds before the validator, or they vanish from the JSON schema.
        annotation = Annotated[int, Field(ge=column.min, le=column.max),
                               BeforeValidator(_whole_number)]
    else:
        annotation = Annotated[float, Field(ge=column.min, le=column.max, allow_inf_nan=False)]
    required = column.required and column.name not in OPTIONAL_KEY_FIELDS
    if not required:
        annotation = annotation | None
    return annotation, Field(... if required else None, description=column.description)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class _FlightBase(_Strict):
    @model_validator(mode="after")
    def _a_calendar_date(self) -> _FlightBase:
        year, month, day = (getattr(self, k) for k in ("year", "month", "day"))
        try:
            date(year, month, day)
        except ValueError as err:
            raise ValueError(f"day: {year}-{month:02d}-{day:02d} is not a calendar date") from err
        return self


FlightRequest: type[BaseModel] = create_model(
    "FlightRequest",
    __base__=_FlightBase,
    __doc__="One scheduled flight with the weather at its origin at the scheduled hour.",
    **{name: _field(COLUMNS_BY_NAME[name]) for name in REQUEST_FIELDS},  # type: ignore[call-overload]
)
FlightRequest.model_config["json_schema_extra"] = {"examples": [EXAMPLE_FLIGHT]}
FlightRequest.model_rebuild(force=True)


def batch_request_model(max_rows: int) -> type[BaseModel]:
    """``{"flights": [...]}`` with 1 to ``max_rows`` flights."""
    return create_model(
        "BatchRequest", __base__=_Strict,
        flights=(list[FlightRequest], Field(..., min_length=1, max_length=max_rows,
                                            description=f"1 to {max_rows} flights")),
    )


class Prediction(BaseModel):
    probability: float = Field(description="P(arrival delay > 15 min, cancelled or diverted)")
    late: bool = Field(description="probability >= the model's decision threshold")


class PredictionResponse(Prediction):
    request_id: str
    model_name: str
    model_version: str
    threshold: float


class BatchResponse(BaseModel):
    request_id: str
    model_name: str
    model_version: str
    threshold: float
    predictions: list[Prediction]


class ModelInfo(BaseModel):
    model_name: str
    model_version: str
    run_id: str
    threshold: float
    certification: str
    tags: dict[str, str]


class ErrorBody(BaseModel):
    detail: Any
