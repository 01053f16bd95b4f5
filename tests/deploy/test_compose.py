"""deploy/compose.yaml against the Compose Specification's JSON schema (vendored from PyPI's
docker-compose 1.29.2: tests/fixtures/compose-spec/README.md), and what the schema cannot see:
references between services, secrets and the HAProxy configuration."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import jsonschema
import pytest
import yaml

from tests.deploy.conftest import DEPLOY, ROOT

SCHEMA_FILE = ROOT / "tests" / "fixtures" / "compose-spec" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft201909Validator:
    schema = json.loads(SCHEMA_FILE.read_text())
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(
        schema, format_checker=jsonschema.Draft201909Validator.FORMAT_CHECKER
    )


def _errors(validator: jsonschema.Draft201909Validator, document: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_compose_file_validates_against_the_compose_specification(
    compose: dict[str, Any], validator: jsonschema.Draft201909Validator
) -> None:
    assert _errors(validator, compose) == []


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("broker1", "healthcheck", {"test": ["CMD", "true"], "interval": 5}),  # not a duration
        ("broker1", "restart_policy", "always"),  # not a service key
        ("haproxy", "ports", "443:8443"),  # not a list
    ],
)
def test_the_schema_refuses_a_broken_file(
    compose: dict[str, Any],
    validator: jsonschema.Draft201909Validator,
    where: str,
    key: str,
    value: object,
) -> None:
    broken = copy.deepcopy(compose)
    broken["services"][where][key] = value
    assert _errors(validator, broken)


def _brokers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if re.fullmatch(r"broker\d+", n)}


def test_references_between_services_and_secrets_resolve(compose: dict[str, Any]) -> None:
    services = compose["services"]
    defined_secrets = set(compose["secrets"])
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, (name, dependency)
        for secret in service.get("secrets", []):
            assert secret in defined_secrets, (name, secret)
        mode = service.get("network_mode", "")
        if mode.startswith("service:"):
            assert mode.removeprefix("service:") in services, name


def test_every_instance_has_its_own_opa_sidecar_on_its_loopback(compose: dict[str, Any]) -> None:
    brokers = _brokers(compose)
    assert len(brokers) >= 2
    sidecars = {
        s["network_mode"].removeprefix("service:")
        for n, s in compose["services"].items()
        if n.startswith("opa")
    }
    assert sidecars == set(brokers)
    for service in brokers.values():
        env = service["environment"]
        assert env["BROKER_POLICY_ENGINE"] == "opa"
        assert env["BROKER_OPA_URL"].startswith("http://127.0.0.1:")
        assert env["BROKER_REDIS_URL"].startswith("redis://redis:")
        # The password reaches the broker from a secret file, never from the compose file.
        assert "BROKER_DATABASE_URL" not in env
        assert env["BROKER_DATABASE_URL_FILE"] == "/run/secrets/database_url"


def test_instances_wait_for_the_one_migration_and_never_create_keys(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["setup"]["command"] == ["secrets", "init"]
    assert services["setup"]["profiles"] == ["setup"]  # only when asked for
    for service in _brokers(compose).values():
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert all(v.endswith(":ro") for v in service["volumes"] if "keys" in v)


def test_haproxy_serves_exactly_the_compose_instances(compose: dict[str, Any]) -> None:
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    servers = re.findall(r"^\s*server (\S+) (\S+):8000", config, flags=re.MULTILINE)
    assert servers, "no server lines"
    assert {host for _name, host in servers} == set(_brokers(compose))
    assert compose["services"]["haproxy"]["environment"]["BROKER_TLS_CERT"].startswith(
        "/run/secrets/"
    )
