"""One-pass T-sweep: accuracy at each T equals a separate evaluation at that T."""

from __future__ import annotations

import pytest
import torch

from spikeforge.encode import direct, readout
from spikeforge.models import create_model
from spikeforge.train.sweep import cumulative_readout, sweep_accuracy


def _batches(n_batches: int = 3, B: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(B, 1, 8, 8, generator=g) * 1.5, torch.randint(0, 4, (B,), generator=g))
            for _ in range(n_batches)]


def _separate(model, batches, T: int, mode: str = "mean", seed: int | None = None) -> tuple[float, torch.Tensor]:
    """Plain evaluation at a single T, one batch after the other."""
    model.eval()
    if seed is not None:
        torch.manual_seed(seed)
    preds, correct, total = [], 0, 0
    with torch.no_grad():
        for x, y in batches:
            p = readout(model(direct(x, T)), mode).argmax(-1)
            preds.append(p)
            correct += int((p == y).sum())
            total += len(y)
    return correct / total, torch.cat(preds)


def _warm_bn(model, batches) -> None:
    model.train()
    with torch.no_grad():
        for x, _ in batches:
            model(direct(x, 3))


def test_cumulative_readout_by_hand() -> None:
    z = torch.tensor([[[1.0, 0.0]], [[0.0, 3.0]], [[2.0, 0.0]]])
    torch.testing.assert_close(cumulative_readout(z, "sum")[:, 0], torch.tensor([[1.0, 0.0], [1.0, 3.0], [3.0, 3.0]]))
    torch.testing.assert_close(cumulative_readout(z, "mean")[:, 0], torch.tensor([[1.0, 0.0], [0.5, 1.5], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="'mean' or 'sum'"):
        cumulative_readout(z, "last")


def test_cumulative_log_softmax_mean_readout_by_hand() -> None:
    z = torch.tensor([[[1.0, 0.0]], [[0.0, 3.0]], [[2.0, 0.0]]])
    lp = torch.log_softmax(z, -1)
    got = cumulative_readout(z, "log_softmax_mean")[:, 0]
    torch.testing.assert_close(got[0], lp[0, 0])
    torch.testing.assert_close(got[1], (lp[0, 0] + lp[1, 0]) / 2)
    torch.testing.assert_close(got[2], lp[:, 0].mean(0))
    torch.testing.assert_close(got[2], readout(z, "log_softmax_mean")[0])
    # the argmax can differ from the mean-logit readout: here mean logits [1, 1] tie, log-probs do not
    assert not torch.equal(got[2], cumulative_readout(z, "mean")[2, 0])


def test_votes_average_the_readout_of_fresh_random_membrane_passes() -> None:
    # the official 3-vote test: mean over 3 forwards of (log_softmax averaged over T), each with a fresh U[0, 0.5)
    torch.manual_seed(3)
    model = create_model("convnet", num_classes=4, widths=(8, 8), neuron="pointnet")
    batches = _batches(2)
    _warm_bn(model, batches)
    model.eval()
    torch.manual_seed(11)
    res = sweep_accuracy(model, batches, T_max=3, readout="log_softmax_mean", votes=3)
    torch.manual_seed(11)
    correct = torch.zeros(3)
    total = 0
    with torch.no_grad():
        for x, y in batches:
            runs = [model(direct(x, 3)).log_softmax(-1) for _ in range(3)]  # fresh membranes per pass
            assert not torch.equal(runs[0], runs[1])
            for T in range(1, 4):
                pooled = sum(r[:T].mean(0) for r in runs) / 3
                correct[T - 1] += float((pooled.argmax(-1) == y).sum())
            total += len(y)
    assert res == {T: float(correct[T - 1]) / total for T in range(1, 4)}
    with pytest.raises(ValueError, match="votes"):
        sweep_accuracy(model, batches, T_max=2, votes=0)


def test_evaluate_with_votes_matches_hand_pooling() -> None:
    from spikeforge.losses import build_objective
    from spikeforge.train.trainer import evaluate

    torch.manual_seed(4)
    model = create_model("convnet", num_classes=4, widths=(8, 8), neuron="pointnet")
    (x, y), = _batches(1, B=12)
    _warm_bn(model, [(x, y)])
    obj = build_objective({"name": "ce", "readout": "log_softmax_mean"})
    torch.manual_seed(5)
    loss, acc = evaluate(model, obj, x, y, T=2, kind="static", batch_size=12, device=torch.device("cpu"), votes=3)
    torch.manual_seed(5)
    model.eval()
    with torch.no_grad():
        pooled = sum(model(direct(x, 2)).log_softmax(-1).mean(0) for _ in range(3)) / 3
    assert acc == float((pooled.argmax(-1) == y).sum()) / 12
    assert loss == pytest.approx(float(torch.nn.functional.nll_loss(pooled, y)), rel=1e-5)


@pytest.mark.parametrize("norm", ["bn", "bntt", "tebn"])
def test_sweep_equals_separate_evaluations(norm: str) -> None:
    torch.manual_seed(1)
    model = create_model("convnet", num_classes=4, widths=(8, 8), norm=norm)
    batches = _batches()
    _warm_bn(model, batches)
    model.train()
    res = sweep_accuracy(model, batches, T_max=5)
    assert model.training  # mode restored
    assert sorted(res) == [1, 2, 3, 4, 5]
    preds_by_T = []
    for T in range(1, 6):
        acc, preds = _separate(model, batches, T)
        assert res[T] == acc
        preds_by_T.append(preds)
    # the sweep is not trivially constant: predictions change with T for this untrained net
    assert any(not torch.equal(preds_by_T[0], p) for p in preds_by_T[1:])


def test_sweep_with_membrane_perturbation_at_test_time_matches_seeded_evaluations() -> None:
    # Spiking PointNet's MPP kept at inference: one U[0, 0.5) initial membrane per call, shape independent of T
    torch.manual_seed(2)
    model = create_model("convnet", num_classes=4, widths=(8, 8), neuron="pointnet")
    batches = _batches(2)
    _warm_bn(model, batches)
    torch.manual_seed(7)
    res = sweep_accuracy(model, batches, T_max=4)
    for T in range(1, 5):
        assert res[T] == _separate(model, batches, T, seed=7)[0]


def test_sum_readout_and_joint_asnn_model() -> None:
    torch.manual_seed(3)
    model = create_model("joint_asnn_resnet18", num_classes=4, in_channels=1, width=1 / 16)
    batches = _batches(1, B=8)
    _warm_bn(model, batches)
    res = sweep_accuracy(model, batches, T_max=3, readout="sum")
    for T in range(1, 4):
        assert res[T] == _separate(model, batches, T, mode="sum")[0]


def test_time_first_batches_and_custom_forward() -> None:
    torch.manual_seed(4)
    model = create_model("mlp", num_classes=4, in_features=64, hidden=(16,))
    batches = [(direct(x, 3), y) for x, y in _batches(2)]
    calls = []

    def fwd(m, xb):
        calls.append(xb.shape[0])
        return m(xb)

    res = sweep_accuracy(model, batches, T_max=3, encode=None, forward=fwd)
    assert calls == [3, 3]  # one run per batch, at T_max
    for T in range(1, 4):
        assert res[T] == _separate(model, [(x[0], y) for x, y in batches], T)[0]
    single = sweep_accuracy(model, batches[0], T_max=3, encode=None)
    assert single[3] == _separate(model, [(batches[0][0][0], batches[0][1])], 3)[0]


def test_sweep_errors() -> None:
    model = create_model("mlp", num_classes=4, in_features=64, hidden=(8,))
    with pytest.raises(ValueError, match="T_max must be >= 1"):
        sweep_accuracy(model, _batches(1), T_max=0)
    with pytest.raises(ValueError, match="expected T_max = 4"):
        sweep_accuracy(model, [(direct(torch.randn(2, 64), 2), torch.zeros(2, dtype=torch.long))], 4, encode=None)
    with pytest.raises(ValueError, match=r"per-step logits \[T_max=2, B, K\]"):
        sweep_accuracy(model, _batches(1), 2, forward=lambda m, x: m(x).mean(0))
    with pytest.raises(ValueError, match="no batches"):
        sweep_accuracy(model, [], 2)
