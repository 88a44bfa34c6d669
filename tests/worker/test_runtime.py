"""The worker's own path (announce -> decode -> shared batch -> answer), without Celery:
answers do not depend on which images share a forward pass."""
import threading

import pytest

from shared.images import load_rgb
from tests.helpers import images as make
from worker.runtime import Runtime


@pytest.fixture
def runtime(make_settings):
    runtime = Runtime(make_settings(max_batch=8, max_batch_delay_ms=2000))
    runtime.setup()
    yield runtime
    runtime.close()


def classify_together(runtime: Runtime, images: list) -> list:
    """Each image on its own task thread, as Celery's threads pool runs them."""
    results, ready = [None] * len(images), threading.Barrier(len(images))

    def task(i: int) -> None:
        with runtime.announce() as announced:
            ready.wait()  # every image is announced before any is submitted: they share one batch
            results[i] = runtime.classify(images[i], images[i].shape[1::-1], announced)

    threads = [threading.Thread(target=task, args=(i,)) for i in range(len(images))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def test_batched_answers_equal_one_at_a_time_answers(runtime):
    images = [make.rgb_array(80 + 10 * i, 60, seed=i) for i in range(5)]
    batched = classify_together(runtime, images)
    single = [runtime.classify(img, img.shape[1::-1]) for img in images]
    assert [r.batch_size for r in batched] == [5] * 5, "five announced images share one forward pass"
    assert [r.batch_size for r in single] == [1] * 5
    for b, s in zip(batched, single):
        assert b.kind == s.kind and [x["breed"] for x in b.breeds] == [x["breed"] for x in s.breeds]
        assert b.dog_score == pytest.approx(s.dog_score, abs=1e-5)
        assert [x["label"] for x in b.imagenet_top] == [x["label"] for x in s.imagenet_top]


def test_faces_are_looked_for_only_where_the_backbone_saw_no_dog(make_settings, real_data, real_models):
    """A dog's answer cannot change with faces, so its job skips the face pass (its stages say so)."""
    weights = str(real_models / "mobilenet_v2_imagenet.keras")
    runtime = Runtime(make_settings(backbone="mobilenet_v2", backbone_weights=weights))
    runtime.setup()
    try:
        dog = load_rgb(sorted((real_data / "dogs" / "Dalmatian").glob("*"))[0].read_bytes(), 10**8, 640)
        human = load_rgb(sorted((real_data / "humans").glob("deepface__*"))[0].read_bytes(), 10**8, 640)
        dog_result = runtime.classify(dog, dog.shape[1::-1])
        human_result = runtime.classify(human, human.shape[1::-1])
    finally:
        runtime.close()
    assert dog_result.kind == "dog" and "faces" not in dog_result.stages_ms
    assert human_result.kind == "human" and human_result.faces and "faces" in human_result.stages_ms


def test_result_names_the_models_that_answered(runtime):
    result = runtime.classify(make.rgb_array(), (64, 64))
    assert result.model == {"backbone": "tiny", "weights": "random", "head": "imagenet-dogs", "model_version": None,
                            "faces": runtime.settings.face_detector}
    assert result.kind in ("dog", "human", "neither") and result.sentence


def test_warm_up_traces_every_padded_size_once_and_traffic_traces_none(runtime):
    """max_batch 8: sizes 1 and 8 traced at setup; batches of 5 and 1 run padded, no new trace."""
    backbone = runtime.holder.current().backbone
    assert backbone.sizes == (1, 8) and backbone.tracing_count() == 2
    images = [make.rgb_array(70, 50 + 5 * i, seed=i) for i in range(5)]
    batched = classify_together(runtime, images)
    assert [r.batch_size for r in batched] == [5] * 5, "five answers from one batch padded to 8"
    runtime.classify(images[0], images[0].shape[1::-1])
    assert backbone.tracing_count() == 2


def test_max_batch_left_to_the_worker_follows_what_tensorflow_sees(make_settings):
    import tensorflow as tf

    from shared.settings import CPU_MAX_BATCH, GPU_MAX_BATCH
    from worker.celery_app import worker_argv

    runtime = Runtime(make_settings())
    try:
        expected = GPU_MAX_BATCH if tf.config.list_physical_devices("GPU") else CPU_MAX_BATCH
        assert runtime.max_batch == runtime.settings.max_batch == expected
        argv = worker_argv(runtime.settings, "n@h", ["q"])
        assert argv[argv.index("--concurrency") + 1] == str(2 * expected), "a batch in the model, one decoding"
    finally:
        runtime.close()


def test_decode_threads_default_to_the_cores_this_process_may_use(make_settings):
    import os

    from worker.runtime import decode_threads

    assert decode_threads(make_settings()) == len(os.sched_getaffinity(0))
    assert decode_threads(make_settings(decode_threads=3)) == 3
