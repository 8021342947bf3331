"""``spikeforge models``: parameter counts and MACs from the real modules, table and JSON output."""

from __future__ import annotations

import json

import spikeforge as sf
from spikeforge.analysis import total_macs as count_macs
from spikeforge.cli.main import main
from spikeforge.models.complexity import example_input


def test_json_rows_match_the_modules(capsys):
    assert main(["models", "vgg11", "dvs_cnn", "pointnet", "--json"]) == 0
    rows = {r["model"]: r for r in map(json.loads, capsys.readouterr().out.strip().splitlines())}
    assert set(rows) == {"vgg11", "dvs_cnn", "pointnet"}
    assert rows["vgg11"]["params"] == 9_231_114 and rows["vgg11"]["input_shape"] == [3, 32, 32]
    assert rows["pointnet"]["input_kind"] == "points" and rows["dvs_cnn"]["input_kind"] == "events"
    m = sf.create_model("dvs_cnn")
    assert rows["dvs_cnn"]["macs"] == count_macs(m, example_input((2, 48, 48)))
    assert rows["dvs_cnn"]["flops"] == 2 * rows["dvs_cnn"]["macs"]


def test_table_and_class_override(capsys):
    assert main(["models", "resnet18", "--num-classes", "10"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("resnet18"))
    assert "11,181,642" in line and "1.81G" in line  # 11,689,512 − 990·513 (FC 512 -> 10 instead of -> 1000)


def test_unknown_model_is_an_error(capsys):
    assert main(["models", "resnet9000"]) == 2
    assert "unknown model" in capsys.readouterr().err
