"""deploy/kubernetes: every manifest valid for a pinned Kubernetes version with
``kubernetes-validate --strict`` (schemas shipped in the package: no network), the Service's and
the PodDisruptionBudget's selectors matching the Deployment's pods, every probe on a port the
container declares."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.conftest import DEPLOY

KUBERNETES_VERSION = "1.32.0"
MANIFESTS = DEPLOY / "kubernetes"
#: Files that are not Kubernetes API objects (kustomize's own file).
NOT_RESOURCES = {"kustomization.yaml"}


def _files() -> list[Path]:
    return sorted(p for p in MANIFESTS.glob("*.yaml") if p.name not in NOT_RESOURCES)


def _resources() -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for path in _files():
        found.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return found


def _one(kind: str) -> dict[str, Any]:
    matching = [r for r in _resources() if r["kind"] == kind]
    assert len(matching) == 1, kind
    return matching[0]


def test_every_manifest_validates_strictly_at_the_pinned_version() -> None:
    command = Path(sys.executable).with_name("kubernetes-validate")
    result = subprocess.run(
        [str(command), "--strict", "-k", KUBERNETES_VERSION, *map(str, _files())],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(_resources())


def test_strict_validation_refuses_an_unknown_field() -> None:
    deployment = copy.deepcopy(_one("Deployment"))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(p.name for p in _files())


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_service_and_disruption_budget_select_the_deployments_pods() -> None:
    deployment = _one("Deployment")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert _matches(deployment["spec"]["selector"]["matchLabels"], pod_labels)
    service = _one("Service")["spec"]
    assert service["selector"]
    assert _matches(service["selector"], pod_labels)
    pdb = _one("PodDisruptionBudget")["spec"]
    assert pdb["selector"]["matchLabels"]
    assert _matches(pdb["selector"]["matchLabels"], pod_labels)
    assert pdb.get("maxUnavailable", 0) < deployment["spec"]["replicas"]
    # The migration Job's pods are not selected (they must not receive traffic).
    job_labels = _one("Job")["spec"]["template"]["metadata"]["labels"]
    assert not _matches(service["selector"], job_labels)


def _ports(container: dict[str, Any]) -> set[str | int]:
    ports = container.get("ports", [])
    return {p["containerPort"] for p in ports} | {p["name"] for p in ports if "name" in p}


def test_probes_use_ports_the_container_declares() -> None:
    spec = _one("Deployment")["spec"]["template"]["spec"]
    probes = 0
    for container in spec["containers"]:
        for kind in ("readinessProbe", "livenessProbe", "startupProbe"):
            probe = container.get(kind)
            if probe is None:
                continue
            port = probe["httpGet"]["port"]
            assert port in _ports(container), (container["name"], kind, port)
            probes += 1
    broker = next(c for c in spec["containers"] if c["name"] == "broker")
    assert broker["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert broker["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes >= 4
    service_port = _one("Service")["spec"]["ports"][0]["targetPort"]
    assert service_port in _ports(broker)


def test_every_container_requests_resources_and_runs_unprivileged() -> None:
    for kind in ("Deployment", "Job"):
        spec = _one(kind)["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        for container in spec["containers"]:
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_secret_and_config_references_are_declared() -> None:
    spec = _one("Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"] for v in spec["volumes"]}
    for container in spec["containers"]:
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes
    config_maps = {r["metadata"]["name"] for r in _resources() if r["kind"] == "ConfigMap"}
    for volume in spec["volumes"]:
        if "configMap" in volume:
            assert volume["configMap"]["name"] in config_maps
    for container in spec["containers"]:
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] in config_maps
    # Secrets are created by the operator (deploy/README.md names each one).
    readme = (DEPLOY / "README.md").read_text()
    for volume in spec["volumes"]:
        if "secret" in volume:
            assert volume["secret"]["secretName"] in readme, volume["secret"]["secretName"]
