"""The scoring service in process (FastAPI TestClient, lifespan included)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from level1_devops.schema import EXAMPLE_RECORD
from level1_devops.settings import Settings
from level3_deployment.params import ServeParams
from level3_deployment.service.app import create_app
from tests.helpers import context
from tests.level3_deployment.conftest import API_KEY, move_alias_by_hand, set_champion

pytestmark = pytest.mark.slow
SERVE = ServeParams(max_batch_rows=5, max_body_bytes=4096, poll_interval_s=0.2)


def ready_client(serve: ServeParams = SERVE) -> TestClient:
    settings = Settings(service_api_key=API_KEY)  # type: ignore[arg-type]
    params = context()[1].model_copy(update={"serve": serve})
    return TestClient(create_app(settings, params), base_url="http://127.0.0.1",
                      raise_server_exceptions=False)


def wait_until_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 60
    while client.get("/health/ready").status_code != 200:
        assert time.monotonic() < deadline, "service never became ready"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def client(trained: Any) -> Iterator[TestClient]:
    from level3_deployment.release import certify

    assert certify(*context(), trained.version).passed  # /model shows the summary
    set_champion(trained.version)
    with ready_client() as test_client:
        wait_until_ready(test_client)
        yield test_client


def test_predict_names_the_model_and_the_request(client: TestClient, trained: Any) -> None:
    reply = client.post("/predict", json=EXAMPLE_RECORD)
    assert reply.status_code == 200
    body = reply.json()
    assert 0 <= body["probability"] <= 1 and body["model_version"] == trained.version
    assert body["late"] == (body["probability"] >= body["threshold"])
    assert len(body["request_id"]) == 32


def test_batch_matches_single_predictions(client: TestClient) -> None:
    flights = [dict(EXAMPLE_RECORD, hour=h) for h in (6, 12, 18)]
    batch = client.post("/predict/batch", json={"flights": flights}).json()["predictions"]
    single = [client.post("/predict", json=f).json()["probability"] for f in flights]
    assert [p["probability"] for p in batch] == pytest.approx(single)


@pytest.mark.parametrize(("change", "field"), [
    ({"distance": "far"}, "distance"),          # wrong type
    ({"distance": True}, "distance"),           # a boolean is not a number
    ({"temp": "80"}, "temp"),                   # a string is not a number
    ({"origin": "BOS"}, "origin"),              # outside the closed category
    ({"month": 13}, "month"),                   # out of range
    ({"carrier": None}, "carrier"),             # required
    ({"colour": "blue"}, "colour"),             # unknown field
])
def test_bad_fields_get_422_naming_the_field(client: TestClient, change: dict[str, Any],
                                             field: str) -> None:
    reply = client.post("/predict", json={**EXAMPLE_RECORD, **change})
    assert reply.status_code == 422
    assert field in [loc for error in reply.json()["detail"] for loc in error["loc"]]


def test_missing_field_nan_and_infinity_get_422(client: TestClient) -> None:
    missing = {k: v for k, v in EXAMPLE_RECORD.items() if k != "dest"}
    assert client.post("/predict", json=missing).status_code == 422
    for literal in ("NaN", "Infinity", "-Infinity"):
        text = json.dumps(EXAMPLE_RECORD).replace('"temp": 80.06', f'"temp": {literal}')
        reply = client.post("/predict", content=text,
                            headers={"content-type": "application/json"})
        assert reply.status_code == 422, literal
        assert "temp" in str(reply.json()["detail"])


def test_batch_limits(client: TestClient) -> None:
    assert client.post("/predict/batch", json={"flights": []}).status_code == 422
    too_many = {"flights": [EXAMPLE_RECORD] * (SERVE.max_batch_rows + 1)}
    reply = client.post("/predict/batch", json=too_many)
    assert reply.status_code in (413, 422)  # 6 rows stay under the 4 KiB body limit: 422
    assert reply.status_code == 422 and "flights" in str(reply.json()["detail"])


def test_body_type_and_size_are_checked_before_parsing(client: TestClient) -> None:
    big = json.dumps({"flights": [EXAMPLE_RECORD] * 50})
    reply = client.post("/predict/batch", content=big,
                        headers={"content-type": "application/json"})
    assert reply.status_code == 413 and "4096 bytes" in reply.json()["detail"]
    form = client.post("/predict", data={"year": "2013"})
    assert form.status_code == 415 and "application/json" in form.json()["detail"]
    garbage = client.post("/predict", content=b"{not json",
                          headers={"content-type": "application/json"})
    assert garbage.status_code == 422


def test_health_model_and_metrics(client: TestClient, trained: Any) -> None:
    assert client.get("/health/live").json() == {"status": "alive"}
    assert client.get("/health/ready").json()["model_version"] == trained.version
    info = client.get("/model").json()
    assert info["model_version"] == trained.version and info["certification"] == "passed"
    client.post("/predict", json={**EXAMPLE_RECORD, "origin": "BOS"})
    text = client.get("/metrics").text
    assert 'mlops_requests_total{route="/predict",status="422"}' in text
    assert 'mlops_model_version{model_name="flight-delay"} ' + f"{float(trained.version)}" in text
    assert "mlops_request_latency_seconds_bucket" in text


def test_admin_reload_needs_the_key(client: TestClient) -> None:
    assert client.post("/admin/reload", json={}).status_code == 403
    assert client.post("/admin/reload", json={}, headers={"x-api-key": "wrong"}).status_code == 403
    reply = client.post("/admin/reload", json={}, headers={"x-api-key": API_KEY})
    assert reply.status_code == 200 and reply.json()["swapped"] is False


def test_a_prediction_slower_than_the_timeout_gets_504(trained: Any) -> None:
    with ready_client(SERVE.model_copy(update={"predict_timeout_s": 1e-6})) as slow:
        wait_until_ready(slow)
        reply = slow.post("/predict", json=EXAMPLE_RECORD)
        assert reply.status_code == 504 and "longer than" in reply.json()["detail"]


def test_a_champion_that_cannot_load_is_refused_and_the_old_one_serves(
        trained: Any, unloadable_version: str) -> None:
    set_champion(trained.version)
    with ready_client() as service:
        wait_until_ready(service)
        move_alias_by_hand(unloadable_version)
        reply = service.post("/admin/reload", json={}, headers={"x-api-key": API_KEY})
        assert reply.json()["swapped"] is False and "refused" in reply.json()["message"]
        assert service.post("/predict", json=EXAMPLE_RECORD).json()["model_version"] == (
            trained.version)
        time.sleep(0.5)  # a few polls of the alias: still refused, still serving
        assert service.get("/health/ready").json()["model_version"] == trained.version
    set_champion(trained.version)


def test_not_ready_until_a_champion_exists(trained: Any) -> None:
    from mlflow import MlflowClient

    registry = MlflowClient(tracking_uri=Settings().tracking_uri)
    registry.delete_registered_model_alias("flight-delay", "champion")
    try:
        with ready_client() as service:
            assert service.get("/health/ready").status_code == 503
            assert service.post("/predict", json=EXAMPLE_RECORD).status_code == 503
            set_champion(trained.version)
            wait_until_ready(service)  # picked up by polling, no restart
    finally:
        set_champion(trained.version)
