"""One webhook attempt (worker/webhooks.py post) against real receivers that misbehave."""
from __future__ import annotations

import pytest

from shared import webhooks
from tests.helpers.origin import Origin, answer, drip, flood, redirect
from worker.webhooks import ANSWER_BYTES, post


def target(origin: Origin, path: str):
    return webhooks.callback_target(origin.url(path), allow_private=True)


def test_a_receiver_that_drips_its_answer_is_cut_at_the_attempts_deadline(origin):
    origin.routes["/hook"] = drip(b"ok" * 20, every_s=0.2)  # 8 s in all, 0.2 s per read
    assert post(target(origin, "/hook"), b"{}", "s", timeout_s=1).startswith("timeout: ")


def test_a_huge_answer_is_not_read_past_the_cap(origin):
    origin.routes["/hook"] = flood(500 * 1024 * 1024, say_length=False)
    origin.routes["/fail"] = answer(500, b"e" * (10 * ANSWER_BYTES))
    assert post(target(origin, "/hook"), b"{}", "s", timeout_s=5) is None  # a 2xx: delivered, the rest unread
    error = post(target(origin, "/fail"), b"{}", "s", timeout_s=5)
    assert error == "HTTP 500: " + "e" * 200


def test_a_redirect_is_not_followed(origin):
    origin.routes["/hook"] = redirect("/elsewhere")
    assert post(target(origin, "/hook"), b"{}", "s", timeout_s=5).startswith("HTTP 302")
    assert [seen.path for seen in origin.seen] == ["/hook"]


def test_the_check_refuses_a_backslash_url_at_delivery_too():
    with pytest.raises(webhooks.CallbackUrlError, match="backslash"):
        webhooks.callback_target("http://evil.com\\@127.0.0.1/", allow_private=False)
