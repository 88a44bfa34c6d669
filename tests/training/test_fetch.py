"""`dogbreed data fetch` against a local HTTP server that serves archives the tests build."""
from __future__ import annotations

import hashlib
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from shared.files import DownloadError
from training.dataset import load_dataset
from training.fetch import FetchError, download, fetch
from training.synthetic import write_dataset


class ArchiveServer:
    """Serves files from a dict, honouring `Range: bytes=N-`, and records the ranges asked for."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.ranges: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                asked = self.headers.get("Range")
                server.ranges.append(asked)
                start = int(asked.split("=")[1].rstrip("-")) if asked else 0
                self.send_response(206 if asked else 200)
                if asked:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                self.wfile.write(body[start:])

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"


@pytest.fixture
def server():
    srv = ArchiveServer()
    yield srv
    srv.httpd.shutdown()


def _udacity_zip(tmp_path: Path) -> bytes:
    src = write_dataset(tmp_path / "src" / "dogImages", size=16, splits={"train": 3, "valid": 1, "test": 1},
                        classes=("001.Affenpinscher", "002.Afghan_hound"))
    path = tmp_path / "dogImages.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for file in sorted(src.rglob("*")):
            zf.write(file, file.relative_to(src.parent))
        zf.writestr("__MACOSX/._junk", b"resource fork")
    return path.read_bytes()


def test_udacity_zip_is_fetched_checked_and_unpacked_for_train(server, tmp_path):
    server.files["/dogImages.zip"] = body = _udacity_zip(tmp_path)
    folder = fetch("udacity", tmp_path / "data", url=server.url("dogImages.zip"),
                   sha256=hashlib.sha256(body).hexdigest())
    assert folder == tmp_path / "data" / "dogImages"
    dataset = load_dataset(folder)
    assert dataset.labels == ["Affenpinscher", "Afghan hound"] and not dataset.made_split
    assert [len(dataset.splits[k]) for k in ("train", "valid", "test")] == [6, 2, 2]
    assert (tmp_path / "data" / "dogImages.zip.sha256").read_text().split()[0] == hashlib.sha256(body).hexdigest()


def test_stanford_tar_lands_as_class_folders(server, tmp_path):
    src = write_dataset(tmp_path / "src" / "Images", per_class=3, size=16,
                        classes=("n02085620-Chihuahua", "n02085782-Japanese_spaniel"))
    with tarfile.open(tmp_path / "images.tar", "w") as tf:
        tf.add(src, arcname="Images")
    server.files["/images.tar"] = (tmp_path / "images.tar").read_bytes()
    folder = fetch("stanford", tmp_path / "data", url=server.url("images.tar"))
    assert folder.name == "stanford-dogs"
    assert load_dataset(folder).labels == ["Chihuahua", "Japanese spaniel"]


def test_an_interrupted_download_resumes_with_a_range_request(server, tmp_path):
    server.files["/big.zip"] = body = bytes(range(256)) * 4000
    target = tmp_path / "big.zip"
    (tmp_path / "big.zip.part").write_bytes(body[:300_000])  # what a dropped connection left
    download(server.url("big.zip"), target, sha256=hashlib.sha256(body).hexdigest())
    assert server.ranges == ["bytes=300000-"]
    assert target.read_bytes() == body and not (tmp_path / "big.zip.part").exists()


def test_checksum_mismatch_is_an_error_and_the_copy_is_dropped(server, tmp_path):
    server.files["/dogImages.zip"] = b"not what was promised"
    with pytest.raises(DownloadError, match="SHA-256"):
        download(server.url("dogImages.zip"), tmp_path / "dogImages.zip", sha256="0" * 64)
    assert not any(tmp_path.iterdir())


def test_a_damaged_archive_is_explained(server, tmp_path):
    server.files["/images.tar"] = b"\x00" * 100
    with pytest.raises(FetchError, match="damaged|no class folders"):
        fetch("stanford", tmp_path / "data", url=server.url("images.tar"))


def test_an_unreachable_server_is_explained(server, tmp_path):
    url = server.url("dogImages.zip")
    server.httpd.shutdown()
    server.httpd.server_close()
    with pytest.raises(DownloadError, match="run the same command again"):
        download(url, tmp_path / "dogImages.zip", timeout=5)
