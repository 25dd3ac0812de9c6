"""The team profile's deployment files (team/compose.yaml, team/k8s/), checked offline: every
service has an image, every variable is one the project or its libraries read, every published
port is on loopback, secrets only come from git-ignored files or placeholder templates, and the
database init script really creates each service's database on a throwaway PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from level1_devops.settings import Settings
from tests.helpers import REPO_ROOT, run

TEAM = REPO_ROOT / "team"
K8S = TEAM / "k8s"
BIN = Path(sys.executable).parent
MANIFESTS = sorted(K8S.glob("*.yaml"))
SERVICE_DEPLOYMENT = REPO_ROOT / "level3_deployment" / "k8s" / "deployment.yaml"
EXAMPLES = {"compose.env": TEAM / "compose.env.example",
            "compose-servers.env": TEAM / "compose-servers.env.example"}
# Variables read by the official images' entrypoints and by libpq (psql): documented by
# them, not importable, so listed here.
POSTGRES_VARIABLES = {"POSTGRES_PASSWORD_FILE", "POSTGRES_HOST_AUTH_METHOD",
                      "POSTGRES_INITDB_ARGS", "PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD",
                      "PGDATABASE"}
# A name like these holds a secret: it never gets an inline value.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|AUTH_STRING|STATE_DB_URL|STORE_URI|"
                         r"CONNECTION_URL|WEBHOOK")
PLACEHOLDER = "CHANGE-ME"


def is_secret(name: str) -> bool:
    """A variable that holds a secret (one that names a secret's file does not)."""
    return bool(SECRET_NAME.search(name)) and not name.endswith(("_FILE", "_PATH"))


def settings_variables() -> set[str]:
    """Every variable Settings reads: MLOPS_<field> and each field's own aliases."""
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"MLOPS_{name.upper()}")
        alias = field.validation_alias
        names.update(getattr(alias, "choices", []))
    return names


def library_variables() -> set[str]:
    """Every variable MLflow (its settings and `mlflow server`'s options) and Prefect read."""
    import mlflow.environment_variables as mlflow_env
    from mlflow.cli import server
    from prefect.settings import Settings as PrefectSettings
    from prefect.settings.legacy import _get_valid_setting_names

    names = {v.name for v in vars(mlflow_env).values()
             if type(v).__name__.endswith("EnvironmentVariable")}
    names.update(p.envvar for p in server.params if isinstance(getattr(p, "envvar", None), str))
    names.update(_get_valid_setting_names(PrefectSettings))  # what `prefect config set` takes
    return names | POSTGRES_VARIABLES | prefect_yaml_variables()


def prefect_yaml_variables() -> set[str]:
    """The variables the repository's prefect.yaml templates in (``{{ $NAME }}``)."""
    path = REPO_ROOT / "prefect.yaml"
    return set(re.findall(r"\{\{\s*\$(\w+)\s*\}\}", path.read_text())) if path.exists() else set()


KNOWN = settings_variables() | library_variables()


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as compose and `kubectl create secret --from-env-file` read them."""
    pairs = (line.split("=", 1) for line in path.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#"))
    return {key.strip(): value for key, value in pairs}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load((TEAM / "compose.yaml").read_text())
    return spec


# ---- compose ----------------------------------------------------------------------------

def test_compose_runs_the_whole_stack(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "init-databases", "mlflow", "prefect-server",
                             "prefect-worker", "dask-scheduler", "dask-worker", "service",
                             "prometheus"}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    assert services["dask-worker"]["deploy"]["replicas"] == 2
    assert services["service"]["deploy"]["replicas"] == 2
    # Project processes run the service image; the others official images.
    build = services["service"]["build"]
    assert (TEAM / build["context"] / build["dockerfile"]).resolve() == (
        REPO_ROOT / "level3_deployment" / "Dockerfile")
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["service"]["command"][-2:] == ["--app", "level4"]


def test_compose_publishes_every_port_on_loopback_only(compose: dict[str, Any]) -> None:
    published = [(name, port) for name, s in compose["services"].items()
                 for port in s.get("ports", [])]
    assert published
    for name, port in published:
        assert isinstance(port, str) and port.startswith("127.0.0.1:"), (name, port)


def test_compose_variables_are_known_and_secrets_never_inline(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        environment = service.get("environment", {})
        assert isinstance(environment, dict), name  # a mapping: each name checked below
        for variable in environment:
            assert variable in KNOWN, (name, variable)
            assert not is_secret(variable), (name, variable)
    for path in EXAMPLES.values():
        for variable in env_file(path):
            assert variable in KNOWN, (path.name, variable)


def test_compose_reads_secrets_from_git_ignored_files(compose: dict[str, Any]) -> None:
    files = [entry["path"] for s in compose["services"].values() for entry in s.get("env_file", [])]
    files += [secret["file"] for secret in compose["secrets"].values()]
    for relative in set(files):
        path = (TEAM / relative).resolve()
        assert path.is_relative_to(REPO_ROOT / "local"), relative
        ignored = run(["git", "check-ignore", "-q", str(path)], REPO_ROOT, check=False)
        assert ignored.returncode == 0, f"{relative} is not git-ignored"
    assert {Path(f).name for f in files} >= set(EXAMPLES)


def test_the_templates_hold_placeholders_only() -> None:
    for path in EXAMPLES.values():
        for variable, value in env_file(path).items():
            if is_secret(variable):
                assert PLACEHOLDER in value, (path.name, variable)
    assert PLACEHOLDER in (TEAM / "mlflow-auth.ini.example").read_text()


def test_the_service_container_passes_the_team_profile_check(
        compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """What compose gives the service is a complete team profile (nothing missing)."""
    for name in [n for n in os.environ if n.startswith(("MLOPS_", "MLFLOW_", "PREFECT_"))]:
        monkeypatch.delenv(name)
    for variable, value in compose["services"]["service"]["environment"].items():
        monkeypatch.setenv(variable, str(value))
    settings = Settings(_env_file=EXAMPLES["compose.env"])
    assert settings.profile == "team"
    assert settings.tracking_uri == "http://mlflow:5000"
    assert settings.state_db_dsn and settings.state_db_dsn.startswith("postgresql://")


def test_the_server_secrets_agree_with_the_clients() -> None:
    clients, servers = (env_file(p) for p in EXAMPLES.values())
    assert servers["PREFECT_SERVER_API_AUTH_STRING"] == clients["PREFECT_API_AUTH_STRING"]
    auth_uri = re.search(r"^database_uri = (.+)$",
                         (TEAM / "mlflow-auth.ini.example").read_text(), re.M)
    assert auth_uri and role_of(auth_uri[1]) == role_of(servers["MLFLOW_BACKEND_STORE_URI"])


def role_of(url: str) -> str:
    return url.split("://", 1)[1].split(":", 1)[0]


# ---- Kubernetes -------------------------------------------------------------------------

def documents() -> Iterator[dict[str, Any]]:
    for path in MANIFESTS:
        yield from (d for d in yaml.safe_load_all(path.read_text()) if d)


def containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    return [*pod.get("initContainers", []), *pod.get("containers", [])]


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_manifest_matches_the_kubernetes_schema(manifest: Path) -> None:
    run([str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(manifest)], REPO_ROOT)


def test_manifests_run_the_whole_stack() -> None:
    kinds = {(d["kind"], d["metadata"]["name"]) for d in documents()}
    assert {("StatefulSet", "postgres"), ("Job", "init-databases"), ("Deployment", "mlflow"),
            ("Deployment", "prefect-server"), ("Deployment", "prefect-worker"),
            ("Deployment", "dask-scheduler"), ("Deployment", "dask-worker"),
            ("Deployment", "prometheus"), ("ConfigMap", "mlops-team"),
            ("Secret", "mlops-team")} <= kinds
    # The Services carry the compose names, so the same addresses work in both.
    services = {name for kind, name in kinds if kind == "Service"}
    assert {"postgres", "mlflow", "prefect-server", "dask-scheduler", "prometheus"} <= services
    workers = next(d for d in documents() if d["metadata"]["name"] == "dask-worker")
    assert workers["spec"]["replicas"] == 2


def test_nothing_is_exposed_outside_the_cluster() -> None:
    for doc in documents():
        assert doc["kind"] != "Ingress", doc["metadata"]["name"]
        if doc["kind"] == "Service":
            assert doc["spec"].get("type", "ClusterIP") == "ClusterIP", doc["metadata"]["name"]


def test_configmap_holds_the_compose_addresses(compose: dict[str, Any]) -> None:
    config = next(d for d in documents() if (d["kind"], d["metadata"]["name"]) ==
                  ("ConfigMap", "mlops-team"))
    assert config["data"] == compose["x-project-env"]


def test_secret_templates_are_placeholders_matching_the_compose_files() -> None:
    secrets = {d["metadata"]["name"]: d["stringData"] for d in documents()
               if d["kind"] == "Secret"}
    for name, data in secrets.items():
        for key, value in data.items():
            if is_secret(key) or key in {"password", "basic_auth.ini"}:
                assert PLACEHOLDER in value, (name, key)
    clients = env_file(EXAMPLES["compose.env"])
    servers = env_file(EXAMPLES["compose-servers.env"])
    for key, value in secrets["mlops-team"].items():
        assert clients[key] == value, key  # kubectl create secret --from-env-file gives these
    assert secrets["mlops-team-servers"] == servers
    ini = (TEAM / "mlflow-auth.ini.example").read_text()
    assert secrets["mlops-team-mlflow-auth"]["basic_auth.ini"] in ini


def test_every_variable_and_reference_in_the_manifests_resolves() -> None:
    defined = {(d["kind"], d["metadata"]["name"]) for d in documents()}
    defined.add(("Secret", "flight-delay"))  # the service's own key (level3_deployment/k8s)
    deployment = yaml.safe_load(SERVICE_DEPLOYMENT.read_text())
    for doc in [*documents(), deployment]:
        for container in containers(doc):
            for entry in container.get("env", []):
                assert entry["name"] in KNOWN, (doc["metadata"]["name"], entry["name"])
                assert "value" not in entry or not is_secret(entry["name"]), entry["name"]
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ("Secret", ref["name"]) in defined, ref
            for source in container.get("envFrom", []):
                kind, ref = next(iter(source.items()))
                assert (kind.removesuffix("Ref").replace("configMap", "ConfigMap")
                        .replace("secret", "Secret"), ref["name"]) in defined, ref
    config = next(d for d in documents() if d["metadata"]["name"] == "mlops-team")
    assert all(name in KNOWN for name in config["data"])


def test_the_service_deployment_takes_the_team_variables() -> None:
    """level3_deployment/k8s runs Level 4's app and takes the team ConfigMap and Secret
    when they exist (optional: Level 3 on its own still deploys)."""
    container = containers(yaml.safe_load(SERVICE_DEPLOYMENT.read_text()))[0]
    assert container["command"][-2:] == ["--app", "level4"]
    refs = {next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert refs == {"mlops-team"}
    assert all(next(iter(s.values()))["optional"] for s in container["envFrom"])


def test_the_init_job_runs_the_same_script() -> None:
    config = next(d for d in documents() if d["metadata"]["name"] == "mlops-team-init-databases")
    assert config["data"]["init-databases.sh"] == (TEAM / "init-databases.sh").read_text()


# ---- the init script on a real PostgreSQL -----------------------------------------------

def test_init_script_creates_one_database_per_service(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    from team.postgres import Cluster, pg_bin

    try:
        pg_bin("initdb")
    except FileNotFoundError:
        pytest.skip("PostgreSQL is not installed (team.postgres.ensure_installed installs it)")
    import psycopg

    # Not under tmp_path: as root the cluster runs as the postgres user, which must traverse
    # its parents, and any pytest session resets /tmp/pytest-of-root to 0700.
    scratch = Path(tempfile.mkdtemp(prefix="mlops-initdb-"))
    cluster = Cluster(scratch / "pg")
    cluster.start()
    try:
        host = f"127.0.0.1:{cluster.port}"
        urls = {"mlflow": f"postgresql+psycopg://mlflow:pw-mlflow@{host}/mlflow",
                "mlflow_auth": f"postgresql+psycopg://mlflow:pw-mlflow@{host}/mlflow_auth",
                "prefect": f"postgresql+asyncpg://prefect:pw-prefect@{host}/prefect",
                "mlops": f"postgresql://mlops:pw-mlops@{host}/mlops"}
        auth_ini = tmp_path / "auth.ini"
        auth_ini.write_text(f"[mlflow]\ndatabase_uri = {urls['mlflow_auth']}\n")
        env = {"PATH": os.environ["PATH"], "PGHOST": "127.0.0.1", "PGPORT": str(cluster.port),
               "PGUSER": cluster.superuser, "PGPASSWORD": cluster.password,
               "MLFLOW_AUTH_CONFIG_PATH": str(auth_ini),
               "MLFLOW_BACKEND_STORE_URI": urls["mlflow"],
               "PREFECT_API_DATABASE_CONNECTION_URL": urls["prefect"],
               "MLOPS_STATE_DB_URL": urls["mlops"]}
        for _ in range(2):  # a second run changes nothing and does not fail
            done = subprocess.run(["sh", str(TEAM / "init-databases.sh")], env=env,
                                  capture_output=True, text=True, check=False)
            assert done.returncode == 0, done.stderr
        assert "pw-" not in done.stdout + done.stderr  # no password in its output
        for db, url in urls.items():
            plain = re.sub(r"^postgresql\+\w+://", "postgresql://", url)
            with psycopg.connect(plain) as conn:
                owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database "
                                     "WHERE datname = current_database()").fetchone()
            assert owner == (role_of(url),), db
    finally:
        cluster.remove()
        shutil.rmtree(scratch, ignore_errors=True)


def test_the_checks_tell_a_wrong_name_and_a_secret() -> None:
    assert "MLOPS_STATE_DB_URL" in KNOWN and "PREFECT_SERVER_API_AUTH_STRING" in KNOWN
    assert "MLOPS_STATE_DB" not in KNOWN and "PREFECT_API_AUTH" not in KNOWN  # typos
    assert is_secret("MLOPS_STATE_DB_URL") and is_secret("MLFLOW_TRACKING_PASSWORD")
    assert not is_secret("MLFLOW_AUTH_CONFIG_PATH") and not is_secret("PREFECT_API_URL")
