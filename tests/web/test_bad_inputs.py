"""A corpus of bad and awkward uploads: each gets its documented answer, and nothing half-made stays."""
import io
import struct
import zipfile

import pytest
from PIL import Image

from tests.helpers import images as make

MAX_BYTES = 300_000


@pytest.fixture
def settings(make_settings, redis_url, queue_name):
    return make_settings(broker_url=redis_url, queue=queue_name, max_upload_bytes=MAX_BYTES, max_pixels=40_000_000)


def png_chunked(width: int, height: int) -> bytes:
    return make.png_header_only(width, height)


def gif_header(width: int, height: int) -> bytes:
    return b"GIF89a" + struct.pack("<HH", width, height) + b"\x00\x00\x00" + b"\x2c" + b"\x00" * 8 + b"\x00\x02\x02\x44\x01\x00\x3b"


def zip_bytes() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("photo.jpg", make.jpeg())
    return buf.getvalue()


def encoded(fmt: str, mode: str = "RGB", **params) -> bytes:
    return make.encode(Image.fromarray(make.rgb_array(64, 48)).convert(mode), fmt, **params)


def palette_with_transparency() -> bytes:
    img = Image.fromarray(make.rgb_array(64, 48)).convert("P")
    return make.encode(img, "PNG", transparency=0)


def file(data: bytes, name: str = "photo.jpg", field: str = "image", content_type: str | None = None) -> dict:
    return {field: (io.BytesIO(data), name, content_type) if content_type else (io.BytesIO(data), name)}


# name -> (multipart data, expected status, expected error code or None when accepted)
CORPUS = {
    "empty file": (file(b""), 400, "empty_file"),
    "truncated jpeg": (file(make.truncated(make.jpeg(300, 200))), 400, "corrupt_image"),
    "truncated png": (file(make.truncated(make.png(300, 200)), "x.png"), 400, "corrupt_image"),
    "text named .jpg": (file(b"hello there, not a photo", "cat.jpg", content_type="image/jpeg"), 415, "not_an_image"),
    "html with script": (file(b"<html><script>alert(1)</script></html>", "x.jpg", content_type="image/jpeg"), 415, "not_an_image"),
    "svg with script": (file(b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "x.svg",
                             content_type="image/svg+xml"), 415, "not_an_image"),
    "zip archive": (file(zip_bytes(), "photos.zip"), 415, "not_an_image"),
    "pdf": (file(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", "x.pdf"), 415, "not_an_image"),
    "huge-dimension png header": (file(png_chunked(100_000, 100_000), "bomb.png"), 413, "image_too_large"),
    "huge-dimension gif header": (file(gif_header(65_000, 65_000), "bomb.gif"), 413, "image_too_large"),
    "0x0 image": (file(png_chunked(0, 0), "zero.png"), 415, "not_an_image"),
    "1x1 image": (file(make.png(1, 1), "one.png"), 400, "image_too_small"),
    "over the size limit": (file(make.jpeg(64, 64) + b"\0" * MAX_BYTES), 413, "file_too_large"),
    "wrong multipart field": (file(make.jpeg(), field="file"), 400, "missing_image"),
    "two files": ({"image": [(io.BytesIO(make.jpeg()), "a.jpg"), (io.BytesIO(make.jpeg(seed=2)), "b.jpg")]},
                  400, "too_many_files"),
    "unsupported format (ico)": (file(encoded("ICO"), "x.ico"), 415, "unsupported_format"),
    "unsupported format (ppm)": (file(encoded("PPM"), "x.ppm"), 415, "unsupported_format"),
    "cmyk jpeg": (file(make.cmyk_jpeg()), 202, None),
    "16-bit png": (file(make.png16(), "deep.png"), 202, None),
    "animated gif": (file(make.animated_gif(), "anim.gif"), 202, None),
    "exif-rotated jpeg": (file(make.exif_rotated_jpeg()), 202, None),
    "grayscale jpeg": (file(encoded("JPEG", "L")), 202, None),
    "rgba png": (file(make.rgba_png(), "alpha.png"), 202, None),
    "palette png with transparency": (file(palette_with_transparency(), "p.png"), 202, None),
    "bmp": (file(encoded("BMP"), "x.bmp"), 202, None),
    "webp": (file(encoded("WEBP"), "x.webp"), 202, None),
    "tiff": (file(encoded("TIFF"), "x.tiff"), 202, None),
    "progressive-jpeg scan bomb": (file(make.progressive_scan_bomb(repeats=20_000), "scans.jpg"), 400, "too_many_scans"),
    "heic from a phone": (file(make.heic(), "IMG_1.HEIC"), 202, None),
    "avif": (file(make.avif(), "x.avif"), 202, None),
    "heic header alone": (file(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "IMG_1.HEIC"), 400,
                          "corrupt_image"),
    "truncated heic": (file(make.truncated(make.heic(200, 200)), "IMG_3.HEIC"), 400, "corrupt_image"),
    "phone photo with a second image (mpo)": (file(make.mpo(), "IMG_2.JPG"), 202, None),
    "small png with a huge pixel count": (file(make.flat_png(6000, 6000), "flat.png"), 202, None),
    "jpeg with a zip glued on": (file(make.jpeg() + zip_bytes(), "poly.jpg"), 202, None),
    "path-traversal filename": (file(make.jpeg(seed=5), "../../../etc/passwd.jpg"), 202, None),
    "very long filename": (file(make.jpeg(seed=6), "a" * 400 + ".jpg"), 202, None),
}


def counts(app, settings) -> tuple[int, int]:
    from shared.tables import Job
    from web.database import db

    with app.app_context():
        rows = db().query(Job).count()
    files = [p for p in settings.storage_dir.rglob("*") if p.is_file()] if settings.storage_dir.exists() else []
    return rows, len(files)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_bad_input_gets_its_answer_and_leaves_nothing_behind(client, app, settings, tmp_path):
    assert len(CORPUS) >= 25
    for name, (data, status, code) in CORPUS.items():
        before = counts(app, settings)
        response = client.post("/api/v1/jobs", data=data, content_type="multipart/form-data")
        assert response.is_json, name
        if code is None:
            assert response.status_code == status == 202, (name, response.json)
            job = client.get(response.json["url"]).json
            image = client.get(job["image_url"])
            assert image.status_code == 200 and image.mimetype.startswith("image/") and image.mimetype != "image/svg+xml"
            assert image.headers["X-Content-Type-Options"] == "nosniff"
            continue
        assert response.status_code == status, (name, response.json)
        assert response.json["error"]["code"] == code, (name, response.json)
        assert response.json["error"]["message"], name
        assert counts(app, settings) == before, f"{name}: left a row or a file behind"
    assert client.get("/healthz").status_code == 200
    assert not list(tmp_path.parent.glob("etc")), "a filename must never become a path"


def test_awkward_images_are_stored_as_a_person_sees_them(client):
    rotated = client.post("/api/v1/jobs", data=file(make.exif_rotated_jpeg(120, 60)), content_type="multipart/form-data")
    job = client.get(rotated.json["url"]).json
    assert (job["image"]["width"], job["image"]["height"]) == (60, 120)
    traversal = client.post("/api/v1/jobs", data=file(make.jpeg(seed=8), "../../x/evil.jpg"),
                            content_type="multipart/form-data")
    assert client.get(traversal.json["url"]).json["image"]["filename"] == "x_evil.jpg"
