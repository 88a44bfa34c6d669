import threading
import time

import pytest

from worker.batcher import Batcher


def test_gathers_concurrent_items_into_one_batch_and_answers_each():
    seen = []
    batcher = Batcher(lambda items: (seen.append(len(items)), [i * 10 for i in items])[1], max_batch=8, max_delay_s=0.2)
    futures = [batcher.submit(i) for i in range(8)]
    assert [f.result(timeout=5) for f in futures] == [i * 10 for i in range(8)]
    assert seen == [8]
    batcher.close()


def test_a_lone_item_waits_no_longer_than_the_delay():
    batcher = Batcher(lambda items: items, max_batch=64, max_delay_s=0.05)
    start = time.monotonic()
    assert batcher.submit("x").result(timeout=5) == "x"
    assert time.monotonic() - start < 2  # generous: only proves it did not wait for a full batch
    batcher.close()


def test_a_failing_batch_fails_its_callers_and_the_batcher_goes_on():
    calls = iter([RuntimeError("boom"), None])

    def run(items):
        err = next(calls)
        if err:
            raise err
        return items

    batcher = Batcher(run, max_batch=4, max_delay_s=0.01)
    with pytest.raises(RuntimeError, match="boom"):
        batcher.submit(1).result(timeout=5)
    assert batcher.submit(2).result(timeout=5) == 2
    batcher.close()


def test_never_more_than_max_batch():
    sizes, gate = [], threading.Event()

    def run(items):
        gate.wait(5)
        sizes.append(len(items))
        return items

    batcher = Batcher(run, max_batch=3, max_delay_s=0.05)
    futures = [batcher.submit(i) for i in range(7)]
    gate.set()
    assert [f.result(timeout=5) for f in futures] == list(range(7))
    assert max(sizes) <= 3 and sum(sizes) == 7
    batcher.close()


def test_an_announced_item_is_waited_for_and_a_lone_one_is_not():
    seen = []
    batcher = Batcher(lambda items: (seen.append(list(items)), items)[1], max_batch=8, max_delay_s=5.0)
    start = time.monotonic()
    assert batcher.submit("alone").result(timeout=10) == "alone"
    assert time.monotonic() - start < 2.5, "nothing announced: the batch must not wait out its 5 s delay"
    with batcher.announce() as one, batcher.announce() as two:
        first = batcher.submit("a", one)
        time.sleep(0.3)  # the second is still decoding; the batch waits for it
        second = batcher.submit("b", two)
    assert (first.result(timeout=10), second.result(timeout=10)) == ("a", "b")
    assert seen[-1] == ["a", "b"]
    with batcher.announce():
        waiting = batcher.submit("c")
        # its image failed to decode: leaving the block stops the wait, as does a second end
    assert waiting.result(timeout=3) == "c"
    batcher.close()


def test_leaving_the_block_ends_an_announcement_that_was_never_submitted():
    batcher = Batcher(lambda items: items, max_batch=8, max_delay_s=60.0)
    try:
        with batcher.announce():
            pass  # e.g. the job was already finished: nothing to submit
        assert batcher.submit("x").result(timeout=10) == "x", "a stale announcement would hold the batch 60 s"
    finally:
        batcher.close()
