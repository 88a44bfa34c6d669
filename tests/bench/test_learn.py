"""bench/learn.py on the team's real photos: seed 0's split meets issue 20's targets."""
import pytest

pytestmark = pytest.mark.slow


def test_learned_head_meets_the_targets_on_seed_0(real_data):
    from bench import learn

    if not learn.WEIGHTS.is_file():
        pytest.skip(f"{learn.WEIGHTS} is absent (only the team's checkout has the real weights)")
    zero, learned = learn.run(0).values()
    assert learned["top-1 over all named dogs"] >= 0.62, learned
    assert learned["top-1 on breeds ImageNet knows"] >= zero["top-1 on breeds ImageNet knows"] - 0.01, (zero, learned)
    assert learned["unknown-breed dogs flagged uncertain"] >= 0.6, learned
    assert learned["correctly named dogs flagged"] <= 0.15, learned
    assert zero["unknown-breed dogs flagged uncertain"] >= 0.6 and zero["correctly named dogs flagged"] <= 0.15, zero
