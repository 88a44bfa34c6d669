"""docker-compose.yml parses and runs every service, with a GPU reservation for each worker."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_service_is_there():
    services = load()["services"]
    assert {"redis", "postgres", "minio", "bucket", "migrate", "web", "flower"} <= set(services)
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
        if name in ("migrate", "bucket"):
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


def test_images_and_models_go_to_minio_and_workers_wait_for_the_bucket():
    compose = load()
    services = compose["services"]
    env = compose["x-app"]["environment"]
    assert env["DOGBREED_STORAGE_URL"].startswith("s3://") and env["DOGBREED_S3_ENDPOINT_URL"] == "http://minio:9000"
    assert "AWS_ACCESS_KEY_ID" in env and "AWS_SECRET_ACCESS_KEY" in env
    assert "mb" in " ".join(services["bucket"]["entrypoint"]) and "minio" in services["bucket"]["depends_on"]
    for name in ("web", *[k for k in services if k.startswith("worker")]):
        assert services[name]["depends_on"]["bucket"]["condition"] == "service_completed_successfully", name
        assert services[name]["environment"]["DOGBREED_STORAGE_URL"] == env["DOGBREED_STORAGE_URL"], name
    assert all(str(p).startswith("127.0.0.1:") for p in services["minio"].get("ports", []))


def test_workers_scale_by_profile_one_per_gpu():
    services = load()["services"]
    workers = {k: v for k, v in services.items() if k.startswith("worker")}
    pinned = [v["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"][0] for v in workers.values()]
    assert len(set(pinned)) == len(pinned), f"two workers share a GPU: {pinned}"
    assert "profiles" not in workers["worker-gpu0"], "one worker always runs"
    for profile, count in (("gpus-2", 2), ("gpus-4", 4)):
        started = [k for k, v in workers.items() if "profiles" not in v or profile in v["profiles"]]
        assert len(started) == count, (profile, started)


def test_web_metrics_need_a_password_in_compose():
    env = load()["services"]["web"]["environment"]
    assert "DOGBREED_METRICS_USER" in env and "DOGBREED_METRICS_PASSWORD" in env


def test_redis_wants_a_password_and_every_service_has_it():
    services = load()["services"]
    redis = services["redis"]
    assert "--requirepass" in redis["command"]
    assert redis["command"][redis["command"].index("--requirepass") + 1].startswith("${REDIS_PASSWORD:?")
    assert "grep -q PONG" in redis["healthcheck"]["test"][1], "a NOAUTH answer must not pass for healthy"
    for name, svc in services.items():
        url = (svc.get("environment") or {}).get("DOGBREED_BROKER_URL")
        if url:
            assert url.startswith("redis://:${REDIS_PASSWORD:?"), name
