"""The spikeforge inference artifact: exact round trips of every CPU-scale recipe's folded model, residual and
per-step variants, integrity checks and clear refusals."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

import spikeforge
from spikeforge.interop import (
    ArtifactError,
    GraphError,
    graph_from_module,
    load_graph,
    load_inference,
    save_inference,
    verify_artifact,
)
from spikeforge.interop import graph as g
from spikeforge.layers import Conv2d, Flatten, Linear, make_neuron

from ._models import RECIPES, folded_recipe_model, make_net, net_inputs, sample


def _spike_rates(net, x) -> dict[str, float]:
    rates: dict[str, float] = {}
    with torch.no_grad(), net.observe(lambda name, s: rates.__setitem__(name, float(s.abs().mean()))):
        torch.manual_seed(0)
        net(x)
    return rates


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipe_round_trip_is_exact(recipe: str, tmp_path) -> None:
    model, folded, shape, T = folded_recipe_model(recipe)
    path = save_inference(folded, tmp_path / "net.sfnet", input_shape=shape)
    net = load_inference(path)
    x = sample(shape, T)
    report = verify_artifact(folded, net, x)
    assert report.max_abs <= 1e-6 and report.spikes_equal, report
    # against the training model too: names map back (Joint A-SNN's export), spikes identical in float64
    train_report = verify_artifact(model, net, x, dtype=torch.float64)
    assert train_report.spikes_equal and train_report.max_rel <= 1e-6, train_report
    rates = _spike_rates(net, x)
    assert rates and any(0 < r < 1 for r in rates.values()), rates  # the comparison is not vacuous


@pytest.mark.parametrize("neuron, norm, style, kinds", [
    ({"preset": "ternary", "pre_fire": "mpbn", "mpbn_running": "per_step", "max_steps": 8}, "bn", "standard",
     {"neuron"}),
    ("lif", "bntt", "standard", {"affine"}),
    ("lif", "tebn", "ms", {"affine"}),
    ("real-spike-element", "bn", "standard", {"unshared_conv"}),
    ("lif", "bn", "sew", set()),
])
def test_residual_per_step_and_elementwise_variants(neuron, norm, style, kinds, tmp_path) -> None:
    model = make_net(neuron, style=style, norm=norm)
    folded = spikeforge.fold(model)
    graph = graph_from_module(folded, example=net_inputs())
    got = {n.op.kind for n in graph.nodes.values()}
    assert kinds <= got and "binary" in got  # the residual sums are graph nodes
    if "neuron" in kinds:
        assert any(op.per_step and op.threshold_low is not None for op in graph.neurons().values())
    net = load_inference(save_inference(graph, tmp_path / "r.sfnet"))
    report = verify_artifact(folded, net, net_inputs(9))
    assert report.max_abs <= 1e-6 and report.spikes_equal, report
    assert verify_artifact(model, net, net_inputs(9), dtype=torch.float64).spikes_equal


def test_neuron_parameters_survive_exactly(tmp_path) -> None:
    _, folded, shape, _ = folded_recipe_model("quickstart")
    graph = graph_from_module(folded, shape)
    again = load_graph(save_inference(graph, tmp_path / "q.sfnet"))
    for name, op in graph.neurons().items():
        other = again.neurons()[name]
        assert op.attributes() == other.attributes()
        assert torch.equal(op.threshold, other.threshold)
        assert op.spike == "ternary" and op.threshold_low is not None
        assert torch.equal(op.threshold_low, other.threshold_low)  # type: ignore[arg-type]


def _artifact(tmp_path):
    _, folded, shape, _ = folded_recipe_model("rmploss-fmnist")
    return save_inference(folded, tmp_path / "a.sfnet", input_shape=shape)


def test_corrupted_truncated_and_missing_artifacts_name_the_file(tmp_path) -> None:
    path = _artifact(tmp_path)
    data = bytearray(path.read_bytes())
    bad = tmp_path / "flipped.sfnet"
    data[-5] ^= 0x10  # one bit of one weight
    bad.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="flipped.sfnet.*SHA-256"):
        load_inference(bad)
    short = tmp_path / "short.sfnet"
    short.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(ArtifactError, match="short.sfnet"):
        load_inference(short)
    tiny = tmp_path / "tiny.sfnet"
    tiny.write_bytes(b"\x01\x02")
    with pytest.raises(ArtifactError, match="tiny.sfnet.*truncated"):
        load_inference(tiny)
    with pytest.raises(ArtifactError, match="nothere.sfnet.*does not exist"):
        load_inference(tmp_path / "nothere.sfnet")
    from safetensors.torch import save_file

    other = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(2)}, str(other))
    with pytest.raises(ArtifactError, match="plain.safetensors.*not a spikeforge inference artifact"):
        load_inference(other)


def test_loading_never_unpickles(tmp_path, monkeypatch) -> None:
    path = _artifact(tmp_path)

    def refuse(*_a, **_k):
        raise AssertionError("pickle used while loading an artifact")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    monkeypatch.setattr(torch, "load", refuse)
    net = load_inference(path)
    assert isinstance(net(sample((1, 8, 8), 2)), torch.Tensor)


class _Sin(nn.Module):
    def forward(self, x):
        return torch.sin(x)


class _TimeMix(nn.Module):
    def forward(self, x):
        return x.reshape(x.shape[0] * x.shape[1], -1)


def test_unknown_ops_and_unfolded_models_are_refused_naming_the_node() -> None:
    net = nn.Sequential(Conv2d(2, 3, 3, 1, 1), _Sin())
    with pytest.raises(GraphError, match="node 'sin'"):
        graph_from_module(net, (2, 6, 6))
    with pytest.raises(GraphError, match="1: no inference description for module type GELU"):
        graph_from_module(nn.Sequential(Linear(4, 4), nn.GELU()), (4,))
    with pytest.raises(GraphError, match="changes the time/batch"):
        graph_from_module(nn.Sequential(_TimeMix()), (4,))
    unfolded = nn.Sequential(Conv2d(2, 3, 3, 1, 1), make_neuron("mpbn", 3, (6, 6)), Flatten(), Linear(108, 2))
    with pytest.raises(GraphError, match="1: the neuron still has training-only parts.*fold the model first"):
        graph_from_module(unfolded.eval(), (2, 6, 6))
    with pytest.raises(ValueError, match="input_shape"):
        graph_from_module(nn.Sequential(Linear(4, 4)))


def test_graph_rejects_bad_wiring_and_unknown_kinds(tmp_path) -> None:
    with pytest.raises(GraphError, match="reads 'nope'"):
        g.Graph({"x": g.Node(g.Input((4,))), "y": g.Node(g.Unary("relu"), ["nope"])}, "x", ["y"])
    with pytest.raises(GraphError, match="reset='subtract'"):
        g.Neuron(threshold=torch.tensor(1.0), reset="subtract")
    from spikeforge.interop.artifact import graph_from_json

    with pytest.raises(ArtifactError, match="unknown operation kind 'warp'"):
        graph_from_json('{"input": "x", "outputs": ["x"], "nodes": [{"name": "x", "kind": "warp", "inputs": [], '
                        '"attrs": {}}]}', {}, "f.sfnet")


def test_input_shape_is_checked(tmp_path) -> None:
    net = load_inference(_artifact(tmp_path))
    with pytest.raises(ValueError, match=r"input dim 3 must be 8"):
        net(torch.zeros(2, 1, 1, 9, 8))
    with pytest.raises(ValueError, match=r"expects input \[T, B, 1, 8, 8\]"):
        net(torch.zeros(2, 1, 8, 8))


def test_pointnet_forward_is_described_by_graph_nodes(tmp_path) -> None:
    model, folded, shape, T = folded_recipe_model("pointnet-points")
    graph = graph_from_module(folded, shape)
    kinds = [n.op.kind for n in graph.nodes.values()]
    assert "matmul" in kinds and "transpose" in kinds and "constant" in kinds  # x_n <- x_n A with A = mlp + offset
    reductions = [n.op for n in graph.nodes.values() if isinstance(n.op, g.Reduce)]
    assert reductions and all(op.fn == "amax" and op.dims == (-1,) for op in reductions)  # max over points
    neurons = graph.neurons().values()
    assert all(op.init == "uniform" and op.init_range == 0.5 for op in neurons)  # the paper's inference membrane
    path = save_inference(graph, tmp_path / "p.sfnet")
    report = verify_artifact(model, path, sample(shape, T), dtype=torch.float64)  # a path works too
    assert report.spikes_equal and report.max_rel <= 1e-6
    assert isinstance(spikeforge.load_inference(path), nn.Module)
