"""The study's fold check: float32 counts, the float64 repetition that removes threshold ties."""

from __future__ import annotations

import copy

import torch

from spikeforge import fold
from spikeforge.models import create_model
from spikeforge.study import execute
from spikeforge.study.execute import _predictions, fold_check, needs_recheck


def _trained_like_model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = create_model("convnet", num_classes=4, in_channels=1, input_size=(8, 8), widths=(6, 8),
                         neuron={"preset": "ternary", "pre_fire": "mpbn"})
    model.train()
    with torch.no_grad():  # non-trivial BN / MPBN running statistics
        for _ in range(3):
            model(torch.randn(2, 16, 1, 8, 8) * 2 + 0.3)
    return model.eval()


ARGS = dict(kind="static", T=2, readout="mean", batch=32, votes=1, seed=0, device=torch.device("cpu"))


def test_fold_check_counts_agreement_and_the_float64_fold_is_exact():
    model = _trained_like_model()
    x, y = torch.randn(64, 1, 8, 8), torch.randint(0, 4, (64,))
    res = fold_check(model, x, y, **ARGS)
    p = _predictions(model, x, **ARGS)
    assert res["test_acc"] == float((p == y).float().mean())
    assert res["fold_predictions_differ"] == int((p != _predictions(fold(model), x, **ARGS)).sum())
    m64 = copy.deepcopy(model).double()
    p64 = _predictions(m64, x, **ARGS, dtype=torch.float64)
    assert torch.equal(p64, _predictions(fold(m64), x, **ARGS, dtype=torch.float64))


def test_a_float32_mismatch_is_repeated_in_float64(monkeypatch):
    model = _trained_like_model()
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 4, (16,))
    calls = []
    real = execute._predictions

    def flip_folded_float32(m, xs, **kw):
        calls.append(kw.get("dtype", torch.float32))
        out = real(m, xs, **kw)
        if len(calls) == 2:  # the folded float32 pass: pretend one threshold tie flipped a prediction
            out = out.clone()
            out[0] = (out[0] + 1) % 4
        return out

    monkeypatch.setattr(execute, "_predictions", flip_folded_float32)
    res = fold_check(model, x, y, **ARGS)
    assert res["fold_predictions_differ"] == 1
    assert calls == [torch.float32, torch.float32, torch.float64, torch.float64]
    assert res["fold_check_float64"]["predictions_differ"] == 0
    assert res["fold_check_float64"]["test_acc"] == res["fold_check_float64"]["folded_test_acc"]


def test_results_from_before_the_float64_check_are_rechecked_only_when_they_differ():
    assert needs_recheck({"metrics": {"test_acc": 0.5, "folded_test_acc": 0.51}})
    assert not needs_recheck({"metrics": {"test_acc": 0.5, "folded_test_acc": 0.5}})
    assert not needs_recheck({"metrics": {"test_acc": 0.5, "folded_test_acc": 0.51, "fold_check_float64": {}}})
    assert not needs_recheck({"metrics": {"test_acc": 0.5, "folded_test_acc": None}})


def test_a_missing_dataset_stops_the_study_before_any_training(tmp_path):
    import pytest

    from spikeforge.study.execute import run_study
    from spikeforge.study.plan import plan

    runs = [r for r in plan(["static"], seeds=1) if r.method == "binary"]
    for r in runs:
        r.recipe["data"]["root"] = str(tmp_path / "nothing-here")
    with pytest.raises(FileNotFoundError, match=r"study part 'static' needs dataset 'fashion-mnist'.*--quick"):
        run_study(runs, tmp_path / "out", log=lambda *_: None)
    assert not list((tmp_path / "out").glob("*.json"))
