"""The neuron kernel against an independent element-by-element loop, and fused == reference."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from spikeforge.functional import (
    NeuronSpec,
    NeuronState,
    list_surrogates,
    multistep,
    reference_multistep,
    single_step,
    surrogate,
)


def numpy_loop(x, decay, thr, reset, v_reset=0.0, soft_amount=None, ternary=False, decay_input=False, v0=None):
    """Plain per-element loop written from the equations, independent of the library."""
    x = np.asarray(x, dtype=np.float64)
    T = x.shape[0]
    thr = np.broadcast_to(np.asarray(thr, dtype=np.float64), x.shape[1:])
    v = np.zeros(x.shape[1:]) if v0 is None else np.array(v0, dtype=np.float64)
    out = np.zeros_like(x)
    for t in range(T):
        for idx in np.ndindex(*x.shape[1:]):
            gain = (1 - decay) if decay_input else 1.0
            h = decay * v[idx] + gain * x[t][idx]
            th = thr[idx]
            if ternary:
                s = 1.0 if h >= th else (-1.0 if h <= -th else 0.0)
            else:
                s = 1.0 if h >= th else 0.0
            if reset == "hard":
                v[idx] = v_reset if s != 0 else h
            elif reset == "soft":
                v[idx] = h - (th if soft_amount is None else soft_amount) * s
            else:
                v[idx] = h
            out[t][idx] = s
    return out, v


CASES = list(itertools.product(["hard", "soft", "none"], [False, True], [False, True]))


@pytest.mark.parametrize("reset,ternary,decay_input", CASES)
@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_matches_closed_form_loop(reset, ternary, decay_input, backend):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(7, 3, 5, generator=g, dtype=torch.float64)
    v0 = torch.rand(3, 5, generator=g, dtype=torch.float64) * 0.4
    spec = NeuronSpec(reset=reset, spike="ternary" if ternary else "binary", decay_input=decay_input)
    s, state, _ = multistep(x, spec, decay=0.6, threshold=0.5, v0=v0, backend=backend)
    ref_s, ref_v = numpy_loop(x.numpy(), 0.6, 0.5, reset, ternary=ternary, decay_input=decay_input, v0=v0.numpy())
    np.testing.assert_array_equal(s.numpy(), ref_s)
    np.testing.assert_allclose(state.v.numpy(), ref_v, rtol=0, atol=1e-12)


@pytest.mark.parametrize("backend", ["fused", "reference"])
def test_hard_reset_to_value_and_soft_by_constant(backend):
    x = torch.rand(6, 4, 3, dtype=torch.float64) * 1.5
    s, st, _ = multistep(x, NeuronSpec(reset="hard", v_reset=-0.2), decay=0.9, threshold=0.5, backend=backend)
    rs, rv = numpy_loop(x.numpy(), 0.9, 0.5, "hard", v_reset=-0.2)
    np.testing.assert_array_equal(s.numpy(), rs)
    np.testing.assert_allclose(st.v.numpy(), rv, atol=1e-12)
    s, st, _ = multistep(x, NeuronSpec(reset="soft", soft_reset_amount=1.0), decay=1.0, threshold=0.5,
                         backend=backend)
    rs, rv = numpy_loop(x.numpy(), 1.0, 0.5, "soft", soft_amount=1.0)
    np.testing.assert_array_equal(s.numpy(), rs)
    np.testing.assert_allclose(st.v.numpy(), rv, atol=1e-12)


def test_inflor_code_example_leaves_negative_residual():
    # official InfLoR code: fires at 0.5, subtracts 1.0 -> a neuron firing at 0.6 is left at -0.4
    spec = NeuronSpec(reset="soft", soft_reset_amount=1.0)
    s, st, _ = multistep(torch.tensor([[0.6]]), spec, decay=1.0, threshold=0.5)
    assert s.item() == 1.0 and st.v.item() == pytest.approx(-0.4)


@pytest.mark.parametrize("shape", ["scalar", "channel", "element"])
def test_threshold_broadcasting(shape):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(5, 2, 3, 4, 4, generator=g, dtype=torch.float64)
    thr = {"scalar": torch.tensor(0.4, dtype=torch.float64),
           "channel": torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64).view(3, 1, 1),
           "element": torch.rand(3, 4, 4, generator=g, dtype=torch.float64) + 0.1}[shape]
    for backend in ["fused", "reference"]:
        s, st, _ = multistep(x, NeuronSpec(), decay=0.25, threshold=thr, backend=backend)
        rs, rv = numpy_loop(x.numpy(), 0.25, thr.expand(3, 4, 4).numpy(), "hard")
        np.testing.assert_array_equal(s.numpy(), rs)
        np.testing.assert_allclose(st.v.numpy(), rv, atol=1e-12)


def test_time_varying_threshold():
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    thr = torch.tensor([0.1, 0.3, 0.6, 1.2], dtype=torch.float64).view(4, 1, 1)
    s, _, _ = multistep(x, NeuronSpec(reset="none"), decay=0.0, threshold=thr)
    expected = (x >= thr).double()  # decay 0 and no reset: each step fires on its own input
    assert torch.equal(s, expected)


def _grads(fn, x, extra):
    s, st, r = fn()
    g = torch.Generator().manual_seed(3)
    w = torch.randn(s.shape, generator=g, dtype=s.dtype)
    wv = torch.randn(st.v.shape, generator=g, dtype=s.dtype)
    loss = (s * w).sum() + (st.v * wv).sum()
    return s, torch.autograd.grad(loss, [x, *extra])


SPEC_CASES = [
    dict(spike=sp, reset=rs, pre_fire=pf, detach_reset=dr)
    for sp, rs, pf, dr in itertools.product(["binary", "ternary"], ["hard", "soft", "none"], ["none", "mpr"],
                                            [False, True])
    if not (sp == "ternary" and pf == "mpr")
]


@pytest.mark.parametrize("sname", list_surrogates())
@pytest.mark.parametrize("kw", SPEC_CASES, ids=lambda k: "-".join(str(v) for v in k.values()))
def test_fused_equals_reference(sname, kw):
    """Spikes exactly, gradients to 1e-6 (x, initial membrane, learnable decay and threshold).

    float64 isolates the algorithm from float32 summation order in the reduced decay/threshold gradients.
    """
    g = torch.Generator().manual_seed(4)
    spec = NeuronSpec(surrogate=surrogate(sname), **kw)
    f64 = torch.float64
    x = (torch.randn(6, 3, 4, 5, generator=g, dtype=f64) * 0.8 + 0.3).requires_grad_()
    v0 = (torch.rand(3, 4, 5, generator=g, dtype=f64) * 0.3).requires_grad_()
    decay = torch.tensor([0.2, 0.4, 0.6, 0.9], dtype=f64).view(4, 1).requires_grad_()
    thr = torch.full((4, 1), 0.5, dtype=f64).requires_grad_()
    s1, g1 = _grads(lambda: reference_multistep(x, spec, decay=decay, threshold=thr, v0=v0), x, [decay, thr, v0])
    s2, g2 = _grads(lambda: multistep(x, spec, decay=decay, threshold=thr, v0=v0, backend="fused"), x,
                    [decay, thr, v0])
    assert torch.equal(s1, s2)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


@pytest.mark.parametrize("sname", list_surrogates())
def test_fused_equals_reference_float32(sname):
    g = torch.Generator().manual_seed(5)
    spec = NeuronSpec(surrogate=surrogate(sname), spike="ternary", reset="soft")
    x = (torch.randn(8, 4, 16, generator=g) * 0.8).requires_grad_()
    s1, g1 = _grads(lambda: reference_multistep(x, spec, decay=0.25, threshold=0.5), x, [])
    s2, g2 = _grads(lambda: multistep(x, spec, decay=0.25, threshold=0.5, backend="fused"), x, [])
    assert torch.equal(s1, s2)
    torch.testing.assert_close(g1[0], g2[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("sname", list_surrogates())
@pytest.mark.parametrize("detach", [False, True])
def test_fused_fast_branch_equals_reference(sname, detach):
    """The specialised branch (binary, hard reset to 0, only x needs grad)."""
    spec = NeuronSpec(surrogate=surrogate(sname), detach_reset=detach)
    x = torch.randn(8, 4, 6, dtype=torch.float64, requires_grad=True)
    s1, g1 = _grads(lambda: reference_multistep(x, spec, decay=0.25, threshold=0.5), x, [])
    s2, g2 = _grads(lambda: multistep(x, spec, decay=0.25, threshold=0.5, backend="fused"), x, [])
    assert torch.equal(s1, s2)
    torch.testing.assert_close(g1[0], g2[0], rtol=0, atol=1e-12)


def test_fire_input_gradient_on_fused_path():
    spec = NeuronSpec(pre_fire="mpr", reset="soft")
    x = torch.randn(5, 3, 4, dtype=torch.float64, requires_grad=True)
    s1, _, r1 = reference_multistep(x, spec, decay=0.3, threshold=0.5, return_fire_input=True)
    s2, _, r2 = multistep(x, spec, decay=0.3, threshold=0.5, return_fire_input=True)
    torch.testing.assert_close(r1, r2)
    w = torch.randn_like(r1)
    g1 = torch.autograd.grad((r1 * w).sum() + s1.sum(), x)[0]
    g2 = torch.autograd.grad((r2 * w).sum() + s2.sum(), x)[0]
    torch.testing.assert_close(g1, g2, rtol=0, atol=1e-10)


def test_state_continues_a_sequence():
    """Two halves with the state carried equal one whole run; single steps equal too."""
    x = torch.randn(6, 2, 3)
    spec = NeuronSpec(reset="soft")
    whole, st, _ = multistep(x, spec, decay=0.5, threshold=0.5)
    a, sa, _ = multistep(x[:3], spec, decay=0.5, threshold=0.5)
    b, sb, _ = multistep(x[3:], spec, decay=0.5, threshold=0.5, v0=sa.v)
    assert torch.equal(whole, torch.cat([a, b]))
    torch.testing.assert_close(st.v, sb.v)
    state: NeuronState | None = None
    outs = []
    for t in range(6):
        o, state = single_step(x[t], state, spec, decay=0.5, threshold=0.5)
        outs.append(o)
    assert torch.equal(torch.stack(outs), whole)


def test_backend_errors():
    x = torch.randn(2, 1, 3)
    with pytest.raises(ValueError, match="callable pre_fire"):
        multistep(x, NeuronSpec(), decay=0.5, threshold=0.5, pre_fire=lambda h, t: h, backend="fused")
    with pytest.raises(ValueError, match="backend"):
        multistep(x, NeuronSpec(), decay=0.5, threshold=0.5, backend="cuda-magic")  # type: ignore[arg-type]


@pytest.mark.parametrize("kw,msg", [
    (dict(reset="reboot"), "reset"),
    (dict(spike="quaternary"), "spike"),
    (dict(spike="ternary", pre_fire="mpr"), "binary spikes only"),
])
def test_spec_validation(kw, msg):
    with pytest.raises(ValueError, match=msg):
        NeuronSpec(**kw)


def test_asymmetric_ternary_thresholds():
    x = torch.tensor([[0.6], [-0.3], [0.05], [-0.15], [0.35]], dtype=torch.float64)
    spec = NeuronSpec(spike="ternary", reset="none")
    s, _, _ = multistep(x, spec, decay=0.0, threshold=0.4, threshold_low=-0.1)
    assert s.flatten().tolist() == [1.0, -1.0, 0.0, -1.0, 0.0]
    # with threshold_low = -threshold it equals the symmetric neuron, values and gradients
    xr = torch.randn(6, 3, 4, dtype=torch.float64, requires_grad=True)
    spec = NeuronSpec(spike="ternary", surrogate=surrogate("atan"))
    a, _, _ = multistep(xr, spec, decay=0.4, threshold=0.5)
    b, _, _ = multistep(xr, spec, decay=0.4, threshold=0.5, threshold_low=-0.5)
    assert torch.equal(a, b)
    w = torch.randn_like(a)
    ga = torch.autograd.grad((a * w).sum(), xr)[0]
    gb = torch.autograd.grad((b * w).sum(), xr)[0]
    torch.testing.assert_close(ga, gb)
    with pytest.raises(ValueError, match="ternary"):
        multistep(xr, NeuronSpec(), decay=0.4, threshold=0.5, threshold_low=-0.5)


def test_input_check_finds_every_non_finite_value_and_accepts_huge_finite_ones():
    from spikeforge.functional import check_sequence

    for bad in (float("nan"), float("inf"), -float("inf")):
        x = torch.zeros(3, 2, 4)
        x[1, 0, 2] = bad
        with pytest.raises(ValueError, match="NaN or Inf"):
            check_sequence(x)
    check_sequence(torch.full((2, 2, 2), 3e38))  # the sum overflows, the values are finite
