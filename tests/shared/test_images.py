import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.images import ImageError, inspect, load_rgb
from tests.helpers import images as make

MAX_PIXELS = 10_000_000


@pytest.mark.parametrize("data, fmt", [
    (make.jpeg(), "JPEG"), (make.png(), "PNG"), (make.png(mode="L"), "PNG"), (make.cmyk_jpeg(), "JPEG"),
    (make.png16(), "PNG"), (make.rgba_png(), "PNG"), (make.animated_gif(), "GIF"),
])
def test_accepted_formats_decode_to_8bit_rgb(data, fmt):
    info = inspect(data, MAX_PIXELS)
    rgb = load_rgb(data, MAX_PIXELS)
    assert info.format == fmt
    assert rgb.dtype.name == "uint8" and rgb.ndim == 3 and rgb.shape[2] == 3
    assert (rgb.shape[1], rgb.shape[0]) == (info.width, info.height)


def test_sixteen_bit_keeps_its_range():
    rgb = load_rgb(make.png16(), MAX_PIXELS)
    assert rgb.min() == 0 and rgb.max() == 255


def test_exif_orientation_is_applied():
    data = make.exif_rotated_jpeg(width=120, height=60, orientation=6)
    info = inspect(data, MAX_PIXELS)
    assert (info.width, info.height) == (60, 120)
    assert load_rgb(data, MAX_PIXELS).shape[:2] == (120, 60)


def test_animated_gif_takes_the_first_frame():
    rgb = load_rgb(make.animated_gif(), MAX_PIXELS)
    assert inspect(make.animated_gif(), MAX_PIXELS).animated
    assert rgb[..., 0].mean() > 200 and rgb[..., 1].mean() < 50  # frame 0 is red


def test_jpeg_draft_decodes_big_photos_smaller_but_not_below_the_ask():
    data = make.jpeg(2000, 1500)
    small = load_rgb(data, MAX_PIXELS, max_side=640)
    assert 640 <= max(small.shape[:2]) < 2000


@pytest.mark.parametrize("data, code, status", [
    (b"", "empty_file", 400),
    (b"hello, I am text pretending to be photo.jpg", "not_an_image", 415),
    (make.truncated(make.jpeg(200, 200)), "corrupt_image", 400),
    (make.truncated(make.png(200, 200)), "corrupt_image", 400),
    (make.png_header_only(100_000, 100_000), "image_too_large", 413),
    (make.png(4, 4), "image_too_small", 400),
])
def test_refused_with_a_code_and_a_status(data, code, status):
    with pytest.raises(ImageError) as info:
        inspect(data, MAX_PIXELS)
    assert (info.value.code, info.value.status) == (code, status)
    assert info.value.message


def test_a_progressive_scan_bomb_is_refused_before_any_decoding():
    bomb = make.progressive_scan_bomb(repeats=20_000)  # 260 KB; decoding it would take seconds of CPU
    for decode in (inspect, load_rgb):
        with pytest.raises(ImageError) as info:
            decode(bomb, MAX_PIXELS)
        assert (info.value.code, info.value.status) == ("too_many_scans", 400)
        assert "re-save" in info.value.message
    ordinary = make.jpeg(400, 300, progressive=True)  # about 10 scans
    assert inspect(ordinary, MAX_PIXELS).format == "JPEG" and load_rgb(ordinary, MAX_PIXELS).shape == (300, 400, 3)


def test_a_phone_photo_with_a_second_image_is_a_jpeg_of_its_first():
    data = make.mpo()  # MPF: what iPhone HDR/portrait and many Android cameras write
    info = inspect(data, MAX_PIXELS)
    assert (info.format, info.extension, info.mime_type) == ("JPEG", "jpg", "image/jpeg")
    rgb = load_rgb(data, MAX_PIXELS)
    assert rgb[..., 0].mean() > 200 and rgb[..., 1].mean() < 50  # the first image is red, the second green


def test_formats_we_do_not_accept_never_reach_their_parser():
    """Only the accepted decoders run: a PCX (which Pillow could parse) is just not an image to us."""
    pcx = make.encode(make.Image.fromarray(make.rgb_array(64, 48)), "PCX")
    with pytest.raises(ImageError) as info:
        inspect(pcx, MAX_PIXELS)
    assert (info.value.code, info.value.status) == ("not_an_image", 415)


def test_a_tiff_is_judged_by_its_first_page_without_walking_the_others():
    data = make.tiff_with_broken_later_page()  # counting pages would walk into the broken directory
    info = inspect(data, MAX_PIXELS)
    assert (info.format, info.width, info.height) == ("TIFF", 64, 48)
    assert load_rgb(data, MAX_PIXELS).shape == (48, 64, 3)


PEAK_SCRIPT = """
import json, resource, sys, threading
from shared import images
data = open(sys.argv[1], "rb").read()
if hasattr(images, "set_max_concurrent_decodes"):
    images.set_max_concurrent_decodes(1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
shapes = []
def decode():
    images.inspect(data, 10**8)
    shapes.append(images.load_rgb(data, 10**8, max_side=640).shape)
threads = [threading.Thread(target=decode) for _ in range(4)]
[t.start() for t in threads]
[t.join() for t in threads]
print(json.dumps({"grew_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base, "shapes": shapes}))
"""


def test_small_pngs_with_huge_pixel_counts_decode_one_at_a_time_and_reduced(tmp_path):
    """Four threads decode a 50 KB, 16 MP RGBA PNG (64 MiB of pixels each) at once, as the worker's task
    threads can: the process's peak stays under two full-size copies (four threads at once would need
    four, and the full-size RGBA -> RGB conversions several more each)."""
    side = 4000
    path = tmp_path / "flat.png"
    path.write_bytes(make.flat_png(side, side))
    assert path.stat().st_size < 200_000
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(path)], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert [tuple(s) for s in report["shapes"]] == [(667, 667, 3)] * 4  # reduced 6x, never below the ask
    one_copy_kib = side * side * 4 // 1024
    assert report["grew_kib"] < 2 * one_copy_kib, f"peak grew {report['grew_kib'] // 1024} MiB"


def test_a_tga_is_named_tga_not_cur_and_icons_keep_their_names():
    """Issue 18, item 19: an uncompressed TGA starts 00 00 02 00, as a CUR does."""
    img = make.Image.fromarray(make.rgb_array(64, 48))
    ico = make.encode(img, "ICO")
    cur = ico[:2] + b"\x02\x00" + ico[4:]  # a cursor is an icon of type 2
    cases = {"TGA": [make.encode(img, "TGA"), make.encode(img, "TGA", compression="tga_rle"),
                     make.encode(img, "TGA")[:-26]],  # without its footer
             "ICO": [ico], "CUR": [cur]}
    for name, files in cases.items():
        for data in files:
            with pytest.raises(ImageError) as info:
                inspect(data, MAX_PIXELS)
            assert (info.value.code, info.value.status) == ("unsupported_format", 415)
            assert info.value.message.startswith(f"{name} images are not accepted"), info.value.message
