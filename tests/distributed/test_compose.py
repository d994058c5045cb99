"""docker-compose.yml is a valid Compose file and runs the roles the README describes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO = Path(__file__).resolve().parents[2]
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
    for name in ("control-worker", "host-worker"):
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_dockerfile_builds_on_debian_12_with_bcc_and_the_package() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "\nFROM debian:12\n" in text
    assert "python3-bpfcc" in text and "bpfcc-tools" in text
    assert "pip install" in text and 'ENTRYPOINT ["bpfsleuth"]' in text
