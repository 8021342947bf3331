"""Recomputation (spikeforge.layers.recompute): the same step as without it, bit for bit, keeping bits only."""

from __future__ import annotations

import copy
import inspect
import pickle
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import spikeforge as sf
from spikeforge.layers import BatchNorm1d, Dropout, Flatten, Linear, recompute, recompute_plan
from spikeforge.layers.recompute import RecomputeConfig
from spikeforge.models import model_entry
from spikeforge.models.complexity import input_shape_of
from spikeforge.neurons import Neuron, observe

SMALL = {"width": 0.125, "num_points": 32, "widths": (4, 8), "hidden": (16,)}


def _small_model(name: str, **extra) -> nn.Module:
    params = inspect.signature(model_entry(name)).parameters
    opts = {k: v for k, v in SMALL.items() if k in params}
    if "input_size" in params and params["input_size"].default in ((224, 224), 224):
        opts["input_size"] = (32, 32)
    return sf.create_model(name, **opts, **extra)


def _step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int = 1):
    torch.manual_seed(seed)
    model.zero_grad(set_to_none=True)
    out = model(x)
    logits = out.logits if hasattr(out, "logits") else out
    F.cross_entropy(logits.mean(0), y).backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    return logits.detach(), grads, buffers


def _assert_same_step(a, b, exact: bool = True):
    (la, ga, ba), (lb, gb, bb) = a, b
    assert torch.equal(la, lb)
    assert ga.keys() == gb.keys() and ga
    for k in ga:
        if exact:
            assert torch.equal(ga[k], gb[k]), k
        else:
            torch.testing.assert_close(ga[k], gb[k], rtol=1e-5, atol=1e-6, msg=k)
    assert ba.keys() == bb.keys()
    for k in ba:
        assert torch.equal(ba[k], bb[k]), k


@pytest.mark.parametrize("name", sf.list_models())
def test_every_zoo_model_takes_the_same_step_bit_for_bit(name):
    torch.manual_seed(0)
    ref = _small_model(name).train()
    rc = recompute(copy.deepcopy(ref))
    shape = input_shape_of(ref, model_entry(name))
    x = torch.rand((2, 4) + tuple(shape)) * 2
    y = torch.randint(0, int(ref.num_classes), (x.shape[1],))
    _assert_same_step(_step(ref, x, y), _step(rc, x, y))
    # and a second step from the updated running statistics
    _assert_same_step(_step(ref, x, y, seed=2), _step(rc, x, y, seed=2))


def test_keys_types_and_off_again():
    ref = sf.create_model("vgg11", width=0.125)
    model = recompute(copy.deepcopy(ref))
    assert model.state_dict().keys() == ref.state_dict().keys()
    assert isinstance(model, type(ref)) and isinstance(model, nn.Sequential)
    model.load_state_dict(ref.state_dict())
    recompute(model, False)
    assert type(model) is type(ref)
    clone = pickle.loads(pickle.dumps(model))  # a model with recompute off pickles as before
    assert type(clone) is type(ref)


def test_a_recomputing_model_pickles_and_keeps_recomputing(tmp_path):
    import io

    torch.manual_seed(0)
    model = recompute(sf.create_model("convnet", num_classes=3).train(), time_chunk=None)
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    clone = torch.load(buf, weights_only=False)
    assert type(clone) is type(model) and clone._recompute == model._recompute
    x = torch.rand(2, 3, 1, 8, 8)
    y = torch.tensor([0, 1, 2])
    _assert_same_step(_step(model, x, y), _step(clone, x, y))
    recompute(clone, False)
    assert type(clone).__name__ == "SpikingConvNet"


def test_segments_hold_bits_not_activations():
    torch.manual_seed(0)
    model = sf.create_model("vgg11", width=0.125).train()
    x = torch.rand(4, 2, 3, 32, 32)

    def saved_bytes(m: nn.Module) -> tuple[int, set[torch.dtype]]:
        sizes, dtypes = [], set()

        def pack(t):
            sizes.append(t.numel() * t.element_size())
            dtypes.add(t.dtype)
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            m(x).sum()
        return sum(sizes), dtypes

    plain, _ = saved_bytes(model)
    recompute(model)
    kept, dtypes = saved_bytes(model)
    # what autograd keeps are the segments' packed inputs (and the encoded image of the first one)
    assert kept - x.numel() * 4 < plain / 50 and torch.uint8 in dtypes


def test_spike_input_is_packed_and_other_input_kept():
    from spikeforge.layers.recompute import _SavedInput

    class Ctx:
        def save_for_backward(self, *t):
            self.saved_tensors = t

    def keep(x):
        ctx = Ctx()
        return _SavedInput(ctx, x).restore(ctx), ctx.saved_tensors

    s = (torch.rand(3, 2, 5) > 0.5).float() * 0.7
    saved, tensors = keep(s)
    assert saved.packed is not None and saved.tensor is None and tensors[0].dtype == torch.uint8
    assert torch.equal(saved.steps(0, 3), s) and torch.equal(saved.steps(1, 2), s[1:2])
    t = -s + (torch.rand_like(s) > 0.5).float() * 0.7  # ternary {-a, 0, a}
    tern, _ = keep(t)
    assert tern.packed is not None and tern.packed.neg is not None
    for t0, t1 in ((0, 1), (1, 3), (2, 3)):
        assert torch.equal(tern.steps(t0, t1), t[t0:t1])
    real = torch.randn(3, 2, 5)
    kept, _ = keep(real)
    assert kept.packed is None and torch.equal(kept.steps(0, 3), real)


def test_running_statistics_update_once_per_forward():
    torch.manual_seed(0)
    model = sf.create_model("convnet", num_classes=3).train()
    rc = recompute(copy.deepcopy(model))
    x = torch.rand(2, 4, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 0])
    for m in (model, rc):
        for _ in range(2):  # two forwards, then one backward (gradient accumulation)
            F.cross_entropy(m(x).mean(0), y).backward()
    for (n, a), b in zip(model.named_buffers(), rc.buffers()):
        assert torch.equal(a, b), n
    for (n, p), q in zip(model.named_parameters(), rc.parameters()):
        assert torch.equal(p.grad, q.grad), n


def test_random_state_is_replayed():
    """Dropout masks and random initial membranes are drawn again identically in the backward."""
    torch.manual_seed(0)
    neuron = dict(init="uniform", init_range=0.5)
    model = nn.Sequential(Flatten(), Linear(64, 32), BatchNorm1d(32), Neuron(neuron, (32,)), Dropout(0.3),
                          Linear(32, 32), Neuron(neuron, (32,)), Linear(32, 4)).train()
    rc = recompute(copy.deepcopy(model))
    x = torch.rand(3, 5, 1, 8, 8)
    y = torch.tensor([0, 1, 2, 3, 0])
    _assert_same_step(_step(model, x, y), _step(rc, x, y))


def test_time_chunks_equal_the_whole_sequence():
    torch.manual_seed(0)
    model = nn.Sequential(Flatten(), Linear(64, 48), Neuron(dict(spike="ternary"), (48,)), Linear(48, 32),
                          Neuron(dict(decay=0.8, surrogate="sigmoid"), (32,)), Linear(32, 4)).train()
    x = torch.randn(10, 3, 64) * 2
    y = torch.tensor([0, 1, 3])
    ref = _step(model, x, y)
    for chunk in (1, 3, 4, 10, 64):
        rc = recompute(copy.deepcopy(model), time_chunk=chunk)
        plan = recompute_plan(rc)
        assert [p.chunked for p in plan if p.recomputed] == [True, True]
        _assert_same_step(ref, _step(rc, x, y), exact=False)


def test_time_chunks_carry_the_membrane_and_its_gradient():
    """A neuron that only spikes late (the membrane builds up over chunks) gets the same input gradient."""
    torch.manual_seed(0)
    model = nn.Sequential(Linear(2, 2, bias=False), Neuron(dict(decay=0.9), (2,)), Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.3, 0.0], [0.0, 0.2]]))
    x = torch.ones(9, 1, 2, requires_grad=True)
    g_ref = torch.autograd.grad(model(x).sum(), x)[0]
    rc = recompute(copy.deepcopy(model), time_chunk=2)
    x2 = x.detach().clone().requires_grad_(True)
    out = rc(x2)
    assert torch.equal(out.detach(), model(x).detach())
    g = torch.autograd.grad(out.sum(), x2)[0]
    torch.testing.assert_close(g, g_ref, rtol=1e-6, atol=1e-7)
    assert g_ref[:3].abs().sum() > 0  # early steps get gradient only through the carried membrane


def test_unchunkable_segments_and_eval_mode_batchnorm():
    for opts, why in ((dict(norm="tebn"), "TEBN2d in training"), (dict(neuron="mpbn"), "per-step statistics")):
        model = sf.create_model("convnet", **opts).train()
        with pytest.raises(ValueError, match=why):
            recompute(model, time_chunk=2)
        assert not type(model).__name__.startswith("Recompute")  # left as it was
    model = sf.create_model("convnet").eval()  # eval-mode BN acts on each step: chunks are exact
    recompute(model, time_chunk=2)
    assert all(p.chunked for p in recompute_plan(model) if p.recomputed)
    x = torch.rand(5, 2, 1, 8, 8)
    ref = copy.deepcopy(model)
    recompute(ref, False)
    xa, xb = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    ga = torch.autograd.grad(model(xa).sum(), xa)[0]
    gb = torch.autograd.grad(ref(xb).sum(), xb)[0]
    torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-6)


def test_autograd_grad_reaches_parameters():
    """Parameters are inputs of the recomputed node: torch.autograd.grad works, not only .backward()."""
    torch.manual_seed(0)
    model = sf.create_model("mlp", hidden=(16, 16)).train()
    rc = recompute(copy.deepcopy(model))
    x = torch.rand(3, 4, 64)
    ga = torch.autograd.grad(model(x).sum(), list(model.parameters()))
    gb = torch.autograd.grad(rc(x).sum(), list(rc.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(ga, gb))
    assert all(p.grad is None for p in rc.parameters())


def test_observed_neurons_run_the_ordinary_path():
    """RMP-Loss needs the membranes of the forward itself: observed calls are not recomputed (and it says so)."""
    torch.manual_seed(0)
    model = sf.create_model("convnet", num_classes=3).train()
    rc = recompute(copy.deepcopy(model))
    x = torch.rand(2, 4, 1, 8, 8)
    grads = []
    for m in (model, rc):
        seen = []
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with observe(m, lambda n, u, s, seen=seen: seen.append(u)):
                out = m(x)
        (out.sum() + sum((u ** 2).mean() for u in seen)).backward()  # a membrane loss, as RMP-Loss
        grads.append([p.grad.clone() for p in m.parameters()])
    assert any("observed" in str(w.message) for w in caught)
    assert all(torch.equal(a, b) for a, b in zip(*grads))


def test_no_grad_and_eval_run_plainly():
    model = recompute(sf.create_model("convnet"))
    x = torch.rand(2, 2, 1, 8, 8)
    with torch.no_grad():
        out = model(x)
    assert out.grad_fn is None
    ref = copy.deepcopy(model)
    recompute(ref, False)
    with torch.no_grad():
        assert torch.equal(out, ref(x))


def test_bad_arguments():
    with pytest.raises(ValueError, match="time_chunk must be a positive"):
        RecomputeConfig(0)
    with pytest.raises(ValueError, match="no nn.Sequential holding spiking neurons"):
        recompute(nn.Linear(2, 2))
    recompute(nn.Linear(2, 2), False)  # turning off where nothing is on is fine


@pytest.mark.parametrize("neuron", [
    "lif", "plif", "ternary", "real-spike", "mpbn", "inflor", dict(spike="ternary", amplitude="channel"),
    dict(pre_fire="mpbn", mpbn="element"), dict(amplitude="element"), dict(init="uniform", init_range=0.5),
])
@pytest.mark.parametrize("norm", ["bn", "tdbn", "tebn", "bntt"])
def test_every_neuron_and_norm_takes_the_same_step(neuron, norm):
    torch.manual_seed(0)
    model = sf.create_model("convnet", num_classes=3, widths=(4, 6), neuron=neuron, norm=norm).train()
    rc = recompute(copy.deepcopy(model))
    x = torch.rand(3, 4, 1, 8, 8) * 2
    y = torch.tensor([0, 1, 2, 0])
    for seed in (1, 2):
        _assert_same_step(_step(model, x, y, seed), _step(rc, x, y, seed))


def test_forward_hooks_are_not_run_twice_unless_asked():
    from spikeforge.layers import hooks_rerun, recomputing

    torch.manual_seed(0)
    model = recompute(sf.create_model("convnet", num_classes=3).train())
    x = torch.rand(2, 4, 1, 8, 8)
    calls: list[bool] = []
    neuron = next(m for m in model.modules() if isinstance(m, Neuron))
    handle = neuron.register_forward_hook(lambda m, i, o: calls.append(recomputing()))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model(x).sum().backward()
    assert calls == [False]  # the hooked segment ran the ordinary path
    assert any("forward hooks" in str(w.message) for w in caught)
    calls.clear()
    with hooks_rerun():
        model(x).sum().backward()
    assert calls == [False, True]  # recomputed: the hook ran again, inside the backward
    handle.remove()


@pytest.mark.parametrize("name,norm", [("vgg11", "bn"), ("convnet", "bn"), ("convnet", "tdbn"), ("mlp", None)])
@pytest.mark.parametrize("chunk", [1, 3])
def test_time_chunks_through_training_batchnorm(name, norm, chunk):
    """A training-mode BatchNorm pools its statistics over all chunks (a statistics pass, then normalised
    chunks); outputs, running statistics and gradients equal the whole sequence's to float rounding."""
    torch.manual_seed(0)
    opts = {"norm": norm} if norm else {}
    if name == "vgg11":
        opts["width"] = 0.125
    model = sf.create_model(name, num_classes=4, **opts).train()
    shape = input_shape_of(model, model_entry(name))
    x = torch.rand((5, 3) + tuple(shape)) * 2
    y = torch.tensor([0, 1, 3])
    rc = recompute(copy.deepcopy(model), time_chunk=chunk)
    assert all(p.chunked for p in recompute_plan(rc) if p.recomputed)
    for seed in (1, 2):
        (la, ga, ba), (lb, gb, bb) = _step(model, x, y, seed), _step(rc, x, y, seed)
        torch.testing.assert_close(la, lb, rtol=1e-5, atol=1e-5)
        for k in ga:
            torch.testing.assert_close(ga[k], gb[k], rtol=1e-4, atol=1e-5, msg=k)
        for k in ba:
            torch.testing.assert_close(ba[k].float(), bb[k].float(), rtol=1e-5, atol=1e-6, msg=k)


def test_batchnorm_chunk_statistics_are_the_pooled_ones():
    from spikeforge.layers.recompute import _PooledStats

    torch.manual_seed(0)
    c = torch.randn(7, 4, 3, 5, 5) * 3 + 1
    stats = _PooledStats()
    for t0 in range(0, 7, 3):
        stats.add(c[t0:t0 + 3])
    mean, var = stats.result()
    ref = c.double().transpose(0, 2).reshape(3, -1)
    torch.testing.assert_close(mean.double(), ref.mean(1), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(var.double(), ref.var(1, correction=0), rtol=1e-6, atol=1e-6)
