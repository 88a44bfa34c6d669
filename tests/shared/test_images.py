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
    assert inspect(make.animated_gif(), MAX_PIXELS).frames == 3
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
