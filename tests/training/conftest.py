"""Training fixtures: a generated texture data set, one saved tiny backbone, one trained run per session."""
from __future__ import annotations

from pathlib import Path

import pytest

# One tiny classifier file for training and serving alike: `random` would build new weights each time.
PER_CLASS = 100
HEAD_LR = 1e-2  # tiny's pooled features are weak; a brisker rate keeps the tests short


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    from ml.backbone import build_classifier

    path = tmp_path_factory.mktemp("weights") / "tiny.keras"
    build_classifier("tiny", None).save(path)
    return path


@pytest.fixture(scope="session")
def texture_data(tmp_path_factory) -> Path:
    """Four classes of 64x64 images told apart by texture (stripes, checks, rings, noise), random colours."""
    from training.synthetic import write_dataset

    return write_dataset(tmp_path_factory.mktemp("textures") / "textures", per_class=PER_CLASS, seed=1)


@pytest.fixture(scope="session")
def make_config(tiny_weights):
    from training.schedules import FineTuneConfig
    from training.train import TrainConfig

    def make(data_dir: Path, cache_dir: Path, **changes) -> TrainConfig:
        base = dict(data_dir=data_dir, backbone="tiny", weights=str(tiny_weights), cache_dir=cache_dir,
                    lr=HEAD_LR, patience=8, quiet=True,
                    finetune=FineTuneConfig(epochs=2, lr=1e-3, groups=2, unfreeze=1, patience=2))
        return TrainConfig(**{**base, **changes})

    return make


@pytest.fixture(scope="session")
def trained(tmp_path_factory, texture_data, make_config) -> dict:
    """One feature-extraction run that several tests read: its metrics, folder and cache."""
    from training.train import train

    root = tmp_path_factory.mktemp("run")
    config = make_config(texture_data, root / "cache", out_dir=root / "model")
    return {**train(config), "config": config, "cache": root / "cache", "folder": root / "model"}


@pytest.fixture
def cli_env(tmp_path, monkeypatch, tiny_weights, sqlite_url) -> dict[str, str]:
    """DOGBREED_* for a migrated SQLite database (a copy of the session's template) and a model folder
    of this test's own."""
    env = {
        "DOGBREED_VAR_DIR": str(tmp_path / "var"),
        "DOGBREED_DATABASE_URL": sqlite_url,
        "DOGBREED_MODEL_DIR": str(tmp_path / "models"),
        "DOGBREED_STORAGE_DIR": str(tmp_path / "images"),
        "DOGBREED_BACKBONE": "tiny",
        "DOGBREED_BACKBONE_WEIGHTS": str(tiny_weights),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env
