"""Memory-weighted decode slots (issue 18, item 4): each decode reserves its estimated peak, before
any draft, from the process's DOGBREED_DECODE_MEMORY_MB; those that fit wait, one that never can is refused."""
import io
import threading

import pytest
from PIL import Image

from shared import images
from shared.images import ImageError, inspect, load_rgb
from tests.helpers import images as make

MAX_PIXELS = 50_000_000


@pytest.fixture
def budget_mb():
    """Sets this process's budget (and lifts the count of large decodes, so memory alone bounds them)."""
    def set_budget(mb: int) -> images.DecodeBudget:
        images.set_decode_memory_mb(mb)
        images.set_max_concurrent_decodes(16)
        return images.budget

    yield set_budget
    images.set_decode_memory_mb(images.DEFAULT_DECODE_MEMORY_MB)
    images.set_max_concurrent_decodes(images.DEFAULT_MAX_CONCURRENT_DECODES)


def estimate(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as img:
        return images.peak_estimate(img)


def test_the_estimate_is_taken_before_the_draft_and_weighs_mode_and_format():
    side = 1200
    baseline, progressive = make.jpeg(side, side), make.jpeg(side, side, progressive=True)
    cmyk = make.encode(Image.fromarray(make.rgb_array(side, side)).convert("CMYK"), "JPEG", progressive=True)
    webp = make.encode(Image.new("RGB", (side, side), (1, 2, 3)), "WEBP")
    gray = make.png(side, side, mode="L")
    pixels = side * side
    assert estimate(baseline) == pixels * 4  # the full-size frame, though a draft decodes 1/8 of it
    assert estimate(progressive) == estimate(cmyk) == pixels * 9  # every coefficient is held too
    assert estimate(webp) == pixels * 17  # an RGBA canvas, several times
    assert estimate(gray) == int(pixels * 1.5)


def test_concurrent_big_decodes_never_reserve_more_than_the_budget(budget_mb):
    data = make.flat_png(3000, 3000)  # 9 MP RGBA: ~52 MiB reserved per decode
    each = estimate(data)
    budget = budget_mb(128)  # room for two at once, not three
    assert 2 * each <= budget.limit < 3 * each
    shapes, errors = [], []

    def decode() -> None:
        try:
            for _ in range(3):
                inspect(data, MAX_PIXELS)
                shapes.append(load_rgb(data, MAX_PIXELS, max_side=640).shape)
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=decode) for _ in range(6)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    assert shapes == [(750, 750, 3)] * 18
    assert each <= budget.peak <= budget.limit
    assert budget.in_use == 0


def test_a_decode_that_fits_waits_for_room_and_then_runs(budget_mb):
    data = make.flat_png(1000, 1000)
    budget = budget_mb(64)
    done = threading.Event()
    holder = budget.reserve(budget.limit - estimate(data) // 2)  # another decode holds almost all of it
    holder.__enter__()
    thread = threading.Thread(target=lambda: (inspect(data, MAX_PIXELS), done.set()))
    thread.start()
    thread.join(timeout=1)
    assert not done.is_set() and thread.is_alive()  # waiting, not refused
    holder.__exit__(None, None, None)
    thread.join()
    assert done.is_set() and budget.in_use == 0


def test_a_decode_that_can_never_fit_is_refused_with_the_setting_named(budget_mb):
    budget_mb(32)
    data = make.flat_png(3000, 3000)
    for decode in (inspect, load_rgb):
        with pytest.raises(ImageError) as refused:
            decode(data, MAX_PIXELS)
        assert (refused.value.code, refused.value.status) == ("image_too_large", 413)
        assert "DOGBREED_DECODE_MEMORY_MB" in refused.value.message
    assert images.budget.in_use == 0
