"""In Chromium: an iPhone photo (HEIC) uploaded through the form, and the history page's thumbnails.

The HEIC is made at test time by pillow-heif's own encoder (tests/helpers/images.py heic()).
"""
import pytest

from tests.browser.test_pages import press
from tests.helpers import images as make

pytestmark = pytest.mark.slow

LOADED = "(img) => img.complete && img.naturalWidth > 0"


def choose(page, name: str, mime: str, data: bytes) -> None:
    page.goto("/")
    page.set_input_files("#image", files=[{"name": name, "mimeType": mime, "buffer": data}])
    assert page.text_content("#chosen") == f"1 photo: {name}"
    press(page, "#classify")
    page.wait_for_url("**/jobs/*")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_heic_photo_from_an_iphone_is_classified_and_shown(page, worker):
    choose(page, "IMG_0042.HEIC", "image/heic", make.heic(640, 480))
    page.wait_for_function("document.getElementById('status').textContent === 'succeeded'")
    assert page.text_content("#sentence")
    picture = page.locator(".picture img")
    page.wait_for_function(LOADED, arg=picture.element_handle())
    # Chromium cannot show HEIC: the page shows its JPEG thumbnail, which it can.
    assert picture.get_attribute("src").endswith("/thumbnail")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_history_page_loads_thumbnails_not_originals(page):
    choose(page, "big.jpg", "image/jpeg", make.jpeg(1600, 1200))  # no worker: it stays queued
    page.goto("/history")
    img = page.locator(".history li img").first
    assert img.get_attribute("src").endswith("/thumbnail")
    page.wait_for_function(LOADED, arg=img.element_handle())
    assert page.evaluate("(img) => [img.naturalWidth, img.naturalHeight]", img.element_handle()) == [256, 192]
    sizes = page.evaluate("""() => performance.getEntriesByType('resource')
        .filter((e) => e.name.includes('/jobs/')).map((e) => [e.name.split('/').pop(), e.decodedBodySize])""")
    assert sizes and all(name == "thumbnail" and size < 30_000 for name, size in sizes), sizes
