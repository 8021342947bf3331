"""``spikeforge study --quick``: the whole pipeline on embedded data, resumable, one result file per run."""

from __future__ import annotations

import json

from spikeforge.cli.main import main
from spikeforge.study.plan import plan
from spikeforge.study.report import fold_exact


def test_quick_study_runs_every_part_folds_exactly_and_resumes(tmp_path, capsys):
    out = tmp_path / "res"
    report = tmp_path / "results.md"
    args = ["study", "--quick", "--seeds", "1", "--in-process", "--out", str(out), "--report", str(report),
            "--no-plots"]
    assert main(args) == 0
    runs = plan(quick=True, seeds=1)
    for r in runs:
        data = json.loads((out / f"{r.run_id}.json").read_text())
        assert data["recipe"] == r.recipe and data["quick"] is True
        m = data["metrics"]
        assert 0.0 <= m["test_acc"] <= 1.0
        if r.method != "ann":
            assert fold_exact(m), r.run_id
        assert data["timings"]["wall_seconds"] > 0
    text = report.read_text()
    assert "QUICK SMOKE RUN" in text and "## 3. Point clouds" in text
    capsys.readouterr()
    # resumable: nothing is retrained, the report is rebuilt
    assert main(args) == 0
    assert f"{len(runs)} already finished, 0 to run" in capsys.readouterr().out


def test_one_run_in_its_own_process_records_its_peak_memory(tmp_path):
    out = tmp_path / "res"
    assert main(["study", "static", "--quick", "--seeds", "1", "--methods", "binary", "--out", str(out),
                 "--report", str(tmp_path / "r.md"), "--no-plots"]) == 0
    files = sorted(out.glob("*.json"))
    assert [f.name for f in files] == ["static-binary-T1-s0-quick.json", "static-binary-T2-s0-quick.json"]
    t = json.loads(files[0].read_text())["timings"]
    assert t["peak_rss_mib"] >= t["rss_before_mib"] > 0
