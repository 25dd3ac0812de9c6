"""What `make level3` shows: Level 3's service started, a few real requests, the answers, a stop.

    uv run python -m level3_deployment.demo
"""

from __future__ import annotations

import httpx

from level1_devops.schema import INVALID_RECORD, RECORDS_NAME, describe_record
from level1_devops.settings import Settings, get_settings
from level3_deployment.client import real_records, running_service
from level3_deployment.params import DeploymentParams


def main() -> None:
    settings = get_settings()
    params = DeploymentParams.load(settings.project_dir)
    log_path = settings.service_log_path
    print(f"Starting Level 3's service (`mlops serve --app level3`, log: {log_path}) ...",
          flush=True)
    try:
        with running_service(settings, "level3", log_path) as base:
            show(settings, params, base)
    except RuntimeError as err:
        raise SystemExit(str(err)) from err
    print("Service stopped (graceful shutdown).")


def show(settings: Settings, params: DeploymentParams, base: str) -> None:
    """A few real requests and their answers."""
    records = real_records(settings, params.train, 100)
    with httpx.Client(base_url=base, timeout=30) as http:
        print(f"\nGET /model -> {http.get('/model').json()}")
        for record in records[:3]:
            reply = http.post("/predict", json=record).json()
            print(f"\nPOST /predict {describe_record(record)}\n  -> P "
                  f"{reply['probability']:.3f}, late={reply['late']}, model "
                  f"v{reply['model_version']}, request {reply['request_id']}")
        batch = http.post("/predict/batch", json={RECORDS_NAME: records}).json()
        late = sum(p["late"] for p in batch["predictions"])
        print(f"\nPOST /predict/batch with {len(records)} {RECORDS_NAME} -> {late} predicted "
              f"late (model v{batch['model_version']})")
        invalid, why = INVALID_RECORD
        bad = http.post("/predict", json=invalid)
        print(f"\nA bad request ({why}) -> {bad.status_code} {bad.json()}")
    print(f"\nDocs while it runs: {base}/docs (start it yourself with `make serve`: "
          "http://127.0.0.1:8000/docs)")


if __name__ == "__main__":
    main()
