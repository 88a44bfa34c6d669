"""Settings read once from the environment, and handed to child processes through to_env()."""
from pathlib import Path

import pytest

from shared.settings import Settings, SettingsError


def test_to_env_gives_the_same_settings_back():
    settings = Settings.from_env({}).with_(
        broker_url="redis://127.0.0.1:6379/3", backbone="mobilenet_v2", xla=True, auth_required=False,
        flower_user="ops", flower_password="pw", feature_cache_dir=Path("/tmp/features"), max_batch=4,
        storage_url="s3://bucket/prefix", s3_endpoint_url="http://10.0.0.5:9000", metrics_port=9101,
        metrics_host="0.0.0.0", metrics_user="prom", metrics_password="pw2", log_format="json")
    assert Settings.from_env(settings.to_env()) == settings
    assert Settings.from_env(Settings.from_env({}).to_env()) == Settings.from_env({})


def test_a_file_storage_url_is_the_image_folder():
    settings = Settings.from_env({"DOGBREED_STORAGE_URL": "file:///srv/images"})
    assert settings.storage_dir == Path("/srv/images") and not settings.uses_s3
    assert Settings.from_env(settings.to_env()) == settings
    assert Settings.from_env({"DOGBREED_STORAGE_URL": "s3://b/p"}).uses_s3


@pytest.mark.parametrize("url", ["ftp://host/x", "s3://", "file://relative/path", "/srv/images"])
def test_a_bad_storage_url_names_the_forms_that_work(url):
    with pytest.raises(SettingsError, match="DOGBREED_STORAGE_URL"):
        Settings.from_env({"DOGBREED_STORAGE_URL": url})


def test_the_feature_cache_follows_the_var_dir():
    assert Settings.from_env({"DOGBREED_VAR_DIR": "/srv/db"}).feature_cache_dir == Path("/srv/db/cache/features")
    assert Settings.from_env({"DOGBREED_FEATURE_CACHE_DIR": "/fast"}).feature_cache_dir == Path("/fast")


def test_a_bad_value_names_the_variable_and_the_fix():
    with pytest.raises(SettingsError, match="DOGBREED_MAX_BATCH='many' is not a whole number; set it to e.g. 16"):
        Settings.from_env({"DOGBREED_MAX_BATCH": "many"})


def test_every_setting_survives_the_trip_to_a_child_process():
    """Each field changed at once: none is forgotten by to_env() or read back under another name."""
    from dataclasses import fields

    base = Settings.from_env({})
    changes = {}
    for item in fields(base):
        value = getattr(base, item.name)
        if isinstance(value, bool):
            changes[item.name] = not value
        elif isinstance(value, int):
            changes[item.name] = value + 1
        elif isinstance(value, Path):
            changes[item.name] = Path("/srv") / item.name
    settings = base.with_(**changes, secret_key="s3cret", webhook_secret="hook")
    assert Settings.from_env(settings.to_env()) == settings


def test_the_batch_size_is_left_to_the_worker_unless_set():
    """Unset, the worker decides (it alone loads TensorFlow); an album's chunks are a CPU batch then."""
    auto = Settings.from_env({})
    assert auto.max_batch is None and auto.chunk_size == 16 and "DOGBREED_MAX_BATCH" not in auto.to_env()
    assert Settings.from_env({"DOGBREED_MAX_BATCH": "64"}).chunk_size == 64
    assert Settings.from_env({"DOGBREED_DECODE_THREADS": "3"}).decode_threads == 3
    with pytest.raises(SettingsError, match="DOGBREED_DECODE_THREADS=0 must be at least 1"):
        Settings.from_env({"DOGBREED_DECODE_THREADS": "0"})


def test_the_web_never_loads_tensorflow_to_read_its_settings():
    import subprocess
    import sys

    code = ("import sys; from shared.settings import Settings; from web.app import create_app; "
            "Settings.from_env({}).chunk_size; print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip().splitlines()[-1] == "False", out.stderr[-2000:]
