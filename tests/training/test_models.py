"""`dogbreed models`: publish, activate, list, import; a running worker follows the active version."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cli.main import main
from ml.model_folder import read_labels
from shared.breed_names import readable
from shared.db import make_engine, make_sessionmaker, session_scope
from shared.model_versions import active_version, list_versions, served_breeds


def _rows(env) -> list:
    with session_scope(make_sessionmaker(make_engine(env["DOGBREED_DATABASE_URL"]))) as session:
        return [(r.name, r.active, r.backbone, r.num_classes) for r in list_versions(session)]


def test_publish_copies_the_folder_and_records_the_version(trained, cli_env, capsys, tmp_path):
    assert main(["models", "publish", str(trained["folder"]), "--name", "textures-1"]) == 0
    folder = tmp_path / "models" / "textures-1"
    assert {p.name for p in folder.iterdir()} >= {"head.keras", "labels.json", "metrics.json", "card.json"}
    card = json.loads((folder / "card.json").read_text())
    assert card["name"] == "textures-1"
    assert card["breeds"] == [{"name": readable(x)} for x in read_labels(folder)]  # what GET /api/v1/breeds lists
    assert _rows(cli_env) == [("textures-1", False, "tiny", 4)]
    assert main(["models", "publish", str(trained["folder"]), "--name", "textures-1"]) == 1
    assert "already published" in capsys.readouterr().err
    assert main(["models", "activate", "textures-1"]) == 0
    with session_scope(make_sessionmaker(make_engine(cli_env["DOGBREED_DATABASE_URL"]))) as session:
        assert served_breeds(session, tmp_path / "models") == {
            "model_version": "textures-1", "head": "trained:textures-1", "breeds": card["breeds"]}
    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert any(line.startswith("* textures-1") for line in listed)


def test_publish_then_activate_switches_a_running_worker(trained, cli_env):
    from shared.settings import Settings
    from worker.maintenance import follow_active_version
    from worker.runtime import Runtime

    runtime = Runtime(Settings.from_env())
    runtime.setup()
    try:
        rgb = np.random.default_rng(0).integers(0, 255, (80, 80, 3), dtype=np.uint8)
        before = runtime.classify(rgb, (80, 80))
        assert before.model["model_version"] is None and before.model["head"] == "imagenet-dogs"
        for name in ("v1", "v2"):
            assert main(["models", "publish", str(trained["folder"]), "--name", name, "--activate"]) == 0
            follow_active_version(runtime.holder, runtime.sessions)  # the maintenance thread's step, each second
            after = runtime.classify(rgb, (80, 80))
            assert after.model["model_version"] == name and after.model["head"] == f"trained:{name}"
        assert {b["breed"] for b in after.breeds} <= {"Zebra", "Honeycomb", "Maze", "Static"}
    finally:
        runtime.close()


def _copy_run(trained, tmp_path, name="elsewhere"):
    folder = tmp_path / name
    shutil.copytree(trained["folder"], folder)
    return folder


def test_import_rejects_labels_that_do_not_match_the_outputs(trained, cli_env, capsys, tmp_path):
    folder = _copy_run(trained, tmp_path)
    (folder / "labels.json").write_text(json.dumps(["Zebra", "Honeycomb", "Maze"]))
    assert main(["models", "import", str(folder)]) == 1
    assert "4 outputs but labels.json names 3 labels" in capsys.readouterr().err
    assert _rows(cli_env) == [] and not (tmp_path / "models" / "elsewhere").exists()


def test_import_rejects_another_backbone(trained, cli_env, capsys, tmp_path):
    folder = _copy_run(trained, tmp_path)
    card = json.loads((folder / "card.json").read_text())
    (folder / "card.json").write_text(json.dumps({**card, "backbone": "resnet50"}))
    assert main(["models", "import", str(folder)]) == 1
    assert "trained on backbone 'resnet50'" in capsys.readouterr().err
    assert _rows(cli_env) == []


def test_import_rejects_a_head_on_features_of_another_size(cli_env, capsys, tmp_path):
    from training.head_training import build_head

    folder = tmp_path / "foreign"
    folder.mkdir()
    build_head(64, 2).save(folder / "head.keras")  # tiny's pooled features have 32 dimensions
    (folder / "labels.json").write_text(json.dumps(["A", "B"]))
    assert main(["models", "import", str(folder), "--backbone", "tiny"]) == 1
    assert "takes 64 features but the backbone gives 32" in capsys.readouterr().err


def test_import_accepts_a_consistent_model_without_a_card(trained, cli_env, tmp_path):
    folder = _copy_run(trained, tmp_path, "cardless")
    (folder / "card.json").unlink()
    assert main(["models", "import", str(folder), "--activate"]) == 0
    assert _rows(cli_env) == [("cardless", True, "tiny", 4)]
    card = json.loads((tmp_path / "models" / "cardless" / "card.json").read_text())
    assert card["source"] == str(folder.resolve()) and card["backbone"] == "tiny"


def test_activate_refuses_an_unknown_version_and_can_go_back_to_imagenet(trained, cli_env, capsys):
    assert main(["models", "activate", "nope"]) == 1
    assert "no version named 'nope'" in capsys.readouterr().err
    assert main(["models", "publish", str(trained["folder"]), "--name", "v1", "--activate"]) == 0
    assert main(["models", "activate", "imagenet-dogs"]) == 0
    with session_scope(make_sessionmaker(make_engine(cli_env["DOGBREED_DATABASE_URL"]))) as session:
        assert active_version(session) is None


@pytest.mark.parametrize("argv", [["models", "list"], ["models", "activate", "x"]])
def test_models_commands_never_load_tensorflow(cli_env, argv):
    """They answer at once: no TensorFlow, Keras or OpenCV (their start-up time is bench/cli_start.py's)."""
    code = ("import sys; from cli.main import main; rc = main(%r); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules, 'cv2' in sys.modules)" % argv)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split()[-3:] == ["False", "False", "False"]
