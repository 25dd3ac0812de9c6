"""The service and the release under hostile input, tampered models and operators' accidents.

Each test names what it holds against; the hostile-input ones run against a real uvicorn.
"""

from __future__ import annotations

import getpass
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
from fastapi.testclient import TestClient
from mlflow import MlflowClient

from level1_devops.schema import EXAMPLE_RECORD, RECORDS_NAME
from level1_devops.settings import Settings
from level3_deployment.client import free_port, wait_ready
from level3_deployment.params import ServeParams
from level3_deployment.service.app import create_app
from tests.helpers import context, make, mlops
from tests.level3_deployment.conftest import (
    API_KEY,
    LiveService,
    _fit,
    move_alias_by_hand,
    register_model,
    set_champion,
)
from tests.level3_deployment.test_service import ready_client

pytestmark = pytest.mark.slow
NAME = "flight-delay"
FAST = ServeParams(max_batch_rows=1000, poll_interval_s=0.2)


def registry() -> MlflowClient:
    return MlflowClient(tracking_uri=Settings().tracking_uri)


def wait_until(condition: Any, what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def serving(service: TestClient) -> str | None:
    reply = service.get("/health/ready")
    return reply.json().get("model_version") if reply.status_code == 200 else None


def refusals(service: TestClient, kind: str) -> float:
    for line in service.get("/metrics").text.splitlines():
        if line.startswith(f'mlops_model_refusals_total{{kind="{kind}"}}'):
            return float(line.split()[-1])
    return 0.0


@pytest.fixture(scope="module")
def another_version(training_frame: tuple[Any, Any]) -> str:
    """A sound model (another seed), registered as `mlops train` would, not yet certified."""
    X, y = training_frame
    return register_model(_fit(X, y, seed=23), "another-seed")


# --- Security -------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["", "   ", "short-key"])
def test_an_empty_or_short_key_is_refused_at_start(key: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MLOPS_SERVICE_API_KEY is (empty|short)"):
        Settings(service_api_key=key)  # type: ignore[arg-type]
    env_project = tmp_path / "project"
    env_project.mkdir()
    done = subprocess.run([sys.executable, "-m", "level1_devops.cli", "serve", "--app", "level3"],
                          env={**os.environ, "MLOPS_PROJECT_DIR": str(env_project),
                               "MLOPS_SERVICE_API_KEY": key},
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1 and "MLOPS_SERVICE_API_KEY is" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("value", [b"\xff\xfe", "cl\u00e9".encode(), "\u20ac".encode() * 40,
                                   b"\x80" * 64, API_KEY.encode() + b"\xe9"])
def test_any_header_bytes_get_a_4xx_with_a_body(live_service: LiveService, value: bytes) -> None:
    reply = httpx.post(f"{live_service.base_url}/admin/reload",
                       headers={"x-api-key": value}, timeout=30)
    assert reply.status_code == 403 and reply.json()["detail"]
    # The same bytes anywhere else change nothing.
    reply = httpx.post(f"{live_service.base_url}/predict", json=EXAMPLE_RECORD,
                       headers={"x-api-key": value, "x-anything": value}, timeout=30)
    assert reply.status_code == 200


def _uvicorn(app: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", app, "--host",
                                 "0.0.0.0", "--port", str(port)],
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def test_the_service_refuses_an_exposed_address_without_a_key(trained: Any,
                                                              tmp_path: Path) -> None:
    """A bare `uvicorn --factory ... --host 0.0.0.0` (not `mlops serve`): no key, no service."""
    set_champion(trained.version)
    env = {k: v for k, v in os.environ.items() if k != "MLOPS_SERVICE_API_KEY"}
    log = tmp_path / "exposed.log"
    server = _uvicorn("level4_retraining.logged_service:create_app", free_port(), env, log)
    try:
        server.wait(timeout=90)
    finally:
        if server.poll() is None:
            server.kill()
            pytest.fail("an exposed service without a key kept running")
    assert "refusing to serve on 0.0.0.0" in log.read_text()
    # The container / Kubernetes path: the same command with a key starts and serves.
    port = free_port()
    server = _uvicorn("level4_retraining.logged_service:create_app", port,
                      {**env, "MLOPS_SERVICE_API_KEY": API_KEY}, tmp_path / "keyed.log")
    try:
        wait_ready(f"http://127.0.0.1:{port}", server)
        reply = httpx.post(f"http://127.0.0.1:{port}/predict", json=EXAMPLE_RECORD)
        assert reply.status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def test_a_request_on_an_exposed_address_without_a_key_gets_503(trained: Any) -> None:
    set_champion(trained.version)
    settings = Settings()
    app = create_app(settings, context()[1])
    with TestClient(app, base_url="http://10.1.2.3", raise_server_exceptions=False) as exposed:
        reply = exposed.post("/predict", json=EXAMPLE_RECORD)
        assert reply.status_code == 503 and "MLOPS_SERVICE_API_KEY" in reply.json()["detail"]


@pytest.mark.parametrize(("target", "variable", "value", "says"), [
    ("promote", "VERSION", "1; touch {marker} #", "not a registry version"),
    ("promote", "VERSION", "$(shell touch {marker})", "not a registry version"),
    ("promote", "VERSION", "1 `touch {marker}`", "not a registry version"),
    ("monitor", "WINDOW", "2013-07; touch {marker}", "expected YYYY-MM"),
    ("monitor", "WINDOW", "2013-07\ntouch {marker}", "expected YYYY-MM"),
    ("level4", "REPLAY_ARGS", "--first 2013-06; touch {marker}", "unexpected extra argument"),
    ("level4", "REPLAY_ARGS", "$(shell touch {marker})", "unexpected extra argument"),
])
def test_a_hostile_value_through_make_runs_nothing(l2_project: Path, tmp_path: Path,
                                                   target: str, variable: str, value: str,
                                                   says: str) -> None:
    marker = tmp_path / "pwned"
    done = make(target, f"{variable}={value.format(marker=marker)}", project=l2_project,
                check=False)
    said = re.sub(r"[\s\u2500-\u257f]+", " ", done.stdout + done.stderr)  # no rich box
    assert done.returncode != 0 and says in said, said[-500:]
    assert not marker.exists(), f"make {target} {variable}=... ran a command"


def test_model_info_shows_no_user_name(live_service: LiveService, trained: Any) -> None:
    set_champion(trained.version)
    info = httpx.get(f"{live_service.base_url}/model", timeout=30).json()
    assert info["tags"] and not [k for k in info["tags"] if k.endswith(".by")]
    assert getpass.getuser() not in info["tags"].values()
    # The audit trail keeps it, in the registry.
    tags = registry().get_model_version(NAME, trained.version).tags
    assert "promoted.by" in tags


def test_replay_refuses_a_state_dir_outside_the_state_folder(tmp_path: Path) -> None:
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "2013-01.parquet").write_bytes(b"ingested")
    for folder in ("data", ".", "..", str(tmp_path / "local"), "/tmp"):
        done = mlops(tmp_path, "replay", "--state-dir", folder, check=False)
        assert done.returncode == 1 and "must be a folder inside" in done.stderr, folder
    assert (raw / "2013-01.parquet").read_bytes() == b"ingested"


# --- What @champion may serve ---------------------------------------------------------------

def test_a_version_moved_by_hand_is_refused_until_it_is_promoted(
        trained: Any, another_version: str) -> None:
    from level3_deployment.release import certify, promote

    set_champion(trained.version)
    assert certify(*context(), another_version).passed  # certified, but not released
    with ready_client(FAST) as service:
        wait_until(lambda: serving(service) == trained.version, "never served the champion")
        move_alias_by_hand(another_version)
        wait_until(lambda: refusals(service, "deliberate") >= 1, "the hand move was served")
        assert serving(service) == trained.version
        reload = service.post("/admin/reload", headers={"x-api-key": API_KEY}).json()
        assert "without `mlops promote`" in reload["message"] and not reload["swapped"]
        # Released properly, the same version is picked up by polling: the refusal was of
        # that registry state, not of the version for ever.
        move_alias_by_hand(trained.version)
        promote(*context(), another_version, reason="test: released after a hand move")
        wait_until(lambda: serving(service) == another_version, "never served the release")
    set_champion(trained.version)


def test_an_uncertified_version_is_refused(trained: Any, training_frame: tuple[Any, Any]) -> None:
    X, y = training_frame
    uncertified = register_model(_fit(X, y, seed=31), "never-certified")
    set_champion(trained.version)
    with ready_client(FAST) as service:
        wait_until(lambda: serving(service) == trained.version, "never served the champion")
        move_alias_by_hand(uncertified)
        reload = service.post("/admin/reload", headers={"x-api-key": API_KEY}).json()
        assert "is not certified" in reload["message"] and not reload["swapped"]
        assert service.post("/predict", json=EXAMPLE_RECORD).json()["model_version"] == (
            trained.version)
    set_champion(trained.version)


def _model_file(version: str) -> Path:
    client = registry()
    mv = client.get_model_version(NAME, version)
    model_id = mv.model_id or str(mv.source).removeprefix("models:/")
    location = client.get_logged_model(model_id).artifact_location
    return Path(urlparse(location).path) / "model.skops"


def test_a_tampered_artifact_is_refused_and_the_old_model_serves(
        trained: Any, training_frame: tuple[Any, Any]) -> None:
    from level3_deployment.release import certify, move_champion
    from level3_deployment.release import version_for_alias as alias

    X, y = training_frame
    victim = register_model(_fit(X, y, seed=37), "to-be-tampered")
    assert certify(*context(), victim).passed
    set_champion(trained.version)
    # After certification, someone swaps the file in the artifact store for another model.
    _model_file(victim).write_bytes(_model_file(trained.version).read_bytes())
    with ready_client(FAST) as service:
        wait_until(lambda: serving(service) == trained.version, "never served the champion")
        move_champion(registry(), NAME, victim, alias(registry(), NAME, "champion"), "promoted",
                      "test: release record in place, file tampered")
        reload = service.post("/admin/reload", headers={"x-api-key": API_KEY}).json()
        assert "changed after registration" in reload["message"] and not reload["swapped"]
        assert refusals(service, "deliberate") >= 1
        assert service.post("/predict", json=EXAMPLE_RECORD).json()["model_version"] == (
            trained.version)
    report = certify(*context(), victim)
    assert [c.name for c in report.failed] == ["loads_with_service_loader"]
    set_champion(trained.version)


def test_a_threshold_that_is_not_a_number_is_a_refusal_not_a_crash(
        trained: Any, training_frame: tuple[Any, Any]) -> None:
    from level3_deployment.loading import ModelLoadError, load_version

    X, y = training_frame
    odd = register_model(_fit(X, y, seed=41), "threshold-not-a-number",
                         threshold="half")  # type: ignore[arg-type]
    with pytest.raises(ModelLoadError, match="decision_threshold 'half' is not a probability"
                       ) as refused:
        load_version(registry(), NAME, odd)
    assert not refused.value.transient
    set_champion(trained.version)
    with ready_client(FAST) as service:
        wait_until(lambda: serving(service) == trained.version, "never served the champion")
        move_alias_by_hand(odd)
        reload = service.post("/admin/reload", headers={"x-api-key": API_KEY}).json()
        assert "not a probability" in reload["message"]
        time.sleep(0.5)  # a few polls: the follower is alive, the old model serves
        assert serving(service) == trained.version
    set_champion(trained.version)


def test_a_transient_failure_is_retried_and_the_version_served(
        trained: Any, training_frame: tuple[Any, Any]) -> None:
    from level3_deployment.release import certify, move_champion
    from level3_deployment.release import version_for_alias as alias

    X, y = training_frame
    later = register_model(_fit(X, y, seed=43), "store-briefly-away")
    assert certify(*context(), later).passed
    set_champion(trained.version)
    with ready_client(FAST) as service:
        wait_until(lambda: serving(service) == trained.version, "never served the champion")
        folder = _model_file(later).parent
        hidden = folder.with_name(folder.name + ".away")
        folder.rename(hidden)  # the artifact store is away when the release happens
        try:
            move_champion(registry(), NAME, later, alias(registry(), NAME, "champion"),
                          "promoted", "test: store away")
            wait_until(lambda: refusals(service, "transient") >= 1, "no transient failure seen")
            assert serving(service) == trained.version
        finally:
            hidden.rename(folder)
        wait_until(lambda: serving(service) == later, "the version was never retried")
    set_champion(trained.version)


# --- Supervision and overload ----------------------------------------------------------------

def test_a_dead_batcher_turns_the_service_not_ready_and_is_restarted(trained: Any) -> None:
    set_champion(trained.version)
    with ready_client(FAST) as service:
        wait_until(lambda: serving(service) == trained.version, "never served the champion")
        batcher = service.app.state.service.batcher  # type: ignore[attr-defined]
        original = batcher._current

        def broken() -> Any:  # an exception outside the batcher's own try
            batcher._current = original
            raise RuntimeError("simulated bug in the batcher loop")

        batcher._current = broken
        reply = service.post("/predict", json=EXAMPLE_RECORD)
        assert reply.status_code == 503 and reply.json()["detail"]
        ready = service.get("/health/ready")
        assert ready.status_code == 503 and "batcher" in ready.json()["detail"]
        wait_until(lambda: serving(service) == trained.version, "the batcher was not restarted")
        assert service.post("/predict", json=EXAMPLE_RECORD).status_code == 200
        assert 'mlops_background_restarts_total{loop="batcher"} 1.0' in service.get(
            "/metrics").text


def test_past_the_queue_bound_requests_get_503_with_retry_after_at_once(trained: Any) -> None:
    set_champion(trained.version)
    tight = FAST.model_copy(update={"max_queued_requests": 1, "microbatch_max_rows": 1,
                                    "max_concurrent_batches": 1})
    with ready_client(tight) as service:
        wait_until(lambda: serving(service) == trained.version, "never served the champion")
        barrier = threading.Barrier(32)

        def call(i: int) -> tuple[int, dict[str, str], float]:
            barrier.wait()
            started = time.perf_counter()
            if i % 4 == 0:
                reply = service.post("/predict/batch", json={RECORDS_NAME: [EXAMPLE_RECORD] * 500})
            else:
                reply = service.post("/predict", json=EXAMPLE_RECORD)
            return reply.status_code, dict(reply.headers), time.perf_counter() - started

        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(call, range(32)))
    statuses = [status for status, _, _ in results]
    assert set(statuses) <= {200, 503} and 200 in statuses and 503 in statuses, statuses
    assert all(headers.get("retry-after") == "1" for status, headers, _ in results
               if status == 503)


def test_a_timed_out_batch_stops_scoring() -> None:
    from level3_deployment.service.routes import _score_chunks

    calls = []

    class Counting:
        def predict_records(self, records: list[Any]) -> list[float]:
            calls.append(len(records))
            stop.set()  # the caller was answered 504 while the first chunk scored
            return [0.5] * len(records)

    stop = threading.Event()
    with pytest.raises(TimeoutError, match="cancelled"):
        _score_chunks(Counting(), [EXAMPLE_RECORD] * 1000, stop)  # type: ignore[arg-type]
    assert calls == [100]


# --- Concurrent releases -----------------------------------------------------------------------

def test_a_release_against_a_stale_champion_is_refused(trained: Any, good_version: str) -> None:
    from level3_deployment.release import ReleaseError, certify, move_champion

    set_champion(trained.version)
    assert certify(*context(), good_version).passed
    with pytest.raises(ReleaseError, match="moved from v999 to v"):
        move_champion(registry(), NAME, good_version, "999", "promoted", "test: stale")
    assert str(registry().get_model_version_by_alias(NAME, "champion").version) == (
        trained.version)


def test_two_promotions_at_once_take_turns(trained: Any, good_version: str,
                                           another_version: str) -> None:
    from level3_deployment.release import ReleaseError, promote

    set_champion(trained.version)
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(promote, *context(), v, f"test: at once {v}")
                   for v in (good_version, another_version)]
        reports = []
        for future in futures:
            try:
                reports.append(future.result()[0])
            except ReleaseError as err:  # a clean refusal is fine; a stale comparison is not
                reports.append(err.report)
    first = [r for r in reports if r.champion_version == trained.version]
    second = [r for r in reports if r.champion_version != trained.version]
    # They took turns: the second was certified against the champion the first one left.
    assert len(first) == 1 and len(second) == 1, [r.champion_version for r in reports]
    assert second[0].champion_version == first[0].version
    set_champion(trained.version)


def test_the_artifact_of_every_registered_version_has_its_digest(trained: Any) -> None:
    from level2_training.registry import DIGEST_TAG, sha256_of

    tags = registry().get_model_version(NAME, trained.version).tags
    assert tags[DIGEST_TAG] == sha256_of(_model_file(trained.version))
