"""Every neuron backend against the reference loop (the specification), selection by name, the custom op."""

from __future__ import annotations

import copy
import dataclasses
import importlib.util
import itertools

import pytest
import torch

from spikeforge.functional import (
    BACKENDS,
    MembraneNorm,
    NeuronSpec,
    _cpu_kernel,
    backend_support,
    get_backend,
    kernels,
    make_call,
    multistep,
    surrogate,
)

SURROGATES = [("rectangular", {}), ("ste", {"width": 0.7}), ("triangle", {}), ("sigmoid", {}),
              ("atan", {"alpha": 2.0}), ("dspike", {"b": 3.0})]
GRANULARITY = ["scalar", "channel", "element", "step"]
HAS_TRITON = importlib.util.find_spec("triton") is not None
T, B, C, L = 5, 4, 3, 4


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors: intra-op threads only add waiting on a loaded machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def triton_interpreter(monkeypatch):
    """The Triton backend on CPU tensors through the Triton interpreter."""
    if not HAS_TRITON:
        pytest.skip("triton is not installed")
    monkeypatch.setenv("TRITON_INTERPRET", "1")


def _threshold(kind: str, g: torch.Generator) -> torch.Tensor:
    shape = {"scalar": (), "channel": (C, 1), "element": (C, L), "step": (T, 1, C, 1)}[kind]
    return torch.rand(shape, generator=g, dtype=torch.float64) * 0.3 + 0.35


def _norm(per_element: bool, per_step: bool, training: bool, g: torch.Generator) -> MembraneNorm:
    n = C * L if per_element else C
    rows = T if per_step else 1
    return MembraneNorm(torch.rand(n, generator=g, dtype=torch.float64) + 0.5,
                        torch.randn(n, generator=g, dtype=torch.float64) * 0.2,
                        torch.randn(rows, n, generator=g, dtype=torch.float64) * 0.1,
                        torch.rand(rows, n, generator=g, dtype=torch.float64) + 0.5,
                        training, 0.1, 1e-5, per_element=per_element, per_step=per_step)


def _clone_norm(norm: MembraneNorm | None, requires_grad: bool) -> MembraneNorm | None:
    if norm is None:
        return None
    return dataclasses.replace(norm, weight=norm.weight.clone().requires_grad_(requires_grad),
                               bias=norm.bias.clone().requires_grad_(requires_grad),
                               running_mean=norm.running_mean.clone(), running_var=norm.running_var.clone())


def _compare(backend: str, spec: NeuronSpec, thr: torch.Tensor, *, decay: float = 0.6, norm=None,
             learn: bool = False, seed: int = 0, low=None) -> None:
    """Spikes, final membrane, fire input and every gradient of ``backend`` equal the reference's."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, C, L, generator=g, dtype=torch.float64) * 0.8 + 0.3
    v0 = torch.rand(B, C, L, generator=g, dtype=torch.float64) * 0.4
    g_s = torch.randn(x.shape, generator=g, dtype=torch.float64)
    g_r = torch.randn(x.shape, generator=g, dtype=torch.float64)
    g_v = torch.randn(v0.shape, generator=g, dtype=torch.float64)

    def run(name: str):
        xi, vi = x.clone().requires_grad_(), v0.clone().requires_grad_()
        d = torch.tensor(decay, dtype=torch.float64, requires_grad=learn)
        th = thr.clone().requires_grad_(learn)
        lo = None if low is None else low.clone().requires_grad_(learn)
        nm = _clone_norm(norm, learn)
        s, state, r = multistep(xi, spec, decay=d, threshold=th, v0=vi, norm=nm, backend=name, threshold_low=lo,
                                return_fire_input=True)
        assert r is not None
        ((s * g_s).sum() + (r * g_r).sum() + (state.v * g_v).sum()).backward()
        grads = {"x": xi.grad, "v0": vi.grad}
        if learn:
            grads.update(decay=d.grad, threshold=th.grad)
            if lo is not None:
                grads["threshold_low"] = lo.grad
            if nm is not None:
                grads.update(weight=nm.weight.grad, bias=nm.bias.grad)
        stats = () if nm is None else (nm.running_mean, nm.running_var)
        return s.detach(), state.v.detach(), r.detach(), grads, stats

    got, want = run(backend), run("reference")
    assert torch.equal(got[0], want[0]), "spikes differ from the reference"
    assert got[0].abs().sum() > 0 and (got[0] == 0).any(), "test input must both fire and not fire"
    if spec.spike == "ternary":
        assert (got[0] < 0).any(), "test input must fire negative spikes"
    torch.testing.assert_close(got[1], want[1], rtol=1e-12, atol=1e-12, msg="final membrane")
    torch.testing.assert_close(got[2], want[2], rtol=1e-12, atol=1e-12, msg="fire input")
    assert got[3].keys() == want[3].keys()
    for name in want[3]:
        assert got[3][name] is not None, f"no gradient for {name}"
        torch.testing.assert_close(got[3][name], want[3][name], rtol=1e-9, atol=1e-11, msg=f"d/d{name}")
    for a, b in zip(got[4], want[4]):
        assert torch.equal(a, b), "running statistics differ"


def _spec(spike: str, reset: str, i: int) -> NeuronSpec:
    """Configuration ``i`` of a (spike, reset) pair. Over the four ``i`` of a pair (the threshold granularities
    in the grid) every (decay_input, detach_reset) combination appears, with and without a soft-reset constant /
    a non-zero hard-reset value; the surrogate rotates."""
    k, sub = i // 2, (i // 2) % 4
    name, param = SURROGATES[k % len(SURROGATES)]
    odd = (sub + (spike == "ternary")) % 2 == 1
    v_reset = -0.1 if (reset == "hard" and spike == "binary" and not odd) else 0.0
    amount = 0.4 if (reset == "soft" and odd) else None
    return NeuronSpec(spike=spike, reset=reset, surrogate=surrogate(name, **param), decay_input=bool(sub % 2),
                      detach_reset=sub >= 2, v_reset=v_reset, soft_reset_amount=amount)


def expected_support(backend: str, granularity: str, mpbn: bool, learn: bool = False, mpr: bool = False,
                     spec: NeuronSpec | None = None) -> bool:
    """What each backend claims to run (asserted, so that no backend silently hands a call to another)."""
    if backend in ("reference", "fused"):
        return True
    if mpbn or learn or mpr:
        return False
    if backend != "cpp" or granularity == "scalar":
        return True
    # C++: time-invariant thresholds per channel/element, except a soft reset by that threshold
    soft_by_threshold = spec is not None and spec.reset == "soft" and spec.soft_reset_amount is None
    return granularity in ("channel", "element") and not soft_by_threshold


GRID = list(itertools.product(["binary", "ternary"], ["hard", "soft", "none"], GRANULARITY, [False, True]))


@pytest.mark.parametrize("spike,reset,granularity,mpbn", GRID)
@pytest.mark.parametrize("backend", ["fused", "cpp", "triton"])
def test_backend_equals_reference(backend, spike, reset, granularity, mpbn, request):
    if backend == "triton":
        request.getfixturevalue("triton_interpreter")
    if backend == "cpp" and _cpu_kernel.kernel() is None:
        pytest.skip(f"C++ CPU kernel not available here: {_cpu_kernel.kernel_status()}")
    i = GRID.index((spike, reset, granularity, mpbn))
    spec = _spec(spike, reset, i)
    g = torch.Generator().manual_seed(i)
    thr = _threshold(granularity, g)
    norm = _norm(per_element=i % 4 == 1, per_step=i % 3 == 0, training=i % 5 != 2, g=g) if mpbn else None
    call = make_call(torch.zeros(T, B, C, L, dtype=torch.float64), spec, decay=0.6, threshold=thr, norm=norm)
    reason = get_backend(backend).supports(call)
    assert (reason is None) == expected_support(backend, granularity, mpbn, spec=spec), reason
    if reason is not None:
        with pytest.raises(ValueError, match=f"backend '{backend}'"):
            multistep(call.x, spec, decay=0.6, threshold=thr, norm=norm, backend=backend)
        return
    _compare(backend, spec, thr, norm=norm, seed=i)


@pytest.mark.parametrize("spike", ["binary", "ternary"])
@pytest.mark.parametrize("sg_name,sg_param", SURROGATES)
@pytest.mark.parametrize("backend", ["fused", "cpp", "triton"])
def test_every_surrogate(backend, spike, sg_name, sg_param, request):
    if backend == "triton":
        request.getfixturevalue("triton_interpreter")
    if backend == "cpp" and _cpu_kernel.kernel() is None:
        pytest.skip(f"C++ CPU kernel not available here: {_cpu_kernel.kernel_status()}")
    spec = NeuronSpec(spike=spike, reset="hard", surrogate=surrogate(sg_name, **sg_param))
    _compare(backend, spec, torch.tensor(0.5, dtype=torch.float64))


@pytest.mark.parametrize("spike,reset,granularity,mpbn", GRID[::3])
def test_fused_learnable_decay_thresholds_and_mpbn_affine(spike, reset, granularity, mpbn):
    """PLIF decay, learnable thresholds of every granularity and MPBN's lambda/beta: gradients equal."""
    i = GRID.index((spike, reset, granularity, mpbn))
    g = torch.Generator().manual_seed(100 + i)
    norm = _norm(per_element=i % 2 == 0, per_step=i % 4 == 1, training=True, g=g) if mpbn else None
    _compare("fused", _spec(spike, reset, i + 1), _threshold(granularity, g), norm=norm, learn=True, seed=i)


@pytest.mark.parametrize("mpbn", [False, True])
def test_fused_ternary_separate_negative_threshold(mpbn):
    g = torch.Generator().manual_seed(7)
    spec = NeuronSpec(spike="ternary", reset="soft", surrogate=surrogate("ste"))
    low = -(torch.rand(T, 1, C, 1, generator=g, dtype=torch.float64) * 0.3 + 0.2)
    norm = _norm(False, False, True, g) if mpbn else None
    _compare("fused", spec, _threshold("channel", g), low=low, norm=norm, learn=True)


def test_fused_mpr_and_float32_spikes_exact():
    g = torch.Generator().manual_seed(3)
    _compare("fused", NeuronSpec(reset="soft", pre_fire="mpr", surrogate=surrogate("ste")),
             _threshold("element", g), learn=True)
    x = torch.randn(6, 8, 16, 7, 7, generator=g)
    spec = NeuronSpec(surrogate=surrogate("dspike", b=3.0))
    ref, ref_state, _ = multistep(x, spec, decay=0.3, threshold=0.5, backend="reference")  # 0.3: inexact charge
    for name in ("fused", "cpp"):
        s, state, _ = multistep(x, spec, decay=0.3, threshold=0.5, backend=name)
        assert torch.equal(s, ref) and torch.equal(state.v, ref_state.v), name


# --- selection -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BACKENDS)
def test_each_backend_selected_by_name_runs_itself(name, monkeypatch, request):
    """A backend asked for by name is the one that runs (no silent shadowing by another)."""
    if name == "triton":
        request.getfixturevalue("triton_interpreter")
    ran: list[str] = []
    for other in BACKENDS:
        b = get_backend(other)
        monkeypatch.setattr(b, "run", lambda call, _b=b, _orig=b.run: (ran.append(_b.name), _orig(call))[1])
    x = torch.randn(3, 2, 4, generator=torch.Generator().manual_seed(0))
    multistep(x, NeuronSpec(), decay=0.25, threshold=0.5, backend=name)
    assert ran == [name]


def test_auto_and_environment_variable(monkeypatch):
    x = torch.randn(3, 2, 4)
    spec = NeuronSpec()
    monkeypatch.delenv(kernels.ENV_VAR, raising=False)
    plain = make_call(x, spec, decay=0.25, threshold=0.5)
    want = "cpp" if _cpu_kernel.kernel() is not None else "fused"
    assert kernels.select_backend(plain).name == want
    g = torch.Generator().manual_seed(0)
    mpbn = make_call(x, spec, decay=0.25, threshold=0.5, norm=dataclasses.replace(
        _norm(False, False, True, g), weight=torch.ones(2), bias=torch.zeros(2), running_mean=torch.zeros(1, 2),
        running_var=torch.ones(1, 2)))
    assert kernels.select_backend(mpbn).name == "fused"
    assert kernels.select_backend(make_call(x, spec, decay=0.25, threshold=0.5, pre_fire=lambda h, t: h)).name == \
        "reference"
    monkeypatch.setenv(kernels.ENV_VAR, "reference")
    assert kernels.select_backend(plain).name == "reference"
    assert kernels.select_backend(plain, "fused").name == "fused"  # an explicit name beats the variable
    monkeypatch.setenv(kernels.ENV_VAR, "cuda-magic")
    with pytest.raises(ValueError, match=kernels.ENV_VAR):
        kernels.select_backend(plain)
    with pytest.raises(ValueError, match="not a neuron backend"):
        kernels.select_backend(plain, "cuda-magic")


def test_unsupported_call_names_the_reason():
    x = torch.randn(3, 2, 4)
    spec = NeuronSpec()
    report = backend_support(make_call(x, spec, decay=0.25, threshold=torch.full((4,), 0.5), pre_fire=lambda h, t: h))
    assert report["reference"] is None and "pre_fire" in report["fused"] and "MPBN" in report["cpp"]
    with pytest.raises(ValueError, match="backend 'cpp'.*time-invariant thresholds"):
        multistep(x, spec, decay=0.25, threshold=torch.full((3, 1, 4), 0.5), backend="cpp")  # one per step
    with pytest.raises(ValueError, match="backend 'cpp'.*soft reset by a per-neuron threshold"):
        multistep(x, NeuronSpec(reset="soft"), decay=0.25, threshold=torch.full((4,), 0.5), backend="cpp")
    with pytest.raises(ValueError, match="backend 'triton'.*(CUDA|triton)"):
        multistep(x, spec, decay=0.25, threshold=0.5, backend="triton")


# --- torch.library custom op and torch.compile -------------------------------------------------------------


def test_custom_op_registration():
    x = torch.randn(3, 2, 4, dtype=torch.float64, requires_grad=True)
    args = (x, torch.zeros(2, 4, dtype=torch.float64), torch.tensor(0.25, dtype=torch.float64),
            torch.tensor(0.5, dtype=torch.float64, requires_grad=True), None, kernels.spec_key(NeuronSpec()),
            "fused", False, False)
    torch.library.opcheck(torch.ops.spikeforge.neuron_multistep.default, args,
                          test_utils=("test_schema", "test_faketensor", "test_autograd_registration"))


@pytest.mark.parametrize("preset,backend", [("lif", "fused"), ("lif", "cpp"), ("mpbn", "auto")])
def test_compile_traces_conv_and_neuron_without_graph_breaks(preset, backend):
    from torch import nn

    from spikeforge.neurons import Neuron

    if backend == "cpp" and _cpu_kernel.kernel() is None:
        pytest.skip(f"C++ CPU kernel not available here: {_cpu_kernel.kernel_status()}")

    class ConvNeuron(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(2, 4, 3, padding=1)
            self.neuron = Neuron(preset, feature_shape=(4, 5, 5), backend=backend)

        def forward(self, x):
            y = self.conv(x.flatten(0, 1)).unflatten(0, x.shape[:2])
            return self.neuron(y)

    torch.manual_seed(0)
    model = ConvNeuron()
    x = torch.randn(3, 2, 2, 5, 5)
    assert torch._dynamo.explain(copy.deepcopy(model))(x).graph_break_count == 0
    twin = copy.deepcopy(model)  # MPBN updates running statistics: both copies see the same calls
    compiled = torch.compile(twin, backend="aot_eager", fullgraph=True)
    out = model(x)
    out.sum().backward()
    got_out = compiled(x)
    got_out.sum().backward()
    assert torch.equal(got_out, out)
    for (name, a), b in zip(model.named_parameters(), twin.parameters()):
        torch.testing.assert_close(b.grad, a.grad, msg=name)
    for (name, a), b in zip(model.named_buffers(), twin.buffers()):
        torch.testing.assert_close(b, a, msg=name)


# --- the C++ build cache ------------------------------------------------------------------------------------


def test_build_name_keyed_by_environment_and_source(monkeypatch):
    import sys

    base = _cpu_kernel.build_name()
    assert base.startswith("spikeforge_neuron_cpu_") and base == _cpu_kernel.build_name()
    monkeypatch.setattr(sys, "prefix", "/some/other/venv")
    assert _cpu_kernel.build_name() != base
    monkeypatch.undo()
    monkeypatch.setattr(torch, "__version__", "0.0.0+other")
    assert _cpu_kernel.build_name() != base
    assert _cpu_kernel.source_path().is_file()
    monkeypatch.undo()


def test_build_name_keyed_by_source_location(monkeypatch, tmp_path):
    """Two checkouts with the same source text get different build directories (build.ninja names the path)."""
    base = _cpu_kernel.build_name()
    copy = tmp_path / "csrc" / "neuron_cpu.cpp"
    copy.parent.mkdir()
    copy.write_text(_cpu_kernel.source_path().read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(_cpu_kernel, "source_path", lambda: copy)
    assert _cpu_kernel.build_name() != base


def test_first_build_announces_itself(monkeypatch, tmp_path):
    import torch.utils.cpp_extension as cpp_ext

    monkeypatch.setattr(_cpu_kernel, "_module", None)
    monkeypatch.setattr(_cpu_kernel, "_status", "not built yet")
    monkeypatch.delenv("SPIKEFORGE_CPU_KERNEL", raising=False)
    monkeypatch.setattr(_cpu_kernel, "_build_dir", lambda name: tmp_path / name)
    seen = {}

    def fake_load(name, sources, build_directory, **kwargs):
        seen.update(name=name, sources=sources, build_directory=build_directory)
        return object()

    monkeypatch.setattr(cpp_ext, "load", fake_load)
    with pytest.warns(_cpu_kernel.KernelBuildNotice, match=str(tmp_path)):
        assert _cpu_kernel.kernel() is not None
    assert seen["sources"] == [str(_cpu_kernel.source_path())]
    assert seen["build_directory"] == str(tmp_path / seen["name"])


def test_constant_marker_matches_torch_without_importing_dynamo():
    import subprocess
    import sys

    def f() -> int:
        return 1

    def g() -> int:
        return 1

    kernels.assume_constant_result(f)
    torch.compiler.assume_constant_result(g)
    assert vars(f) == vars(g) and vars(f)  # the same marker dynamo reads
    code = "import sys, spikeforge, spikeforge.bench.step; print('torch._dynamo' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # importing spikeforge does not pay for torch._dynamo


@pytest.mark.parametrize("backend", ["fused", "cpp"])
def test_unused_membrane_output_gets_no_zero_gradient_and_the_same_gradients(backend):
    """Only the spikes feed the loss: the custom op's backward gets no materialised zero gradient of the full
    [T, B, ...] membrane nor of the final state (needless fills per layer per step; at T = 1 both are as large
    as the input); the gradients stay those of the reference."""
    from torch.profiler import ProfilerActivity, profile

    g = torch.Generator().manual_seed(5)
    x0 = torch.randn(4, 3, 8, 5, 5, generator=g)
    w = torch.randn(4, 3, 8, 5, 5, generator=g)
    spec = NeuronSpec(surrogate=surrogate("atan", alpha=2.0))
    grads = {}
    for name in ("reference", backend):
        x = x0.clone().requires_grad_()
        s, _, _ = multistep(x, spec, decay=0.5, threshold=0.5, backend=name)
        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            (s * w).sum().backward()
        grads[name] = x.grad
        if name == backend:
            fills = [list(e.input_shapes[0]) for e in prof.events() if e.name in ("aten::fill_", "aten::zero_")
                     and e.input_shapes]
            assert list(x0.shape) not in fills  # no zero gradient for the unused membrane h
            if backend == "cpp":
                assert list(x0.shape[1:]) not in fills  # nor for the unused final state v
    torch.testing.assert_close(grads[backend], grads["reference"], rtol=1e-6, atol=1e-6)
