"""Pinning: one worker process per GPU, each with its own CUDA_VISIBLE_DEVICES, node name and queue."""
import pytest

from cli.services import flower_service, visible_gpus, web_service, worker_services
from shared.settings import Settings


def test_one_pinned_worker_per_gpu():
    services = worker_services(Settings(queue="q"), "0,1")
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in services] == ["0", "1"]
    nodes = [s.argv[s.argv.index("--node") + 1] for s in services]
    queues = [s.argv[s.argv.index("--queues") + 1] for s in services]
    assert nodes[0].startswith("gpu0@") and nodes[1].startswith("gpu1@")
    assert queues == ["q,q.gpu0", "q,q.gpu1"]


def test_no_gpu_means_one_cpu_worker(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert visible_gpus() == []
    [service] = worker_services(Settings(queue="q"), "all")
    assert service.env["CUDA_VISIBLE_DEVICES"] == "-1" and service.name == "worker-cpu"


def test_all_follows_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert [s.env["CUDA_VISIBLE_DEVICES"] for s in worker_services(Settings(), "all")] == ["2", "3"]


def test_flower_refuses_to_listen_openly_without_a_password():
    with pytest.raises(SystemExit, match="DOGBREED_FLOWER_PASSWORD"):
        flower_service(Settings(broker_url="redis://x/0", host="0.0.0.0"))
    service = flower_service(Settings(broker_url="redis://:pw@x/0", host="0.0.0.0", flower_user="u", flower_password="p"))
    assert service.env["FLOWER_BASIC_AUTH"] == "u:p" and service.env["CELERY_BROKER_URL"] == "redis://:pw@x/0"
    assert not any("pw" in arg or "u:p" in arg for arg in service.argv), "secrets must not show in ps"
    assert "--address=127.0.0.1" in flower_service(Settings(broker_url="redis://x/0")).argv


def test_web_runs_under_gunicorn_on_the_configured_port():
    argv = web_service(Settings(port=8123)).argv
    assert "gunicorn" in argv and "127.0.0.1:8123" in argv and argv[-1] == "web.wsgi:app"


def test_dogbreed_web_without_a_secret_key_keeps_one_in_var(tmp_path):
    """Each gunicorn process would otherwise make its own key: logins and forms would break at random."""
    from cli.private_files import secret_key

    var = tmp_path / "var"
    first = secret_key(var)
    assert first == secret_key(var) and len(first) >= 32
    assert (var / "secret_key").stat().st_mode & 0o077 == 0 and var.stat().st_mode & 0o077 == 0


def test_each_gpu_worker_of_a_host_gets_its_own_metrics_port():
    services = worker_services(Settings(queue="q", metrics_port=9100), "0,1,3")
    assert [s.env["DOGBREED_METRICS_PORT"] for s in services] == ["9100", "9101", "9102"]
    assert "DOGBREED_METRICS_PORT" not in worker_services(Settings(queue="q"), "0")[0].env


def test_web_gets_a_multiprocess_metrics_folder_and_json_logs_drop_the_text_access_log(tmp_path):
    from cli.services import fresh_metrics_dir

    settings = Settings(var_dir=tmp_path / "var")
    (tmp_path / "var" / "metrics" / "web").mkdir(parents=True)
    (tmp_path / "var" / "metrics" / "web" / "counter_123.db").write_bytes(b"old")
    service = web_service(settings)
    folder = fresh_metrics_dir(settings)
    assert service.env["PROMETHEUS_MULTIPROC_DIR"] == str(folder) and list(folder.iterdir()) == []
    assert "python:web.gunicorn_conf" in service.argv and "--access-logfile" in service.argv
    assert "--access-logfile" not in web_service(settings.with_(log_format="json")).argv
