"""`spikeforge report`: layer names from the model, the hyper-parameters, energy constants, confusion matrix and
per-class accuracy, the fold check, honest sample counts, and a comparison of several runs."""

from __future__ import annotations

import json
import re

from spikeforge.cli.main import main
from spikeforge.neurons import Neuron
from spikeforge.train import load_run


def _section(md: str, title: str) -> str:
    assert f"## {title}" in md, f"report has no section {title!r}"
    return md.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def test_report_sections_and_layer_names(tiny_run, capsys):
    assert main(["report", str(tiny_run), "--samples", "16"]) == 0
    md = (tiny_run / "report.md").read_text()
    model, cfg = load_run(tiny_run)
    metrics = json.loads((tiny_run / "metrics.json").read_text())

    # spiking layers carry their qualified module names and the conv that drives them
    neurons = [n for n, m in model.named_modules() if isinstance(m, Neuron)]
    rows = re.findall(r"^\| `([^`]+)` \| (binary|ternary) \|", _section(md, "Firing rates and membrane potentials"),
                      flags=re.M)
    assert [r[0].split(" ")[0] for r in rows] == neurons
    assert all("Conv2d" in r[0] for r in rows)

    hyper = _section(md, "Hyper-parameters")
    assert "| epochs | `2` |" in hyper and "| model.widths | `[4, 8]` |" in hyper  # set by --set
    assert "| optim.name | `sgd` |" in hyper

    energy = _section(md, "Energy estimate")
    assert "E_MAC = 4.6 pJ" in energy and "E_AC = 0.9 pJ" in energy and "on 16 test samples" in energy

    conf = _section(md, "Confusion matrix and per-class accuracy")
    per_class = re.findall(r"^\| (\d) \| (\d+) \| (\d+) \|", conf, flags=re.M)
    assert [c for c, _, _ in per_class] == [str(i) for i in range(10)]
    total = sum(int(n) for _, n, _ in per_class)
    correct = sum(int(k) for _, _, k in per_class)
    assert total == cfg["data"]["limit"]                      # data.limit bounds the test split
    assert abs(correct / total - metrics["test_acc"]) < 1e-9    # the same predictions as the trainer's evaluation
    assert (tiny_run / "report" / "confusion.png").stat().st_size > 1000

    fold = _section(md, "Fold check")
    assert "spikes equal in every layer (float64) | True |" in fold
    dev = float(re.search(r"max deviation of the logits \(relative, float64\) \| ([^ |]+) \|", fold).group(1))
    assert dev <= 1e-5


def test_report_compares_runs(tiny_run, tiny_set, tmp_path, capsys):
    other = tmp_path / "other"
    assert main(["train", "quickstart", "--out", str(other), *tiny_set, "--set", "optim.lr=0.05",
                 "--set", "fold.enabled=false"]) == 0
    out = tmp_path / "cmp.md"
    assert main(["report", str(tiny_run), str(other), "--samples", "8", "--eval-samples", "8",
                 "--compare-out", str(out)]) == 0
    md = out.read_text()
    accs = [json.loads((r / "metrics.json").read_text())["test_acc"] for r in (tiny_run, other)]
    acc_row = next(line for line in md.splitlines() if line.startswith("| test accuracy |"))
    assert acc_row == f"| test accuracy | {100 * accs[0]:.2f} % | {100 * accs[1]:.2f} % |"
    differ = md.split("## Hyper-parameters that differ")[1]
    assert re.search(r"^\| optim\.lr \| `0\.1` \| `0\.05` \|$", differ, flags=re.M)
    assert re.search(r"^\| fold\.enabled \| `true` \| `false` \|$", differ, flags=re.M)
    assert "| epochs |" not in differ  # keys the runs share are left out
    assert "Folding is disabled" in (other / "report.md").read_text()
    assert f"comparison -> {out}" in capsys.readouterr().out
