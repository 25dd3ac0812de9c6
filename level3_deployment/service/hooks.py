"""What a higher level may attach to the scoring service, declared (``create_app``'s arguments).

- a ``PredictionSink`` sees every prediction: request id, the model, the records and their
  probabilities; it shapes its own rows (Level 4's prediction log). It is called on the
  request path, so it must only hand the data over (an append), never do I/O;
- a ``Lifespan`` runs beside the app: entered once the service has started, left before the
  service stops (after the last request was answered), e.g. the log's writer;
- a collector adds series to the app's ``/metrics`` (prometheus_client's collector protocol).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from level3_deployment.loading import LoadedModel


class PredictionSink(Protocol):
    def __call__(self, request_id: str, model: LoadedModel, records: Sequence[dict[str, Any]],
                 probabilities: Sequence[float]) -> None: ...


class Collector(Protocol):
    def collect(self) -> Iterable[Any]: ...


Lifespan = Callable[[], AbstractAsyncContextManager[None]]
