"""docker-compose.yml parses and runs every service, with a GPU reservation for each worker."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_is_there():
    services = load()["services"]
    assert {"redis", "postgres", "migrate", "web", "flower"} <= set(services)
    assert any(name.startswith("worker") for name in services)


def test_workers_reserve_a_gpu_each_and_are_pinned():
    services = load()["services"]
    workers = {k: v for k, v in services.items() if k.startswith("worker")}
    for name, svc in workers.items():
        devices = svc["deploy"]["resources"]["reservations"]["devices"]
        assert devices and devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"], name
        assert len(devices[0]["device_ids"]) == 1, f"{name} must be pinned to exactly one GPU"


def test_every_long_running_service_restarts_and_migrate_runs_once():
    services = load()["services"]
    for name, svc in services.items():
        if name == "migrate":
            assert svc.get("restart", "no") == "no"
            continue
        assert svc.get("restart") in ("unless-stopped", "always", "on-failure"), name
    for name in ("web", *[k for k in services if k.startswith("worker")]):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_flower_is_not_open_to_the_world():
    flower = load()["services"]["flower"]
    env = flower.get("environment", {})
    published = [str(p) for p in flower.get("ports", [])]
    assert all(p.startswith("127.0.0.1:") for p in published), published
    assert "DOGBREED_FLOWER_USER" in env and "DOGBREED_FLOWER_PASSWORD" in env


def test_dockerfile_builds_the_gpu_image():
    text = (ROOT / "Dockerfile").read_text()
    assert ".[gpu]" in text and "dogbreed" in text


def test_every_python_service_has_a_memory_limit_and_bounded_decodes():
    """An image bomb or a leak is capped per container instead of taking the host (and every job) down."""
    services = load()["services"]
    for name in ("web", "flower", *[k for k in services if k.startswith("worker")]):
        assert services[name]["deploy"]["resources"]["limits"]["memory"], name
    assert "DOGBREED_MAX_CONCURRENT_DECODES" in services["web"]["environment"]


def test_the_web_is_published_on_loopback_for_a_tls_proxy_with_secure_cookies():
    web = load()["services"]["web"]
    assert all(str(p).startswith("127.0.0.1:") for p in web["ports"]), web["ports"]
    env = web["environment"]
    assert env["DOGBREED_SECURE_COOKIES"] == "1" and env["DOGBREED_PROXY_HOPS"] == "1" and env["DOGBREED_HSTS_SECONDS"]
