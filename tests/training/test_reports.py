"""`dogbreed evaluate` and `dogbreed experiment data-size`: the numbers and figures a data scientist reads."""
from __future__ import annotations

import json

from PIL import Image

from cli.main import main
from training.evaluate import evaluate
from training.experiment import data_size


def test_evaluate_reports_accuracies_breeds_and_confusions(trained, tmp_path):
    out = tmp_path / "eval"
    report = evaluate(trained["folder"], trained["config"].data_dir, cache_dir=trained["cache"], out_dir=out,
                      quiet=True)
    assert report["top1"] == trained["test"]["top1"]  # the same seeded test split as training
    assert report["top1"] <= report["top5"] == 1.0  # four classes: the top five hold them all
    assert set(report["per_breed"]) == {"Zebra", "Honeycomb", "Maze", "Static"}
    assert sum(v["images"] for v in report["per_breed"].values()) == report["images"] == 40
    wrong = report["images"] - round(report["top1"] * report["images"])
    assert sum(p["count"] for p in report["most_confused"]) == wrong
    assert json.loads((out / "report.json").read_text())["top1"] == report["top1"]
    assert Image.open(out / "report.png").size[0] > 1000


def test_evaluate_command_finds_a_published_version_by_name(trained, cli_env, capsys):
    assert main(["models", "publish", str(trained["folder"]), "--name", "v1"]) == 0
    assert main(["evaluate", "v1", str(trained["config"].data_dir), "--cache-dir", str(trained["cache"])]) == 0
    assert "top-1" in capsys.readouterr().out


def test_data_size_experiment_compares_both_strategies(trained, make_config, tmp_path):
    config = make_config(trained["config"].data_dir, trained["cache"])
    rows = data_size(config, fractions=(1.0, 0.1), out_dir=tmp_path / "exp")
    assert [(r["fraction"], r["strategy"]) for r in rows] == [
        (1.0, "feature-extraction"), (1.0, "fine-tune"), (0.1, "feature-extraction"), (0.1, "fine-tune")]
    assert [r["train_images"] for r in rows] == [320, 320, 32, 32]
    full, tenth = rows[0]["test_top1"], rows[2]["test_top1"]
    assert full >= 0.55 and full >= tenth
    saved = json.loads((tmp_path / "exp" / "data_size.json").read_text())
    assert saved["rows"] == rows and (tmp_path / "exp" / "data_size.png").stat().st_size > 10_000
