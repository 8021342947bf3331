"""The committed report is generated from the committed result files alone; the report's numbers are the
statistics of those files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikeforge.study.plan import plan
from spikeforge.study.report import fold_exact, load_results, plot_names, render

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"
REPORT = ROOT / "docs" / "results.md"


def test_docs_results_md_is_regenerated_from_the_committed_result_files():
    results = load_results(RESULTS)
    assert results, "results/*.json are committed with the study"
    notes = RESULTS / "notes.md"
    text = render(results, plot_names(results, "results"), notes.read_text() if notes.is_file() else None)
    assert text == REPORT.read_text(), "docs/results.md is stale: rerun `spikeforge study --report-only`"


def test_every_committed_folded_model_makes_the_unfolded_predictions():
    """In float32, or — where a float32 threshold tie flipped a prediction — with model and fold in float64."""
    for r in load_results(RESULTS):
        m = r["metrics"]
        if r["method"] == "ann":
            assert m["folded_test_acc"] is None
            continue
        assert m["fold_error"] is None, r["run_id"]
        assert fold_exact(m), r["run_id"]
        if m["fold_predictions_differ"]:
            f64 = m["fold_check_float64"]
            assert f64["predictions_differ"] == 0 and f64["folded_test_acc"] == f64["test_acc"], r["run_id"]
            assert m["fold_predictions_differ"] <= 2, r["run_id"]  # rounding ties, not a fold error
        else:
            assert m["folded_test_acc"] == m["test_acc"], r["run_id"]


def test_fold_exact_reads_float32_then_float64():
    assert fold_exact({"folded_test_acc": 0.5, "test_acc": 0.5, "fold_predictions_differ": 0})
    assert fold_exact({"folded_test_acc": 0.5, "test_acc": 0.49, "fold_predictions_differ": 1,
                       "fold_check_float64": {"predictions_differ": 0}})
    assert not fold_exact({"folded_test_acc": 0.5, "test_acc": 0.49, "fold_predictions_differ": 1,
                           "fold_check_float64": {"predictions_differ": 3}})
    assert not fold_exact({"folded_test_acc": 0.5, "test_acc": 0.49, "fold_predictions_differ": 1,
                           "fold_check_float64": None})
    assert fold_exact({"folded_test_acc": None, "test_acc": 0.5}) is None


def _fake(run, acc: float) -> dict:
    return {"schema": 1, "run_id": run.run_id, "part": run.part, "method": run.method, "T": run.T,
            "seed": run.seed, "quick": False, "recipe": run.recipe, "commit": "abc", "dirty": False,
            "machine": {"cpu": "x", "logical_cores": 2, "torch": "2", "torch_threads": 2, "cuda": None},
            "started": "2026-01-01T00:00:00+00:00", "finished": "2026-01-01T00:01:00+00:00",
            "metrics": {"test_acc": acc, "folded_test_acc": None if run.method == "ann" else acc,
                        "fold_error": None, "T_sweep": {}, "energy_pj": 1e6, "sops": 10.0,
                        "mean_firing_rate": 0.1},
            "timings": {"wall_seconds": 60.0, "epoch_seconds_median": 2.0, "peak_rss_mib": 100.0,
                        "rss_before_mib": 50.0}}


def test_render_states_the_paired_difference_and_verdict_of_the_files(tmp_path):
    runs = [r for r in plan(["static"], seeds=3) if r.method in ("binary", "ternary") and r.T == 1]
    acc = {("binary", 0): 0.80, ("binary", 1): 0.81, ("binary", 2): 0.82,
           ("ternary", 0): 0.83, ("ternary", 1): 0.85, ("ternary", 2): 0.84}
    for r in runs:
        (tmp_path / f"{r.run_id}.json").write_text(json.dumps(_fake(r, acc[(r.method, r.seed)])))
    text = render(load_results(tmp_path))
    # differences 3, 4, 2 pp: mean 3, sd 1, half-width 4.303 / sqrt(3) = 2.48
    assert "| ternary spike, fixed amplitude | 3 | 84.00 ± 1.00 | +3.00 [+0.52, +5.48] | agrees |" in text
    assert "| vanilla binary LIF (hard reset) | 3 | 81.00 ± 1.00 | – | baseline |" in text
    assert "the folded model makes the unfolded model's predictions in 6 of 6 folded runs" in text


def test_a_file_that_is_not_a_result_is_refused(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="not a study result"):
        load_results(tmp_path)
    with pytest.raises(FileNotFoundError, match="no result folder"):
        load_results(tmp_path / "missing")
