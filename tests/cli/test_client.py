"""cli.client and `dogbreed classify` against a real server over HTTP and a real worker."""
import json
import os
import subprocess
import sys

import pytest

from cli.client import Client, ServiceError
from tests.helpers import images as make
from tests.helpers.openapi import checker
from tests.helpers.services import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture
def api(live) -> Client:
    """The typed client, with each answer checked against the OpenAPI document."""
    return Client(live.url, timeout_s=120, hooks=[checker().requests_hook])


def classify(url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "-1"}
    return subprocess.run([sys.executable, "-m", "cli.main", "classify", "--url", url, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_client_submits_waits_cancels_and_sends_albums(api, worker):
    job = api.submit(make.jpeg(seed=1), "one.jpg", idempotency_key="k1")
    assert api.submit(make.jpeg(seed=1), "one.jpg", idempotency_key="k1")["id"] == job["id"]
    done, polls = api.wait(job)
    assert done["status"] == "succeeded" and polls >= 1
    with pytest.raises(ServiceError) as refused:
        api.cancel(done)
    assert refused.value.status == 409 and refused.value.code == "job_finished"
    album = api.submit_album([("a.jpg", make.jpeg(seed=2)), ("b.txt", b"text")])
    seen = []
    finished = api.wait_album(album, progress=seen.append)
    assert finished["summary"]["succeeded"] == 1 and finished["summary"]["rejected"] == 1 and seen


def test_client_says_when_the_service_is_not_there():
    from cli.broker import free_port

    with pytest.raises(ServiceError, match="not reachable"):
        Client(f"http://127.0.0.1:{free_port()}").job("x")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_classify_sends_files_and_folders_and_prints_json_lines(live, worker, tmp_path):
    album = tmp_path / "album"
    album.mkdir()
    for i in range(3):
        (album / f"dog{i}.jpg").write_bytes(make.jpeg(seed=i))
    (album / "notes.png").write_bytes(b"not an image")
    (album / "scan.tif").write_bytes(make.encode(make.Image.fromarray(make.rgb_array(seed=5)), "TIFF"))
    (album / "shot.heic").write_bytes(make.heic(seed=6))  # an iPhone's format
    (album / "web.avif").write_bytes(make.avif(seed=7))
    (album / "readme.txt").write_text("the service takes no text")
    single = tmp_path / "single.png"
    single.write_bytes(make.png(seed=9))
    done = classify(live.url, str(single), str(album), "--wait", "--json")
    assert done.returncode == 1, done.stderr  # one file was refused
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(single), *(str(album / n) for n in
                                                             ("dog0.jpg", "dog1.jpg", "dog2.jpg", "notes.png", "scan.tif",
                                                              "shot.heic", "web.avif"))]
    assert [line["job"]["status"] for line in lines[:4]] == ["succeeded"] * 4
    assert lines[4]["error"]["code"] == "not_an_image"
    assert lines[5]["job"]["status"] == "succeeded", "a TIFF is sent like any accepted format"
    assert [(line["job"]["status"], line["job"]["image"]["format"]) for line in lines[6:]] == [
        ("succeeded", "HEIF"), ("succeeded", "AVIF")], "HEIC and AVIF are sent, and the worker decodes them"
    assert f"skipped {album / 'readme.txt'}: not one of the formats the service accepts" in done.stderr
    assert len({line["job"]["batch_id"] for line in lines[1:4]}) == 1 and lines[0]["job"]["batch_id"] is None
    assert "classify" in done.stderr  # the progress bar


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_classify_prints_a_table_and_exits_0_when_all_succeed(live, worker, tmp_path):
    photo = tmp_path / "dog.jpg"
    photo.write_bytes(make.jpeg(seed=4))
    done = classify(live.url, str(photo), "--wait")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()
    assert header.split() == ["FILE", "JOB", "STATUS", "ANSWER"] and "succeeded" in row


def test_classify_names_the_fix_for_bad_paths_and_a_missing_url(tmp_path):
    missing = classify("http://127.0.0.1:9", str(tmp_path / "nope.jpg"))
    assert missing.returncode != 0 and "not a file or a folder" in missing.stderr
    env = {k: v for k, v in os.environ.items() if k != "DOGBREED_URL"}
    no_url = subprocess.run([sys.executable, "-m", "cli.main", "classify", str(tmp_path)], cwd=ROOT,
                            env={**env, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=60)
    assert no_url.returncode == 2 and "--url" in no_url.stderr
