"""End-to-end folds of small trained residual nets, one per method, plus the refusal policies."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from spikeforge.fold import FoldError, StepAffine, fold, leftovers, verify_fold
from spikeforge.layers import AvgPool2d, BasicBlock, Conv2d, Flatten, Linear, make_neuron
from spikeforge.layers.norm import BNTT2d, TEBN2d
from spikeforge.layers.unshared import UnsharedConv2d
from spikeforge.neurons import Amplitude, MembraneBN, Neuron, spiking_neurons

from ._nets import HW, inputs, make_net, perturb, train_steps

METHODS = {
    "lif": "lif",
    "plif": "plif",
    "ternary-layer": "ternary",
    "ternary-channel": {"preset": "ternary", "amplitude": "channel"},
    "real-spike-layer": {"preset": "real-spike", "amplitude": "layer"},
    "real-spike-channel": "real-spike",
    "real-spike-element": "real-spike-element",
    "mpbn-channel": "mpbn",
    "mpbn-element": {"preset": "mpbn", "mpbn": "element"},
    "mpbn-channel-per-step": {"preset": "mpbn", "mpbn_running": "per_step", "max_steps": 8},
    "mpbn-element-per-step": {"preset": "mpbn", "mpbn": "element", "mpbn_running": "per_step", "max_steps": 8},
    "ternary-mpbn": {"preset": "ternary", "pre_fire": "mpbn"},
    "ternary-mpbn-element-per-step": {"preset": "ternary", "pre_fire": "mpbn", "mpbn": "element",
                                      "mpbn_running": "per_step", "max_steps": 8},
    "soft-reset-mpr": "soft-mpr",
    "inflor": "inflor",
    "soft-reset-constant": {"reset": "soft", "soft_reset_amount": 0.8},
    "train-only-uniform-init": {"init": "uniform", "init_when": "train"},
}


def _check_exact(model: nn.Module, folded: nn.Module, seed: int = 7) -> None:
    report = verify_fold(model, folded, inputs(seed))
    assert report.max_dev <= 1e-5, report
    assert report.spikes_equal, report
    assert report.spike_values_ok, report.spike_values
    assert float(report) == report.max_dev
    # the comparison is not vacuous: (nearly) every layer fires, none everywhere
    _, rates = _rates(model, inputs(seed).double())
    assert all(r < 1.0 for r in rates.values()), rates
    assert sum(r > 0.0 for r in rates.values()) >= len(rates) - 1, rates
    assert leftovers(folded) == []
    for m in folded.modules():
        assert not isinstance(m, (MembraneBN, Amplitude, nn.BatchNorm2d, nn.BatchNorm1d, BNTT2d))
        if isinstance(m, Neuron):
            assert m.spec.pre_fire == "none" and m.mpbn is None and m.amplitude is None


def _rates(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    rates: dict[str, float] = {}
    from spikeforge.neurons import observe

    names = {id(m): n for n, m in spiking_neurons(model)}
    with torch.no_grad(), observe(model, lambda n, _f, s: rates.__setitem__(names[id(n)], float(s.abs().mean()))):
        out = model(x)
    return out, rates


@pytest.mark.parametrize(("method", "norm"), [(m, "bn") for m in sorted(METHODS)] + [
    (m, "tdbn") for m in ("lif", "ternary-channel", "real-spike-element", "mpbn-channel")])
def test_fold_trained_standard_resnet_is_exact(method: str, norm: str) -> None:
    model = train_steps(make_net(METHODS[method], norm=norm)).double()
    before = copy.deepcopy(model.state_dict())
    folded = fold(model)
    # the trained model is untouched
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert model.training is False and folded.training is False
    _check_exact(model, folded)


@pytest.mark.parametrize("method", ["ternary-channel", "real-spike-element", "mpbn-element-per-step",
                                    "soft-reset-mpr"])
def test_fold_untrained_random_weights_is_exact(method: str) -> None:
    model = make_net(METHODS[method])
    perturb(model, seed=3)
    with torch.no_grad():  # random running statistics instead of trained ones
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, MembraneBN)):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2.0)
    model = model.double().eval()
    _check_exact(model, fold(model), seed=11)


@pytest.mark.parametrize("norm", ["bntt", "tebn"])
@pytest.mark.parametrize("method", ["lif", "ternary-channel", "mpbn-channel"])
def test_fold_per_step_norms_become_step_affines(method: str, norm: str) -> None:
    model = train_steps(make_net(METHODS[method], norm=norm)).double()
    folded = fold(model)
    _check_exact(model, folded)
    affines = [m for m in folded.modules() if isinstance(m, StepAffine)]
    assert len(affines) == 6 and all(a.per_step for a in affines)
    assert not any(isinstance(m, (BNTT2d, TEBN2d)) for m in folded.modules())


@pytest.mark.parametrize("method", ["lif", "ternary-channel", "real-spike-element", "mpbn-channel", "soft-reset-mpr"])
def test_fold_ms_resnet(method: str) -> None:
    model = train_steps(make_net(METHODS[method], style="ms")).double()
    _check_exact(model, fold(model))


@pytest.mark.parametrize("method", ["lif", "mpbn-element", "soft-reset-mpr"])
def test_fold_sew_resnet_without_amplitudes(method: str) -> None:
    model = train_steps(make_net(METHODS[method], style="sew")).double()
    _check_exact(model, fold(model))


def test_fold_sew_with_equal_layer_amplitudes() -> None:
    model = train_steps(make_net({"preset": "real-spike", "amplitude": "layer"}, style="sew")).double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, Amplitude):
                m.weight.fill_(0.7)
    _check_exact(model, fold(model))


def test_sew_downsampling_shortcut_spikes_and_unequal_amplitudes_fold_by_concatenation() -> None:
    torch.manual_seed(0)
    cfg = {"preset": "real-spike", "amplitude": "channel"}
    block = BasicBlock(2, 4, 2, cfg, style="sew", hw=HW)
    assert isinstance(block.shortcut[-1], Neuron)  # conv-BN-neuron: both addends are spikes (SEW-ResNet)
    model = nn.Sequential(block, Flatten(), Linear(36, 5))
    perturb(model, seed=5)
    with torch.no_grad():
        block.sn2.amplitude.weight.copy_(torch.tensor([0.9, -1.1, 1.2, -0.6]).reshape(4, 1, 1))
        block.shortcut[-1].amplitude.weight.copy_(torch.tensor([0.9, -1.1, 1.2, -0.6]).reshape(4, 1, 1))
    model = model.double().eval()
    folded = fold(model)
    _check_exact(model, folded, seed=2)
    # the common amplitude moved into the linear layer after the block
    a = block.sn2.amplitude.weight.detach().reshape(4).repeat_interleave(9)
    assert torch.allclose(folded[2].weight, model[2].weight * a)
    with torch.no_grad():
        block.shortcut[-1].amplitude.weight.fill_(1.0)
    # unequal amplitudes (issue 11): the addends are concatenated, the linear layer holds one slice per addend
    folded = fold(model)
    _check_exact(model, folded, seed=2)
    assert folded[0].join == "cat" and folded[2].in_features == 72
    assert torch.allclose(folded[2].weight, torch.cat([model[2].weight * a, model[2].weight], dim=1))


def test_element_amplitude_yields_unshared_convs_stride_1_and_2() -> None:
    model = train_steps(make_net("real-spike-element")).double()
    folded = fold(model)
    unshared = {n: m for n, m in folded.named_modules() if isinstance(m, UnsharedConv2d)}
    assert {"3.conv1", "3.conv2", "4.conv1", "4.conv2", "4.shortcut.0"} <= set(unshared)
    assert unshared["4.conv1"].stride == (2, 2) and unshared["4.shortcut.0"].stride == (2, 2)
    # the stem's element amplitude reached the identity shortcut: sn2 got per-element thresholds a⁻¹·V_th
    a = model[2].amplitude.weight.detach()
    assert torch.allclose(folded[3].sn2.threshold, 0.5 / a)


def test_identity_shortcut_divides_receiving_threshold_by_channel_amplitude() -> None:
    model = train_steps(make_net("real-spike")).double()
    folded = fold(model)
    a = model[2].amplitude.weight.detach()  # (C, 1, 1), the stem's amplitude on block 3's identity path
    assert torch.allclose(folded[3].sn2.threshold, 0.5 / a)
    assert folded[4].sn2.threshold.ndim == 0  # conv shortcut: no rescaling


def test_negative_amplitude_on_identity_shortcut_is_refused_but_folds_into_convs() -> None:
    model = train_steps(make_net("real-spike")).double()
    with torch.no_grad():
        model[3].sn2.amplitude.weight[1] = -0.5  # feeds block 4: convs only -> fine
    fold(model)
    with torch.no_grad():
        model[2].amplitude.weight[2] = -0.5  # feeds block 3's identity shortcut
    with pytest.raises(FoldError, match=r"3: the amplitude of 2 reaches the identity shortcut.*a > 0"):
        fold(model)


def test_mpbn_nonpositive_scale_policy() -> None:
    cfg = {"preset": "mpbn", "mpbn_min_scale": None}
    model = train_steps(make_net(cfg)).double()
    fold(model)  # positive λ: fine
    with torch.no_grad():
        model[3].sn1.mpbn.weight[1] = -0.2
        model[3].sn1.mpbn.weight[3] = 0.0
    with pytest.raises(FoldError, match=r"3\.sn1: MPBN scale λ ≤ 0 at 2 channel\(s\) \[1, 3\]"):
        fold(model)
    # with the default floor the effective λ stays positive and the fold is exact
    floored = train_steps(make_net("mpbn")).double()
    with torch.no_grad():
        floored[3].sn1.mpbn.weight[1] = -0.2
    assert float(floored[3].sn1.mpbn.scale().detach()[1]) == pytest.approx(1e-4)
    _check_exact(floored, fold(floored))


def test_mpbn_threshold_formula_closed_form() -> None:
    model = train_steps(make_net("mpbn")).double()
    bn = model[2].mpbn
    lam, beta = bn.weight.detach(), bn.bias.detach()
    mu, var = bn.running_mean[0], bn.running_var[0]
    expected = ((0.5 - beta) * torch.sqrt(var + bn.eps) / lam + mu).reshape(-1, 1, 1)
    assert torch.allclose(fold(model)[2].threshold, expected, rtol=1e-12, atol=0)


def test_per_step_mpbn_gives_time_varying_threshold() -> None:
    model = train_steps(make_net(METHODS["mpbn-channel-per-step"])).double()
    folded = fold(model)
    n = folded[2]
    assert n.threshold_per_step and n.threshold.shape == (8, 1, 4, 1, 1)
    assert not torch.allclose(n.threshold[0], n.threshold[1])  # trained steps have different statistics


def test_mpr_fold_sets_inverse_threshold() -> None:
    # soft reset by the threshold (soft_reset_amount=None), so that the fold must pin the raw V_th
    model = train_steps(make_net({"preset": "soft-mpr", "threshold": 0.7, "soft_reset_amount": None})).double()
    folded = fold(model)
    from spikeforge.functional import mpr, mpr_inverse

    n, v_th = folded[2], model[2].threshold  # V_th = 0.7 as stored (float32-rounded, then float64)
    assert float(n.threshold) == pytest.approx(float(mpr_inverse(v_th)), rel=1e-14)
    assert float(mpr(n.threshold)) == pytest.approx(float(v_th), abs=1e-12)
    assert float(n.threshold) < 0.69  # phi^{-1}(0.7) ≈ 0.626
    assert n.spec.soft_reset_amount == float(v_th)  # the reset still subtracts the raw V_th
    _check_exact(model, folded)


def test_ternary_mpbn_folds_to_two_thresholds() -> None:
    model = train_steps(make_net({"preset": "ternary", "pre_fire": "mpbn"})).double()
    folded = fold(model)
    _check_exact(model, folded)
    mpbn = model[2].mpbn
    mean, var = mpbn.stats(0)
    lam, beta = mpbn.affine()
    sd = torch.sqrt(var.double() + mpbn.eps)
    n = folded[2]
    torch.testing.assert_close(n.threshold, (0.5 - beta.double()) * sd / lam.double() + mean.double())
    torch.testing.assert_close(n.threshold_low, (-0.5 - beta.double()) * sd / lam.double() + mean.double())
    assert bool((n.threshold_low < n.threshold).all())
    # both polarities actually occur, so the negative threshold is exercised
    spikes = []
    from spikeforge.neurons import observe

    with torch.no_grad(), observe(folded, lambda m, _f, sp: spikes.append(sp) if m is n else None):
        folded(inputs(7).double())
    assert bool((spikes[0] < 0).any()) and bool((spikes[0] > 0).any())


def test_uniform_init_train_only_is_dropped_always_is_kept() -> None:
    model = train_steps(make_net({"init": "uniform", "init_when": "train"})).double()
    assert all(n.config.init == "zero" for _, n in spiking_neurons(fold(model)))
    always = train_steps(make_net("pointnet")).double()
    folded = fold(always)
    assert all(n.config.init == "uniform" and n.config.init_when == "always" for _, n in spiking_neurons(folded))
    _check_exact(always, folded)  # same seed for both forwards: same random initial membranes


def test_element_amplitude_into_avg_pool_is_refused_naming_both() -> None:
    model = nn.Sequential(Conv2d(2, 4, 3, 1, 1), make_neuron("real-spike-element", 4, HW),
                          AvgPool2d(2), Flatten(), Linear(36, 3)).eval()
    with pytest.raises(FoldError, match=r"amplitude of 1 reaches the pooling layer 2"):
        fold(model)
    chan = nn.Sequential(Conv2d(2, 4, 3, 1, 1), make_neuron("real-spike", 4, HW),
                         AvgPool2d(2), Flatten(), Linear(36, 3))
    perturb(chan)
    chan = chan.double().eval()
    _check_exact(chan, fold(chan))


def test_amplitude_reaching_output_or_unknown_consumer_is_refused() -> None:
    with pytest.raises(FoldError, match="reaches the model output"):
        fold(nn.Sequential(Linear(4, 3), Neuron("real-spike", (3,))))
    with pytest.raises(FoldError, match=r"amplitude of 1 \(channel-wise\) reaches 2 \(ReLU\)"):
        fold(nn.Sequential(Linear(4, 3), Neuron("real-spike", (3,)), nn.ReLU(), Linear(3, 2)))


def test_inplace_returns_the_same_object() -> None:
    model = make_net("mpbn").eval()
    assert fold(model, inplace=True) is model
    assert leftovers(model) == []
    assert fold(model).state_dict().keys() == model.state_dict().keys()  # folding twice is a no-op


def test_top_level_fold_is_callable_after_the_package_import() -> None:
    import spikeforge
    import spikeforge.fold  # binds the subpackage to spikeforge.fold

    model = nn.Sequential(Linear(4, 3), Neuron("soft-mpr"), Linear(3, 2)).double().eval()
    folded = spikeforge.fold(model)
    assert folded[1].spec.pre_fire == "none"
    assert spikeforge.verify_fold(model, folded, torch.randn(3, 2, 4, dtype=torch.float64)) == 0.0
