"""`dogbreed models learn` on real photos and the real EfficientNet-Lite2 weights: labeled jobs in the
database, their images in the store, a published head that keeps the 118 ImageNet breeds and names
a breed ImageNet lacks."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cli.main import main
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.model_versions import active_version
from shared.storage import FolderImageStore
from shared.tables import Label
from tests.factories import database, make_job, make_user
from tests.helpers.services import REAL_MODELS

LITE2 = REAL_MODELS / "efficientnet_lite2_imagenet.keras"
NEW_BREED = "Bichon frise"  # not among ImageNet's 118
LABELED = {"Bichon_frise": ["wiki__bichon_frise_0.jpg", "wiki__bichon_frise_1.jpg", "wiki__bichon_frise_2.jpg",
                            "wiki__bichon_frise_3.jpg"],
           "Keeshond": ["wiki__keeshond_1.jpg", "wiki__keeshond_2.jpg", "wiki__keeshond_3.jpg"],
           "Chow_chow": ["wiki__chow_chow_0.jpg", "wiki__chow_chow_1.jpg"]}
UNSEEN = "dogs/Bichon_frise/wiki__bichon_frise_4.jpg"  # never labeled: the head must name it


@pytest.fixture(scope="module")
def lite2(real_data) -> Path:
    if not LITE2.is_file():
        pytest.skip(f"{LITE2} is absent (only the team's checkout has the real weights)")
    return LITE2


@pytest.fixture(scope="module")
def feature_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("features")


@pytest.fixture
def learn_env(tmp_path, monkeypatch, sqlite_url, lite2, feature_cache) -> dict[str, str]:
    env = {"DOGBREED_VAR_DIR": str(tmp_path / "var"), "DOGBREED_DATABASE_URL": sqlite_url,
           "DOGBREED_MODEL_DIR": str(tmp_path / "models"), "DOGBREED_STORAGE_DIR": str(tmp_path / "images"),
           "DOGBREED_FEATURE_CACHE_DIR": str(feature_cache), "DOGBREED_BACKBONE": "efficientnet_lite2",
           "DOGBREED_BACKBONE_WEIGHTS": str(lite2)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def label_photos(env: dict[str, str], real_data: Path, breeds: dict[str, list[str]], spelled=str) -> None:
    """Upload-like jobs whose images are in the store, each labeled with its breed as a user types it."""
    store = FolderImageStore(Path(env["DOGBREED_STORAGE_DIR"]))
    with database(env["DOGBREED_DATABASE_URL"]) as session:
        user = make_user(session)
        for folder, files in breeds.items():
            for name in files:
                data = (real_data / "dogs" / folder / name).read_bytes()
                stored = store.store(data, "jpg")
                job = make_job(session, owner_id=user.id, sha256=stored.sha256, size=len(data), fmt="JPEG",
                               status="succeeded")
                session.add(Label(job_id=job.id, kind="dog", breed=spelled(folder.replace("_", " ")),
                                  user_id=user.id))


def test_learn_keeps_the_118_and_names_a_new_breed(learn_env, real_data, capsys):
    from ml.backbone import load_backbone
    from ml.faces import HaarDetector
    from ml.heads import load_trained_head
    from ml.pipeline import Models, classify
    from ml.uncertainty import LEARNED_RULE
    from shared.breed_names import COMMON_NAMES
    from shared.images import load_rgb

    label_photos(learn_env, real_data, LABELED)
    assert main(["models", "learn", "--name", "learned-1", "--activate"]) == 0
    out = capsys.readouterr().out
    assert "held-back labels" in out and "before (imagenet-dogs)" in out, out
    assert "learned-1 is active" in out, out
    folder = Path(learn_env["DOGBREED_MODEL_DIR"]) / "learned-1"
    card = json.loads((folder / "card.json").read_text())
    names = [b["name"] for b in card["breeds"]]
    assert set(COMMON_NAMES.values()) <= set(names) and len(names) == 118 + 1
    assert {"name": NEW_BREED, "photos": 4} in card["breeds"]
    assert {"name": "Keeshond"} in card["breeds"], "photos are counted only for breeds added by learning"
    with session_scope(make_sessionmaker(make_engine(learn_env["DOGBREED_DATABASE_URL"]))) as session:
        assert active_version(session).name == "learned-1"

    backbone = load_backbone("efficientnet_lite2", learn_env["DOGBREED_BACKBONE_WEIGHTS"])
    head = load_trained_head(folder, "learned-1", backbone.feature_dim)  # as the worker loads it
    assert head.sure == LEARNED_RULE
    models = Models(backbone, head, HaarDetector())
    photos = [UNSEEN, "dogs/Borzoi/wiki__borzoi_4.jpg", "dogs/Dalmatian/wiki__dalmatian_2.jpg"]
    results = classify([load_rgb((real_data / p).read_bytes(), 10**8, 640) for p in photos], models)
    assert [r.kind for r in results] == ["dog"] * 3
    assert [r.breeds[0]["breed"] for r in results] == [NEW_BREED, "Borzoi", "Dalmatian"], \
        [r.breeds[:2] for r in results]
    assert results[0].model["model_version"] == "learned-1"


def test_min_photos_leaves_out_thin_breeds_and_spellings_meet(learn_env, real_data, capsys):
    label_photos(learn_env, real_data, {"Bichon_frise": LABELED["Bichon_frise"][:2],
                                        "Keeshond": LABELED["Keeshond"][:1]}, spelled=str.upper)
    assert main(["models", "learn", "--name", "thin", "--min-photos", "3"]) == 0
    out = capsys.readouterr().out
    assert "not added (fewer than 3 photos): BICHON FRISE" in out, out
    assert "next: dogbreed models activate thin" in out
    card = json.loads((Path(learn_env["DOGBREED_MODEL_DIR"]) / "thin" / "card.json").read_text())
    assert len(card["breeds"]) == 118 and {"name": "Keeshond"} in card["breeds"]


def test_learn_without_labels_says_what_to_do(learn_env, capsys):
    assert main(["models", "learn", "--name", "empty"]) == 1
    err = capsys.readouterr().err
    assert "no dog photos are labeled" in err and "PUT /api/v1/jobs/<id>/label" in err


def test_fit_stays_near_its_start():
    from training.learn import fit

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 5)), np.array([0, 1, 2, 0, 1, 2])
    start = rng.normal(size=(5, 3)), np.zeros(3)
    loose = fit(x, y, *start, l2=0.0, steps=100, lr=0.05)
    tight = fit(x, y, *start, l2=10.0, steps=100, lr=0.05)
    assert np.abs(tight[0] - start[0]).max() < np.abs(loose[0] - start[0]).max()


def test_activation_is_refused_when_the_118_would_lose(learn_env, real_data, capsys):
    label_photos(learn_env, real_data, {"Keeshond": LABELED["Keeshond"], "Chow_chow": LABELED["Chow_chow"]})
    # a negative margin no head can meet: the refusal path, with the real evaluation in front of it
    assert main(["models", "learn", "--name", "strict", "--activate", "--margin", "-1"]) == 1
    captured = capsys.readouterr()
    assert "of the 118 ImageNet breeds" in captured.out, captured.out
    assert "not activated: on the held-back photos of the 118 ImageNet breeds" in captured.err, captured.err
    assert (Path(learn_env["DOGBREED_MODEL_DIR"]) / "strict" / "head.keras").is_file(), "published all the same"
    with session_scope(make_sessionmaker(make_engine(learn_env["DOGBREED_DATABASE_URL"]))) as session:
        assert active_version(session) is None
