"""The C++ CPU neuron kernel against the reference loop (the specification), and its fallback."""

from __future__ import annotations

import itertools
import os
import warnings

import pytest
import torch

from spikeforge.functional import (
    NeuronSpec,
    _cpu_kernel,
    fused_multistep,
    get_backend,
    make_call,
    multistep,
    reference_multistep,
    surrogate,
)


def _cpp_supports(x, v, d, t, spec):
    return get_backend("cpp").supports(make_call(x, spec, decay=d, threshold=t, v0=v))


def _kernel_or_skip():
    k = _cpu_kernel.kernel()
    if k is None:
        pytest.skip(f"C++ CPU kernel not available here: {_cpu_kernel.kernel_status()}")
    return k


SURROGATES = [("rectangular", {}), ("ste", {"width": 0.7}), ("triangle", {}), ("sigmoid", {}),
              ("atan", {"alpha": 2.0}), ("dspike", {"b": 3.0})]
DYNAMICS = list(itertools.product(["hard", "soft", "none"], [False, True], [False, True]))


@pytest.mark.parametrize("spike", ["binary", "ternary"])
@pytest.mark.parametrize("reset,detach,decay_input", DYNAMICS)
@pytest.mark.parametrize("sg_name,sg_param", SURROGATES)
def test_kernel_matches_reference(reset, detach, decay_input, sg_name, sg_param, spike):
    _kernel_or_skip()
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(6, 3, 4, 5, generator=g, dtype=torch.float64) * 0.8 + 0.3)
    v0 = torch.rand(3, 4, 5, generator=g, dtype=torch.float64) * 0.4
    g_s = torch.randn(x.shape, generator=g, dtype=torch.float64)
    g_h = torch.randn(x.shape, generator=g, dtype=torch.float64)
    g_v = torch.randn(v0.shape, generator=g, dtype=torch.float64)
    spec = NeuronSpec(spike=spike, reset=reset, v_reset=-0.1 if (reset == "hard" and spike == "binary") else 0.0,
                      detach_reset=detach,
                      decay_input=decay_input, surrogate=surrogate(sg_name, **sg_param),
                      soft_reset_amount=0.3 if (reset == "soft" and detach) else None)

    def run(fused: bool):
        xi, vi = x.clone().requires_grad_(), v0.clone().requires_grad_()
        if fused:
            assert _cpp_supports(xi, vi, 0.6, 0.5, spec) is None
            s, state, h = fused_multistep(xi, spec, decay=0.6, threshold=0.5, v0=vi, backend="cpp")
        else:
            s, state, h = reference_multistep(xi, spec, decay=0.6, threshold=0.5, v0=vi, return_fire_input=True)
        ((s * g_s).sum() + (h * g_h).sum() + (state.v * g_v).sum()).backward()
        return s.detach(), state.v.detach(), h.detach(), xi.grad, vi.grad

    got, want = run(True), run(False)
    assert torch.equal(got[0], want[0]), "spikes differ from the reference"
    assert got[0].abs().sum() > 0 and (got[0] == 0).any(), "test input must both fire and not fire"
    if spike == "ternary":
        assert (got[0] < 0).any(), "test input must fire negative spikes"
    for name, a, b in zip(("v_T", "h", "dx", "dv0"), got[1:], want[1:]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12, msg=f"{name} differs from the reference")


def test_kernel_float32_spikes_bit_identical_to_reference():
    _kernel_or_skip()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 4, 16, 9, 9, generator=g)  # N not a multiple of the kernel's block size
    spec = NeuronSpec(reset="hard", surrogate=surrogate("atan", alpha=2.0))
    s_k, st_k, _ = multistep(x, spec, decay=0.5, threshold=1.0, backend="cpp")
    s_r, st_r, _ = multistep(x, spec, decay=0.5, threshold=1.0, backend="reference")
    assert torch.equal(s_k, s_r) and torch.equal(st_k.v, st_r.v)


def test_kernel_used_only_when_it_covers_the_call():
    x = torch.randn(3, 2, 4)
    v = torch.zeros(2, 4)
    d, t = torch.tensor(0.5), torch.tensor(1.0)
    binary = NeuronSpec()
    if _cpu_kernel.kernel() is not None:  # ternary spikes with symmetric thresholds are covered
        assert _cpp_supports(x, v, d, t, NeuronSpec(spike="ternary")) is None
    assert "MPR" in _cpp_supports(x, v, d, t, NeuronSpec(pre_fire="mpr"))
    assert "learnable" in _cpp_supports(x, v, d.clone().requires_grad_(), t, binary)  # PLIF decay
    assert "float32" in _cpp_supports(x.half(), v.half(), d, t, binary)
    assert "CPU" in _cpp_supports(x.to("meta"), v.to("meta"), d, t, binary)


def test_build_failure_warns_once_and_falls_back(monkeypatch):
    import torch.utils.cpp_extension as cpp_ext

    monkeypatch.setattr(_cpu_kernel, "_module", None)
    monkeypatch.setattr(_cpu_kernel, "_status", "not built yet")
    monkeypatch.delenv("SPIKEFORGE_CPU_KERNEL", raising=False)

    def broken(*args, **kwargs):
        raise RuntimeError("no C++ compiler found")

    monkeypatch.setattr(cpp_ext, "load", broken)
    x = torch.randn(5, 3, 4, generator=torch.Generator().manual_seed(2)) + 0.5
    spec = NeuronSpec()
    with pytest.warns(RuntimeWarning, match="could not be built"):
        s, _, _ = multistep(x, spec, decay=0.25, threshold=0.5, backend="auto")
    assert _cpu_kernel.kernel_status().startswith("unavailable")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second call is silent
        s2, _, _ = multistep(x, spec, decay=0.25, threshold=0.5, backend="auto")
    with pytest.raises(ValueError, match="'cpp'.*unavailable"):
        multistep(x, spec, decay=0.25, threshold=0.5, backend="cpp")
    ref, _, _ = multistep(x, spec, decay=0.25, threshold=0.5, backend="reference")
    assert torch.equal(s, ref) and torch.equal(s2, ref)


def test_env_var_disables_kernel(monkeypatch):
    monkeypatch.setattr(_cpu_kernel, "_module", None)
    monkeypatch.setattr(_cpu_kernel, "_status", "not built yet")
    monkeypatch.setenv("SPIKEFORGE_CPU_KERNEL", "0")
    assert _cpu_kernel.kernel() is None
    assert _cpu_kernel.kernel_status().startswith("disabled")


def test_ninja_from_the_python_package_when_none_on_path(monkeypatch):
    ninja = pytest.importorskip("ninja")
    from spikeforge.functional import _cpu_kernel as ck

    monkeypatch.setattr(ck.shutil, "which", lambda name: None)
    monkeypatch.setenv("PATH", "/nonexistent")
    ck._ensure_ninja_on_path()
    assert os.environ["PATH"].split(os.pathsep)[0] == ninja.BIN_DIR
