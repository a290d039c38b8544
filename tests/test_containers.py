"""The Dockerfile and compose.yaml: always checked for coherence; built and started where a container engine answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKERS = ("worker-1", "worker-2")


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_compose_services_are_coherent() -> None:
    """Two workers on their own host ports, on PostgreSQL and Redis with healthchecks, started only once those are
    healthy, with the database and Redis addresses pointing at the compose services and settings from .env."""
    services = _compose()["services"]
    assert set(services) == {*WORKERS, "postgres", "redis"}
    assert services["postgres"]["image"] == "postgres:16"
    assert services["redis"]["image"] == "redis:7"
    for name in ("postgres", "redis", *WORKERS):
        assert services[name]["healthcheck"]["test"], name
    host_ports = set()
    for name in WORKERS:
        worker = services[name]
        assert worker["build"] == "."
        assert worker["env_file"] == ".env"
        env = worker["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+asyncpg://puente:")
        assert env["DATABASE_URL"].endswith("@postgres:5432/puente")
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert env["WEBHOOK_LISTEN"] == "0.0.0.0:8080"
        assert worker["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
        assert "/healthz" in " ".join(worker["healthcheck"]["test"])
        (port,) = worker["ports"]
        assert port.endswith(":8080")
        host_ports.add(port)
    assert len(host_ports) == len(WORKERS)
    assert services["postgres"]["environment"]["POSTGRES_USER"] == "puente"
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "puente"


def test_dockerfile_runs_the_webhook_as_a_non_root_user() -> None:
    """The image installs the lock file, then the package, runs as a user of its own and serves webhooks."""
    lines = (ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
    assert lines[next(i for i, line in enumerate(lines) if line.startswith("FROM"))] == "FROM python:3.11-slim"
    text = "\n".join(lines)
    assert text.index("pip install -r requirements.lock") < text.index("pip install --no-deps -e .")
    assert "USER puente" in lines
    assert 'CMD ["python", "-m", "bot", "serve", "--webhook"]' in lines
    assert "HEALTHCHECK" in text
    assert "/healthz" in text
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in ignored


def _engine_answers() -> str | None:
    """None when `docker info` succeeds, else why not."""
    if shutil.which("docker") is None:
        return "docker is not installed"
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30, check=False)
    except subprocess.TimeoutExpired:
        return "timed out"
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
    return None


@pytest.mark.slow
def test_compose_up_serves_healthz(tmp_path: Path) -> None:
    """Where a container engine answers: build the image, start everything, and both workers answer /healthz."""
    why = _engine_answers()
    if why is not None:
        pytest.skip(f"no container engine answers here (docker info failed): {why}")
    project = f"puente-test-{os.getpid()}"
    env_file = ROOT / ".env"
    if env_file.exists():
        pytest.skip(".env exists here; the test writes its own and will not overwrite yours")
    env_file.write_text(
        "BOT_TOKEN=123456:TEST\nWEBHOOK_URL=https://example.invalid/tg\nWEBHOOK_SECRET=test_secret\n"
        "POSTGRES_PASSWORD=test\nTELEGRAM_API_URL=http://127.0.0.1:9\n",
        encoding="utf-8",
    )
    compose = ["docker", "compose", "-p", project, "-f", str(ROOT / "compose.yaml")]
    try:
        subprocess.run([*compose, "up", "-d", "--build"], cwd=ROOT, check=True, timeout=900)
        deadline = time.monotonic() + 120
        answered: set[str] = set()
        while time.monotonic() < deadline and len(answered) < len(WORKERS):
            for port in ("8081", "8082"):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                        if response.status == 200:
                            answered.add(port)
                except OSError:
                    pass
            time.sleep(1)  # polling interval; the assertion is on the answers, not on the time
        assert answered == {"8081", "8082"}
    finally:
        subprocess.run([*compose, "down", "-v"], cwd=ROOT, check=False, timeout=300)
        env_file.unlink()
