"""Joint A-SNN dual-mode ResNet-18: SVD factorisation, shared U/V, private parts, exits, export."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge import layers
from spikeforge.models import create_model, list_models
from spikeforge.models.joint_asnn import DualBatchNorm2d, DualConv2d, DualLinear, JointASNN, StepBatchNorm2d
from spikeforge.neurons import Neuron, observe, spiking_neurons


def _tiny(**kw) -> JointASNN:
    torch.manual_seed(0)
    return create_model("joint_asnn_resnet18", num_classes=5, in_channels=1, width=1 / 16, **kw)


@pytest.mark.parametrize(("cin", "cout", "k"), [(3, 8, 3), (8, 4, 3), (6, 6, 1), (5, 7, 2)])
def test_svd_factorisation_reproduces_the_weight(cin: int, cout: int, k: int) -> None:
    conv = DualConv2d(cin, cout, k)
    w = torch.randn(cout, cin, k, k)
    conv.factorise_(w)
    r = min(cin, cout)
    assert conv.U.shape == (k, k, cout, r) and conv.V.shape == (k, k, r, cin)
    assert conv.sigma_ann.shape == conv.sigma_snn.shape == (k, k, r)
    for mode in ("ann", "snn"):
        assert (conv.weight_for(mode) - w).abs().max() <= 1e-5
    # singular values per tap: sigma_ij are those of the (Co, Ci) matrix of tap (i, j)
    torch.testing.assert_close(conv.sigma_ann[0, 0], torch.linalg.svdvals(w[:, :, 0, 0]))


def test_model_convs_start_as_their_kaiming_weights_and_branches_agree() -> None:
    model = _tiny()
    convs = [m for m in model.modules() if isinstance(m, DualConv2d)]
    assert len(convs) == 20 + 9  # 17 trunk 3x3 convs + 3 shortcuts = 20, 3 per exit
    for conv in convs:
        assert torch.equal(conv.sigma_ann, conv.sigma_snn)
        assert conv.sigma_ann.data_ptr() != conv.sigma_snn.data_ptr()
        torch.testing.assert_close(conv.weight_for("ann"), conv.weight_for("snn"))


def test_u_and_v_are_shared_parameters_and_sigmas_are_private() -> None:
    model = _tiny()
    conv = model.layer2[0].conv1
    assert [n for n, _ in conv.named_parameters()] == ["U", "V", "sigma_ann", "sigma_snn"]
    # both branch weights are functions of the very same U / V tensors (same storage)
    for mode in ("ann", "snn"):
        w = conv.weight_for(mode)
        gU, gV = torch.autograd.grad(w.sum(), (conv.U, conv.V))
        assert gU.abs().sum() > 0 and gV.abs().sum() > 0
    ptrs = {p.data_ptr() for p in model.parameters()}
    assert len(ptrs) == len(list(model.parameters()))  # no parameter is duplicated
    x = torch.randn(2, 3, 1, 8, 8)
    # an ANN-only loss trains U, V, sigma_ann, ANN BN and weight_ann — never SNN-private parameters
    model.zero_grad()
    model.forward_branch(x.mean(0), "ann").logits[0].sum().backward()
    assert conv.U.grad is not None and conv.sigma_ann.grad is not None and conv.sigma_snn.grad is None
    assert model.fc.weight_snn.grad is None and model.layer2[0].bn1.bn_snn.weight.grad is None
    model.zero_grad(set_to_none=True)
    model.forward_branch(x, "snn").logits[0].sum().backward()
    assert conv.U.grad is not None and conv.sigma_snn.grad is not None and conv.sigma_ann.grad is None
    assert model.fc.weight_ann.grad is None and model.layer2[0].bn1.bn_ann.weight.grad is None
    assert isinstance(model.fc, DualLinear) and isinstance(model.bn1, DualBatchNorm2d)


def test_outputs_exits_and_modes() -> None:
    model = _tiny()
    assert "joint_asnn_resnet18" in list_models()
    x = torch.randn(2, 3, 1, 16, 16)
    out = model.forward_joint(x)
    assert [tuple(z.shape) for z in out.ann.logits] == [(3, 5)] * 4
    assert [tuple(z.shape) for z in out.snn.logits] == [(2, 3, 5)] * 4
    assert [tuple(f.shape) for f in out.snn.features] == [(2, 3, 32)] * 4
    model.eval()
    torch.testing.assert_close(model(x), model.forward_branch(x, "snn").logits[0])
    # the exit convs run k x k / stride k with k = 8, 4, 2 -> 2x2 maps at a 16x16 input
    assert [e.body[3].kernel_size for e in model.exits] == [8, 4, 2]
    # LIF defaults of the paper: decay 0.25, V_th 0.5, hard reset, rectangular surrogate
    n = next(m for _, m in spiking_neurons(model))
    assert n.config.decay == 0.25 and n.config.threshold == 0.5 and n.config.reset == "hard"
    assert n.spec.surrogate.name == "rectangular"
    with pytest.raises(ValueError, match=r"ANN branch expects \[B, C, H, W\]"):
        model.forward_branch(x, "ann")
    with pytest.raises(ValueError, match="mode must be one of"):
        model.forward_branch(x, "hybrid")


def _run_counting_spikes(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, float]:
    total: list[float] = []
    with observe(model, lambda _n, _fi, s: total.append(float(s.detach().abs().sum()))):
        out = model(x)
    return out, sum(total)


def test_export_equals_the_snn_branch() -> None:
    model = _tiny()
    x = torch.randn(3, 4, 1, 8, 8) * 2
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(2):  # move sigma_snn away from sigma_ann and fill BN running statistics
        out = model.forward_joint(x)
        loss = sum(z.sum(0).logsumexp(-1).mean() for z in out.snn.logits) + out.ann.logits[0].pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    conv = model.layer1[0].conv1
    assert not torch.allclose(conv.sigma_ann, conv.sigma_snn)
    exported = model.export_snn()
    # plain library layers only, no ANN parameters, no exits
    assert isinstance(exported, nn.Sequential)
    kinds = {type(m) for m in exported.modules()} - {nn.Sequential, nn.Identity}
    assert kinds <= {layers.Conv2d, StepBatchNorm2d, Neuron, layers.BasicBlock, layers.AdaptiveAvgPool2d,
                     layers.Flatten, layers.Linear}
    keys = list(exported.state_dict())
    assert not any("ann" in k or "exit" in k or "sigma" in k for k in keys)
    n_conv = sum(m.weight.numel() for m in exported.modules() if isinstance(m, layers.Conv2d))
    n_dual = sum(c.out_channels * c.in_channels * c.kernel_size ** 2
                 for name, c in model.named_modules() if isinstance(c, DualConv2d) and not name.startswith("exits"))
    assert n_conv == n_dual
    torch.testing.assert_close(exported[0].weight, model.conv1.weight_for("snn"))
    for mode in ("train", "eval"):
        model.train(mode == "train")
        exported.train(mode == "train")
        with torch.no_grad():
            ref, spikes = _run_counting_spikes(model, x)
            got = exported(x)
        assert spikes > 0
        assert (got - ref).abs().max() <= 1e-6, mode


def test_export_keeps_neuron_options_and_learned_neuron_state() -> None:
    model = _tiny(neuron={"preset": "plif"})
    model.sn1.sn.decay_logit.data.fill_(0.3)
    exported = model.export_snn()
    assert exported[2].config.learn_decay and float(exported[2].decay_logit.detach()) == pytest.approx(0.3)
    model.eval()
    exported.eval()
    x = torch.randn(2, 2, 1, 8, 8)
    with torch.no_grad():
        assert (exported(x) - model(x)).abs().max() <= 1e-6


def test_fold_accepts_the_export() -> None:
    fold_pkg = pytest.importorskip("spikeforge.fold")
    model = _tiny()
    model.train()
    x = torch.randn(2, 4, 1, 8, 8) * 2
    with torch.no_grad():
        model(x)  # fill BN running statistics
    model.eval()
    exported = model.export_snn().eval()
    folded = fold_pkg.fold(exported)
    report = fold_pkg.verify_fold(exported, folded, x)
    assert report.spikes_equal and report.spike_values_ok, report
    assert report.ok(1e-5), report
    assert not any(isinstance(m, layers.BatchNorm2d) for m in folded.modules())  # BN merged into the convs


@pytest.mark.parametrize("neuron", ["lif", "ternary", "real-spike", "mpbn"])
def test_fold_joint_model_is_its_folded_snn_export(neuron) -> None:
    """``spikeforge.fold`` accepts the dual-mode model itself; verify_fold matches every neuron by name."""
    import spikeforge

    torch.manual_seed(0)
    model = spikeforge.create_model("joint_asnn_resnet18", num_classes=5, width=1 / 16, neuron=neuron,
                                    input_size=(8, 8))
    x = torch.rand(2, 4, 3, 8, 8)
    model.train()
    model(x)  # non-trivial BN statistics
    model.eval()
    folded = spikeforge.fold(model)
    assert not any(isinstance(m, (DualConv2d, DualBatchNorm2d, DualLinear)) for m in folded.modules())
    report = spikeforge.verify_fold(model, folded, x)
    assert report.ok(1e-5), report
    assert len(report.layer_size) == 1 + 2 * 8  # stem + two neurons per block, matched by name


def test_bn_weights_start_at_one_in_both_branches() -> None:
    # official ASBatchNorm2d: two plain BNs, weight 1, bias 0 (methods.md §0; not tdBN's 0.5)
    model = _tiny()
    bns = [m for m in model.modules() if isinstance(m, DualBatchNorm2d)]
    assert bns
    for bn in bns:
        for branch in (bn.bn_ann, bn.bn_snn):
            assert torch.equal(branch.weight, torch.ones_like(branch.weight))
            assert torch.equal(branch.bias, torch.zeros_like(branch.bias))


def test_snn_bn_uses_per_step_batch_statistics_and_one_running_estimate() -> None:
    torch.manual_seed(1)
    bn = DualBatchNorm2d(3)
    assert isinstance(bn.bn_snn, StepBatchNorm2d)
    with torch.no_grad():
        bn.bn_snn.weight.copy_(torch.tensor([1.0, 2.0, 0.5]))
        bn.bn_snn.bias.copy_(torch.tensor([0.0, -1.0, 0.25]))
    T, B = 3, 4
    # each step has its own scale and offset, so pooled statistics would differ from per-step ones
    x = torch.randn(T, B, 3, 2, 2) * torch.tensor([1.0, 3.0, 0.2]).view(1, 1, 3, 1, 1) + \
        torch.arange(T, dtype=torch.float32).view(T, 1, 1, 1, 1) * 2.0
    bn.train()
    y = bn(x)
    w, b = bn.bn_snn.weight.detach().view(1, 3, 1, 1), bn.bn_snn.bias.detach().view(1, 3, 1, 1)
    run_mean, run_var = torch.zeros(3), torch.ones(3)
    for t in range(T):
        xt = x[t]
        mean = xt.mean(dim=(0, 2, 3))
        var = ((xt - mean.view(1, 3, 1, 1)) ** 2).mean(dim=(0, 2, 3))  # biased, for normalising
        n = xt.numel() / 3
        expected = (xt - mean.view(1, 3, 1, 1)) / torch.sqrt(var.view(1, 3, 1, 1) + 1e-5) * w + b
        torch.testing.assert_close(y[t], expected, rtol=1e-5, atol=1e-5)
        run_mean = 0.9 * run_mean + 0.1 * mean
        run_var = 0.9 * run_var + 0.1 * var * n / (n - 1)  # unbiased in the running estimate
    torch.testing.assert_close(bn.bn_snn.running_mean, run_mean)
    torch.testing.assert_close(bn.bn_snn.running_var, run_var)
    # pooled statistics over T·B would give a different output (the test can tell the two apart)
    pooled = (x - x.mean(dim=(0, 1, 3, 4), keepdim=True)) / torch.sqrt(
        x.var(dim=(0, 1, 3, 4), unbiased=False, keepdim=True) + 1e-5)
    assert (pooled * w + b - y).abs().max() > 0.1
    # eval: every step uses the one running estimate
    bn.eval()
    expected = (x - run_mean.view(1, 1, 3, 1, 1)) / torch.sqrt(run_var.view(1, 1, 3, 1, 1) + 1e-5) * \
        w.unsqueeze(0) + b.unsqueeze(0)
    torch.testing.assert_close(bn(x), expected, rtol=1e-5, atol=1e-5)


def test_snn_bn_shared_option_and_bad_value() -> None:
    bn = DualBatchNorm2d(2, snn_bn="shared")
    assert isinstance(bn.bn_snn, layers.BatchNorm2d)
    with pytest.raises(ValueError, match="snn_bn"):
        DualBatchNorm2d(2, snn_bn="pooled")
    model = _tiny(snn_bn="shared")
    assert all(isinstance(m.bn_snn, layers.BatchNorm2d) for m in model.modules() if isinstance(m, DualBatchNorm2d))
