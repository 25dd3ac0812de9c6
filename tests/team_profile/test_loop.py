"""The whole loop through the team stack (team/demo.py, what `make team-demo` runs): train ->
tune on the Dask workers -> certify -> promote -> serve on two processes -> monitor through
the Prefect worker -> retrain -> hot-swap -> batch-score; then each result is read back from
the service that holds it: the registry over MLflow's API (and in PostgreSQL), the flow runs
over Prefect's API, the prediction log in PostgreSQL, the scrapes in Prometheus."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import psycopg
import pytest

from team.stack import Stack
from tests.team_profile.project import MONTHS

pytestmark = pytest.mark.team
MODEL = "flight-delay"


def basic(user_password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(user_password.encode()).decode()}


def mlflow_get(env: dict[str, str], path: str, **params: Any) -> Any:
    reply = httpx.get(f"{env['MLOPS_MLFLOW_TRACKING_URI']}/api/2.0/mlflow/{path}", params=params,
                      headers=basic(f"{env['MLFLOW_TRACKING_USERNAME']}:"
                                    f"{env['MLFLOW_TRACKING_PASSWORD']}"), timeout=10)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_the_registry_on_the_server_holds_the_loop(loop: dict[str, Any],
                                                   team_env: dict[str, str],
                                                   team_stack: Stack) -> None:
    model = mlflow_get(team_env, "registered-models/get", name=MODEL)["registered_model"]
    aliases = {a["alias"]: a["version"] for a in model.get("aliases", [])}
    assert aliases["champion"] == loop["champion"]
    # train, tune, retrain: three versions at least, two of them promoted in turn.
    assert len(loop["promoted"]) == 2 and loop["promoted"][-1] == loop["champion"]
    versions = mlflow_get(team_env, "model-versions/search", filter=f"name='{MODEL}'")
    assert len(versions["model_versions"]) >= 3
    # The same, straight from the PostgreSQL database behind the server.
    url = team_stack.database_urls["mlflow"].replace("+psycopg", "")
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT version FROM registered_model_aliases WHERE name = %s AND "
                           "alias = 'champion'", (MODEL,)).fetchone()
    assert row is not None and str(row[0]) == loop["champion"]


def test_tuning_ran_on_both_dask_workers(loop: dict[str, Any]) -> None:
    assert "team-worker-1" in loop["tune_output"] and "team-worker-2" in loop["tune_output"]


def test_the_worker_ran_the_deployments(loop: dict[str, Any], team_env: dict[str, str]) -> None:
    api = team_env["PREFECT_API_URL"]
    run_ids = [*loop["monitor_runs"].values(), loop["batch_run"]]
    run_ids += [loop["retrain_run"]] if loop["retrain_run"] else []
    for run_id in run_ids:
        reply = httpx.get(f"{api}/flow_runs/{run_id}",
                          headers=basic(team_env["PREFECT_API_AUTH_STRING"]), timeout=10)
        assert reply.status_code == 200, reply.text
        run = reply.json()
        assert run["state"]["type"] == "COMPLETED", run["state"]
        assert run["work_pool_name"] == team_env["MLOPS_WORK_POOL"]
        assert run["deployment_id"]


def test_both_service_processes_swapped_without_a_failed_request(loop: dict[str, Any]) -> None:
    old, new = loop["promoted"]
    for url, seen in loop["swaps"].items():
        assert seen[:1] == [old] and seen[-1] == new, (url, seen)
    assert loop["heartbeat_ok"] > 0 and loop["heartbeat_failed"] == 0


def test_both_processes_logged_to_postgres(loop: dict[str, Any], team_env: dict[str, str]) -> None:
    with psycopg.connect(team_env["MLOPS_STATE_DB_URL"]) as conn:
        n_writers, n_rows = conn.execute(
            "SELECT count(DISTINCT writer), sum(n_rows) FROM prediction_log_chunks").fetchone()
        n_windows = conn.execute("SELECT count(*) FROM monitoring_history").fetchone()[0]
    assert n_writers >= 2 and n_rows >= 2 * 1000
    assert n_windows >= len(MONTHS)


def test_prometheus_scraped_both_processes(loop: dict[str, Any],
                                           team_env: dict[str, str]) -> None:
    reply = httpx.get(f"{team_env['PROMETHEUS_URL']}/api/v1/query", timeout=10,
                      params={"query": 'sum by (instance) (mlops_requests_total{status="200"})'})
    series = reply.json()["data"]["result"]
    assert len(series) == 2 and all(float(s["value"][1]) > 0 for s in series), series
