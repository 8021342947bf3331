"""NIR export/import: the dt convention, exact round trips, lossy mode, and cross-library runs (snnTorch, Norse)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

import spikeforge
from spikeforge.interop import GraphError, InferenceNetwork, from_nir, graph_from_module, to_nir
from spikeforge.layers import Conv2d, MaxPool2d, make_neuron, make_norm

from ._models import folded_recipe_model, make_net, net_inputs, perturb, sample

nir = pytest.importorskip("nir", reason="NIR export needs the optional 'nir' package")

T = 6
LIF = {"preset": "lif", "threshold": 0.3}


def lif_conv_net() -> nn.Module:
    """conv-BN-LIF -> strided conv-LIF: a plain LIF conv net every NIR reader maps (no pooling: Norse has no
    AvgPool2d import)."""
    torch.manual_seed(0)
    net = nn.Sequential(Conv2d(2, 4, 3, 1, 1), make_norm("bn", 4), make_neuron(LIF, 4),
                        Conv2d(4, 5, 3, 2, 1), make_neuron(LIF, 5))
    perturb(net)
    return spikeforge.fold(net.eval())


def lif_inputs() -> torch.Tensor:
    return torch.randn(T, 3, 2, 8, 8, generator=torch.Generator().manual_seed(4)) * 2


def _reference(folded: nn.Module) -> tuple[InferenceNetwork, torch.Tensor]:
    net = InferenceNetwork(graph_from_module(folded, (2, 8, 8)))
    out = net(lif_inputs())
    assert 0.01 < float(out.mean()) < 0.5  # spikes happen, not everywhere
    return net, out


def test_dt_convention_closed_form() -> None:
    folded = lif_conv_net()
    dt = 1e-3
    ng = to_nir(folded, dt=dt, input_shape=(2, 8, 8))
    lif = ng.nodes["2"]
    assert isinstance(lif, nir.LIF)
    d = 0.25
    np.testing.assert_allclose(lif.tau, dt / (1 - d), rtol=1e-6)
    np.testing.assert_allclose(lif.r, 1 / (1 - d), rtol=1e-6)  # discrete input gain r·dt/τ = 1
    np.testing.assert_allclose(lif.r * dt / lif.tau, 1.0, rtol=1e-6)
    assert np.all(lif.v_leak == 0) and np.all(lif.v_reset == 0)
    # NIR fires on v > θ', spikeforge on h ≥ θ: θ' is the float32 just below θ
    theta = np.float32(0.3)
    assert np.all(lif.v_threshold == np.nextafter(theta, np.float32(-1)))
    assert lif.v_threshold.shape == (4, 8, 8)
    unit = to_nir(folded, dt=dt, unit_r=True, input_shape=(2, 8, 8)).nodes["2"]
    assert np.all(unit.r == 1)
    np.testing.assert_allclose(unit.v_threshold, 0.3 * (1 - d), rtol=1e-6)
    # IF: dv/dt = R I with R = 1/dt
    torch.manual_seed(0)
    if_net = spikeforge.fold(nn.Sequential(Conv2d(2, 3, 3, 1, 1), make_neuron("if", 3)).eval())
    node = to_nir(if_net, dt=dt, input_shape=(2, 8, 8)).nodes["1"]
    assert isinstance(node, nir.IF)
    np.testing.assert_allclose(node.r, 1 / dt)


def test_round_trip_exact_through_metadata_and_semantics(tmp_path) -> None:
    folded = lif_conv_net()
    net, ref = _reference(folded)
    ng = to_nir(folded, input_shape=(2, 8, 8))
    assert torch.equal(from_nir(ng)(lif_inputs()), ref)
    # without the spikeforge metadata: the NIR nodes alone, through the dt convention
    assert torch.equal(from_nir(ng, exact=False)(lif_inputs()), ref)
    path = tmp_path / "net.nir"
    nir.write(str(path), ng)
    assert torch.equal(from_nir(path)(lif_inputs()), ref)
    assert torch.equal(from_nir(nir.read(str(path)), exact=False)(lif_inputs()), ref)


@pytest.mark.parametrize("style", ["standard", "sew"])
def test_residual_sums_become_nir_junctions(style: str) -> None:
    folded = spikeforge.fold(make_net("lif", style=style))
    ng = to_nir(folded, example=net_inputs())
    assert any(isinstance(n, nir.Scale) for n in ng.nodes.values())
    x = net_inputs(2)
    ref = InferenceNetwork(graph_from_module(folded, example=net_inputs()))(x)
    assert torch.equal(from_nir(ng, exact=False)(x), ref)
    assert torch.equal(from_nir(ng)(x), ref)


def test_inexpressible_properties_error_by_default_lossy_warns_each(tmp_path) -> None:
    _, folded, shape, steps = folded_recipe_model("quickstart")  # ternary spikes, MPBN thresholds
    with pytest.raises(GraphError, match=r"(?s)2: ternary spikes.*6: ternary spikes.*lossy=True"):
        to_nir(folded, input_shape=shape)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ng = to_nir(folded, input_shape=shape, lossy=True)
    msgs = [str(w.message) for w in caught]
    assert sum("ternary spikes" in m for m in msgs) == 2
    # the exact network still comes back from the metadata, through a file too
    path = tmp_path / "q.nir"
    nir.write(str(path), ng)
    x = sample(shape, steps)
    ref = InferenceNetwork(graph_from_module(folded, shape))(x)
    assert torch.equal(from_nir(path)(x), ref)
    _, soft, shape2, _ = folded_recipe_model("softreset-mpr-fmnist")
    with pytest.raises(GraphError, match="soft reset"):
        to_nir(soft, input_shape=shape2)


def test_unsupported_nodes_are_named() -> None:
    torch.manual_seed(0)
    pooled = nn.Sequential(Conv2d(2, 3, 3, 1, 1), make_neuron("lif", 3), MaxPool2d(2)).eval()
    with pytest.raises(GraphError, match="2: NIR has no max pooling"):
        to_nir(pooled, input_shape=(2, 8, 8))
    _, pointnet, shape, _ = folded_recipe_model("pointnet-points")
    with pytest.raises(GraphError, match="random initial membrane|NIR has no node"):
        to_nir(pointnet, input_shape=shape)
    g = nir.NIRGraph(nodes={"in": nir.Input(np.array([3])), "d": nir.Delay(np.ones(3)),
                            "out": nir.Output(np.array([3]))}, edges=[("in", "d"), ("d", "out")])
    with pytest.raises(GraphError, match="'d': Delay has no spikeforge equivalent"):
        from_nir(g)


def _run_stepwise(module: nn.Module, x: torch.Tensor, stateful: bool) -> torch.Tensor:
    outs, state = [], None
    with torch.no_grad():
        for t in range(x.shape[0]):
            if stateful:
                o, state = module(x[t], state)
            else:
                o = module(x[t])
            outs.append(o[0] if isinstance(o, tuple) else o)
    return torch.stack(outs)


def test_snntorch_runs_our_nir_with_identical_spikes() -> None:
    pytest.importorskip("snntorch", reason="cross-library test needs snntorch")
    from snntorch.import_nir import import_from_nir

    folded = lif_conv_net()
    _, ref = _reference(folded)
    module = import_from_nir(to_nir(folded, input_shape=(2, 8, 8)))  # snnTorch simulates with dt = 1e-4
    assert torch.equal(_run_stepwise(module, lif_inputs(), stateful=False), ref)


def test_norse_runs_our_nir_with_identical_spikes() -> None:
    norse_torch = pytest.importorskip("norse.torch", reason="cross-library test needs norse")
    folded = lif_conv_net()
    _, ref = _reference(folded)
    # Norse ignores r (its LIF input gain is dt/τ): unit_r writes the equivalent r = 1 network
    module = norse_torch.from_nir(to_nir(folded, input_shape=(2, 8, 8), unit_r=True), dt=1e-4)
    assert torch.equal(_run_stepwise(module, lif_inputs(), stateful=True), ref)


def test_snntorch_nir_imports_with_identical_spikes() -> None:
    snn = pytest.importorskip("snntorch", reason="cross-library test needs snntorch")
    import snntorch.utils
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(1)
    # NIR's LIF resets immediately to v_reset: snnTorch's reset_mechanism='zero', reset_delay=False (its exporter
    # writes v_reset = 0 whatever the mechanism); per-neuron parameters keep snnTorch's export type-consistent
    model = nn.Sequential(
        nn.Linear(16, 12),
        snn.Leaky(beta=torch.full((12,), 0.8), threshold=torch.full((12,), 0.5), init_hidden=True,
                  reset_mechanism="zero", reset_delay=False),
        nn.Linear(12, 5),
        snn.Leaky(beta=torch.full((5,), 0.6), threshold=torch.full((5,), 0.4), init_hidden=True, output=True,
                  reset_mechanism="zero", reset_delay=False),
    )
    graph = export_to_nir(model, torch.randn(16))
    ours = from_nir(graph)
    x = torch.randn(T, 3, 16, generator=torch.Generator().manual_seed(2)) * 2
    snntorch.utils.reset(model)
    expected = _run_stepwise(model, x, stateful=False)
    got = ours(x)
    assert 0.05 < float(expected.mean()) < 0.9
    assert torch.equal(got, expected)
