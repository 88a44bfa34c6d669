"""The pages as a person uses them, in Chromium: log in, upload, albums by drag-and-drop, cancel, history.

Keyboard only where a person could use it so; live regions (aria-live) must announce status changes.
"""
import base64

import pytest

from tests.helpers import images as make

pytestmark = pytest.mark.slow

# Records every text a live region shows, in order, as a screen reader would hear it.
RECORD_LIVE_REGIONS = """
window.__announced = [];
document.addEventListener("DOMContentLoaded", () => {
  const seen = (node) => {
    const region = (node.nodeType === 1 ? node : node.parentElement)?.closest("[aria-live]");
    if (region) window.__announced.push(region.id + ":" + region.textContent.trim());
  };
  new MutationObserver((ms) => ms.forEach((m) => seen(m.target)))
    .observe(document.body, { subtree: true, childList: true, characterData: true });
});
"""


def announced(page) -> list[str]:
    return page.evaluate("window.__announced")


def press(page, selector: str) -> None:
    """Reach a control with the keyboard focus and press Enter, as a keyboard user does."""
    page.focus(selector)
    assert page.evaluate("document.activeElement.id") == selector.lstrip("#")
    page.keyboard.press("Enter")


def upload_one(page, name: str = "dog.jpg", seed: int = 0) -> None:
    page.goto("/")
    page.set_input_files("#image", files=[{"name": name, "mimeType": "image/jpeg", "buffer": make.jpeg(seed=seed)}])
    assert page.text_content("#chosen") == f"1 photo: {name}"
    press(page, "#classify")


@pytest.fixture(autouse=True)
def _record(page):
    page.context.add_init_script(RECORD_LIVE_REGIONS)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_upload_one_photo_and_watch_its_result_arrive(page, worker):
    upload_one(page)
    page.wait_for_url("**/jobs/*")
    assert page.get_attribute("#status", "aria-live") == "polite"
    page.wait_for_function("document.getElementById('status').textContent === 'succeeded'")
    assert page.text_content("#sentence")
    assert page.locator("#bars li").count() == 5 or "No dog" in page.text_content("#sentence")
    assert announced(page)[-1] == "status:succeeded"
    assert page.is_hidden("#cancel-form")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_an_album_dropped_on_the_form_fills_a_grid_as_jobs_finish(page, worker):
    page.goto("/")
    files = [{"name": f"dog{i}.jpg", "type": "image/jpeg", "b64": base64.b64encode(make.jpeg(seed=i)).decode()}
             for i in range(3)]
    transfer = page.evaluate_handle("""(files) => {
        const dt = new DataTransfer();
        for (const f of files) {
          const bytes = Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0));
          dt.items.add(new File([bytes], f.name, { type: f.type }));
        }
        return dt;
    }""", files)
    page.dispatch_event("#drop", "dragenter", {"dataTransfer": transfer})
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    assert page.text_content("#chosen") == "3 photos (an album)"
    assert "1 photo" not in " ".join(announced(page)) and "chosen:3 photos (an album)" in announced(page)
    press(page, "#classify")
    page.wait_for_url("**/batches/*")
    assert page.get_attribute("#summary", "aria-live") == "polite"
    page.wait_for_function("document.getElementById('summary').textContent === '3 of 3 done'")
    cards = page.locator("#grid .card")
    assert cards.count() == 3
    assert [cards.nth(i).locator(".status").text_content() for i in range(3)] == ["succeeded"] * 3
    assert announced(page)[-1] == "summary:3 of 3 done"
    cards.nth(0).locator("a").focus()
    page.keyboard.press("Enter")  # a card opens its job
    page.wait_for_url("**/jobs/*")
    assert page.text_content("#status") == "succeeded"


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cancel_with_the_keyboard_then_find_it_in_the_filtered_history(page):
    upload_one(page, "wait.jpg", seed=1)  # no worker runs: the job stays queued
    page.wait_for_url("**/jobs/*")
    assert page.text_content("#status") == "queued"
    press(page, "#cancel")
    page.wait_for_function("document.getElementById('status').textContent === 'canceled'")
    assert "status:canceled" in announced(page) and page.is_hidden("#cancel-form")
    upload_one(page, "other.jpg", seed=2)
    page.wait_for_url("**/jobs/*")

    page.goto("/history")
    assert page.locator(".history li").count() == 2
    page.select_option("#filter-status", "canceled")
    press(page, "#filter-submit")
    page.wait_for_url("**/history?status=canceled*")
    rows = page.locator(".history li")
    assert rows.count() == 1 and "canceled" in rows.nth(0).text_content()
    assert page.text_content("#count").startswith("1 job matches")
    assert page.input_value("#filter-status") == "canceled"  # the filter stays chosen

    page.fill("#filter-since", "2030-01-02")
    page.fill("#filter-until", "2030-01-01")
    press(page, "#filter-submit")
    assert "since must be before until" in page.text_content("[role=alert]")


def submit(page, selector: str) -> None:
    """Press a form's button with the keyboard and wait for the page the form answers with."""
    with page.expect_navigation():
        press(page, selector)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_correct_a_job_and_see_the_canonical_breed_then_find_it_in_the_history(page, worker):
    upload_one(page, "shiko.jpg", seed=3)
    page.wait_for_url("**/jobs/*")
    page.wait_for_function("document.getElementById('status').textContent === 'succeeded'")
    assert page.is_visible("#correction") and "Not right?" in page.text_content("#correction")
    offered = page.eval_on_selector_all("#known-breeds option", "options => options.map(o => o.value)")
    assert len(offered) == 118 and "German shepherd dog" in offered
    page.focus("#label-breed")
    page.keyboard.type("german-shepherd")  # a spelling of a known breed
    submit(page, "#label-save")
    assert page.text_content("#label-text") == "German shepherd dog"
    page.fill("#label-breed", "shikoku  inu")  # a breed the model does not know yet
    submit(page, "#label-save")
    assert page.text_content("#label-text") == "Shikoku inu"
    submit(page, "#label-human")
    assert page.text_content("#label-text") == "a person"
    submit(page, "#label-neither")
    assert page.text_content("#label-text") == "not a dog"

    upload_one(page, "plain.jpg", seed=4)
    page.wait_for_url("**/jobs/*")
    page.goto("/history")
    page.select_option("#filter-labeled", "true")
    press(page, "#filter-submit")
    page.wait_for_url("**/history?*labeled=true*")
    rows = page.locator(".history li")
    assert rows.count() == 1 and "(you said: not a dog)" in rows.nth(0).text_content()

    page.goto("/")
    press(page, "#breeds-link")
    page.wait_for_url("**/breeds")
    assert page.locator("#breeds li").count() == 118
