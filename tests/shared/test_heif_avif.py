"""HEIC/HEIF (pillow-heif) and AVIF (Pillow's own plugin) decode like every other format, behind the
same limits. The team's photos hold no HEIC or AVIF, so each test makes small real files with the
libraries' own encoders (tests/helpers/images.py heic() and avif(): libheif + x265, and libavif)."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from shared.formats import IMAGE_SUFFIXES
from shared.images import ImageError, inspect, load_rgb
from tests.helpers import images as make

MAX_PIXELS = 10_000_000
ENCODERS = {"HEIF": make.heic, "AVIF": make.avif}


@pytest.mark.parametrize("fmt", ENCODERS)
def test_decoded_to_upright_rgb_close_to_what_was_encoded(fmt):
    data = ENCODERS[fmt](160, 96)
    info = inspect(data, MAX_PIXELS)
    assert (info.format, info.width, info.height) == (fmt, 160, 96)
    rgb = load_rgb(data, MAX_PIXELS)
    assert rgb.dtype == np.uint8 and rgb.shape == (96, 160, 3)
    difference = np.abs(rgb.astype(int) - make.rgb_array(160, 96).astype(int)).mean()
    assert difference < 12, f"{fmt} decoded far from its source (mean difference {difference:.1f})"


@pytest.mark.parametrize("fmt", ENCODERS)
def test_the_pixel_limit_refuses_them_before_decoding(fmt):
    with pytest.raises(ImageError) as refused:
        inspect(ENCODERS[fmt](400, 300), max_pixels=100_000)
    assert (refused.value.code, refused.value.status) == ("image_too_large", 413)


@pytest.mark.parametrize("fmt", ENCODERS)
def test_a_truncated_file_is_corrupt_not_unsupported(fmt):
    with pytest.raises(ImageError) as refused:
        load_rgb(make.truncated(ENCODERS[fmt](256, 256), keep=0.4), MAX_PIXELS)
    assert refused.value.code == "corrupt_image"


@pytest.mark.parametrize("fmt", ENCODERS)
def test_a_big_one_is_reduced_to_the_size_asked(fmt):
    rgb = load_rgb(ENCODERS[fmt](1200, 800), MAX_PIXELS, max_side=300)
    assert 300 <= max(rgb.shape[:2]) < 1200


def test_the_client_picks_them_out_of_folders():
    assert {".heic", ".heif", ".avif"} <= IMAGE_SUFFIXES


def test_pillow_heif_loads_only_when_an_image_is_decoded():
    """The light tools (dogbreed classify) read shared.formats and never load the decoder."""
    code = "import sys, shared.formats, shared.images; print('pillow_heif' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
