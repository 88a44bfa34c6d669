"""Structure before pixels (issue 18, item 3): hostile files are refused by the walk, before Pillow
parses them, and nothing a photo is ever refused."""
import io

import pytest
from PIL import Image

from shared import structure
from shared.images import ImageError, inspect, load_rgb
from tests.helpers import hostile
from tests.helpers import images as make
from tests.helpers.services import REAL_DATA

MAX_PIXELS = 50_000_000

HOSTILE = hostile.JUST_PAST_THE_LIMITS


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_structures_are_refused_too_complex_by_web_and_worker(name):
    build, measure = HOSTILE[name]
    data = build()
    with pytest.raises(structure.TooComplex) as walked:
        structure.measure(data)
    assert walked.value.measure == measure
    for decode in (inspect, load_rgb):  # the web's check and the worker's decode
        with pytest.raises(ImageError) as refused:
            decode(data, MAX_PIXELS)
        assert (refused.value.code, refused.value.status) == ("too_complex", 400)
        assert "re-save" in refused.value.message


def test_the_same_structures_in_ordinary_numbers_still_decode():
    ordinary = [hostile.jpeg_markers(50), hostile.tiff_strips(200), hostile.tiff_strips(200, big=True), hostile.png_chunks(50), hostile.gif_comment(50),
                hostile.bmp_rle8(64, 48), hostile.flat_progressive_cmyk(800, 600),
                make.encode(Image.fromarray(make.rgb_array(64, 48)), "WEBP", exif=Image.Exif().tobytes(), lossless=True)]
    for data in ordinary:
        info = inspect(data, MAX_PIXELS)
        assert load_rgb(data, MAX_PIXELS).shape == (info.height, info.width, 3)


def test_a_format_the_walk_does_not_know_is_left_to_the_decoder():
    """A HEIC header alone: no walk, so pillow-heif's decoder is the one that says it is damaged."""
    assert structure.measure(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic") is None
    with pytest.raises(ImageError) as refused:
        inspect(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", MAX_PIXELS)
    assert refused.value.code == "corrupt_image"


def test_damaged_structures_end_the_walk_and_the_decoder_says_what_is_wrong():
    for data in (make.truncated(make.jpeg(200, 200)), make.truncated(make.png(200, 200)), b"GIF89a\x08",
                 b"II*\x00\xff\xff\xff\xff", b"RIFF\x04\x00\x00\x00WEBPVP8X", b"BM\x00"):
        structure.measure(data)  # no exception of its own
        with pytest.raises(ImageError) as refused:
            inspect(data, MAX_PIXELS)
        assert refused.value.code in ("corrupt_image", "not_an_image")


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason=f"the team's real photos are not at {REAL_DATA}")
def test_every_real_photo_and_its_other_formats_pass_the_walk():
    photos = sorted(p for p in REAL_DATA.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    assert len(photos) > 300
    for i, photo in enumerate(photos):
        data = photo.read_bytes()
        assert structure.measure(data) is not None, photo
        if i % 25 == 0:  # the formats no real photo here comes in: a sample re-saved as each
            rgb = Image.open(io.BytesIO(data)).convert("RGB")
            for fmt, params in (("GIF", {}), ("WEBP", {}), ("BMP", {}), ("TIFF", {"compression": "tiff_lzw"}),
                                ("JPEG", {"progressive": True, "quality": 75}), ("PNG", {})):
                assert structure.measure(make.encode(rgb, fmt, **params)) is not None, (photo, fmt)
