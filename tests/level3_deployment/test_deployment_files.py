"""The container image and Kubernetes manifests, checked offline."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO_ROOT, run

DEPLOY = REPO_ROOT / "level3_deployment"
BIN = Path(sys.executable).parent
MANIFESTS = sorted((DEPLOY / "k8s").glob("*.yaml"))


def test_dockerfile_passes_hadolint() -> None:
    done = run([str(BIN / "hadolint"), str(DEPLOY / "Dockerfile")], REPO_ROOT, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_dockerfile_is_slim_non_root_and_checks_health() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in text
    users = [line.split()[1] for line in text.splitlines() if line.startswith("USER ")]
    assert users and users[-1] not in ("root", "0")
    assert "HEALTHCHECK" in text and "/health/live" in text
    assert "uv sync --locked" in text  # the image installs from the same lock


def test_hadolint_catches_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\n")
    assert run([str(BIN / "hadolint"), str(bad)], REPO_ROOT, check=False).returncode != 0


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: p.name)
def test_manifest_matches_the_kubernetes_schema(manifest: Path) -> None:
    run([str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(manifest)], REPO_ROOT)


def test_probes_point_at_the_service_health_endpoints() -> None:
    deployment = yaml.safe_load((DEPLOY / "k8s" / "deployment.yaml").read_text())
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in MANIFESTS}
    assert kinds == {"Deployment", "Service", "HorizontalPodAutoscaler"}


def test_kubernetes_validate_catches_a_broken_manifest(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
                      "spec: {replicas: two}\n")
    done = run([str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(broken)],
               REPO_ROOT, check=False)
    assert done.returncode != 0


def test_the_image_holds_every_package_the_project_builds() -> None:
    """uv sync builds the project from pyproject's package list, and `mlops serve` loads every
    level's entry points: a package the image lacks breaks the build or the start."""
    import tomllib

    pyproject = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    dockerfile = (REPO_ROOT / "level3_deployment" / "Dockerfile").read_text()
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile, package
