"""docker-compose.yml is a valid Compose file and runs the roles the README describes."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import yaml

from tests.support.paths import REPO

SHARED = REPO / ".." / "shared"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_file_validates_against_the_compose_spec() -> None:
    schema = json.loads((SHARED / "specs" / "compose-spec.json").read_text())
    validator = jsonschema.Draft7Validator(schema)
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(_compose())]
    assert errors == []


def test_compose_runs_redis_with_persistence_a_control_and_a_privileged_host_worker() -> None:
    services = _compose()["services"]
    redis = services["redis"]
    assert "--appendonly" in redis["command"] and "yes" in redis["command"]
    assert any(str(v).endswith(":/data") for v in redis["volumes"])
    assert "--control" in services["control-worker"]["command"]
    host = services["host-worker"]
    assert "--host" in host["command"]
    assert host["privileged"] is True and host["pid"] == "host"
    mounts = {str(v).split(":")[1] for v in host["volumes"]}
    for needed in (
        "/sys/kernel/tracing",
        "/sys/kernel/debug",
        "/lib/modules",
        "/usr/src",
        "/sys/fs/cgroup",
    ):
        assert needed in mounts, needed
    assert services["control-worker"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    # The host worker sees the host's network (ss, ip, dig): Redis on the host's loopback.
    assert host["network_mode"] == "host"
    assert host["environment"]["REDIS_URL"] == "redis://127.0.0.1:${BPFSLEUTH_REDIS_PORT:-6379}/0"
    assert "127.0.0.1:${BPFSLEUTH_REDIS_PORT:-6379}:6379" in redis["ports"]


def test_dockerfile_builds_on_debian_12_with_bcc_and_the_package() -> None:
    text = (REPO / "Dockerfile").read_text()
    # Two stages on the same base: the venv is built in one, the final image gets it and bcc.
    assert "\nFROM debian:12 AS build\n" in text and "\nFROM debian:12\n" in text
    assert "python3-bpfcc" in text and "COPY --from=build /opt/bpfsleuth" in text
    assert "pip install" in text and 'ENTRYPOINT ["bpfsleuth"]' in text
