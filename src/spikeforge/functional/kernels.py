"""One kernel boundary for the multi-step neuron: every execution of the time loop behind one small interface.

Backends (selected by name with ``backend=...``, or for ``"auto"`` by the environment variable
``SPIKEFORGE_NEURON_BACKEND``):

* ``"reference"`` — :func:`~spikeforge.functional.neuron.reference_multistep`, the autograd loop: the
  specification. Runs everything, including an arbitrary callable ``pre_fire``.
* ``"fused"`` — the PyTorch fused loop (:mod:`._fused_torch`): one autograd node over T with an explicit
  reverse-time backward. Runs every option of the reference except a callable ``pre_fire``: MPR, MPBN (the
  per-step BatchNorm inside the loop, exact backward), per-channel / per-element / per-step thresholds,
  learnable decay and thresholds, a separate negative ternary threshold.
* ``"cpp"`` — the C++ CPU kernel (:mod:`._cpu_kernel`, ``csrc/neuron_cpu.cpp``): scalar decay/threshold without
  gradient, no rectifier or MPBN, float32/float64 on CPU.
* ``"triton"`` — the Triton kernel (:mod:`._triton_kernel`) for CUDA tensors (or CPU tensors under
  ``TRITON_INTERPRET=1``): decay scalar, thresholds of any granularity without gradient, no rectifier or MPBN.
* ``"auto"`` — the first backend that supports the call: Triton (CUDA), C++ (CPU), PyTorch fused, reference.

Every backend has ``supports(call)`` (``None``, or the reason it cannot run the call) and ``run(call)``.
The kernel backends (fused, cpp, triton) are a ``forward`` and a ``backward`` on plain tensors, put behind one
``torch.library`` custom op, ``spikeforge::neuron_multistep``, with a fake (meta) implementation and an autograd
registration, so ``torch.compile`` traces a model through the neuron without a graph break. MPBN's fused loop
(which updates running statistics in place) stays a plain ``torch.autograd.Function``.

Asking for a backend by name that cannot run the call is an error naming the reason, never a silent fallback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, fields
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor

from . import _cpu_kernel, _fused_torch
from .neuron import NeuronSpec, NeuronState, reference_multistep
from .norm import MembraneNorm
from .surrogate import surrogate

__all__ = [
    "BACKENDS", "ENV_VAR", "NeuronBackend", "KernelBackend", "NeuronCall", "backend_support", "get_backend",
    "select_backend",
]

BACKENDS = ("reference", "fused", "cpp", "triton")
ENV_VAR = "SPIKEFORGE_NEURON_BACKEND"


@dataclass(frozen=True)
class NeuronCall:
    """One multi-step neuron call: tensors already in the input's dtype, ``v0`` materialised."""

    x: Tensor
    v0: Tensor
    decay: Tensor
    threshold: Tensor
    spec: NeuronSpec
    threshold_low: Tensor | None = None
    norm: MembraneNorm | None = None
    pre_fire: Callable[[Tensor, int], Tensor] | None = None
    time_varying: bool = False
    low_varying: bool = False

    @property
    def param_grad(self) -> bool:
        """Whether decay or a threshold needs a gradient."""
        low = self.threshold_low
        return self.decay.requires_grad or self.threshold.requires_grad or (low is not None and low.requires_grad)


class NeuronBackend:
    """The interface: a name, a capability check and a run."""

    name = ""

    def supports(self, call: NeuronCall) -> str | None:
        """``None`` when this backend runs ``call`` exactly, else the reason it cannot."""
        raise NotImplementedError

    def run(self, call: NeuronCall) -> tuple[Tensor, Tensor, Tensor]:
        """``(spikes[T, ...], v_T, third[T, ...])``; ``third`` is the fire input with MPBN, else ``h``."""
        raise NotImplementedError


class ReferenceBackend(NeuronBackend):
    name = "reference"

    def supports(self, call: NeuronCall) -> str | None:
        return None

    def run(self, call: NeuronCall) -> tuple[Tensor, Tensor, Tensor]:
        s, state, r = reference_multistep(
            call.x, call.spec, decay=call.decay, threshold=call.threshold, v0=call.v0, pre_fire=call.pre_fire,
            return_fire_input=True, threshold_low=call.threshold_low, norm=call.norm)
        assert r is not None
        return s, state.v, r


class KernelBackend(NeuronBackend):
    """A backend made of a forward and a backward on plain tensors (no autograd inside)."""

    def forward(self, x: Tensor, v0: Tensor, decay: Tensor, thr: Tensor, low: Tensor | None, spec: NeuronSpec,
                tv: bool, low_tv: bool) -> tuple[Tensor, Tensor, Tensor]:
        """``(s, v_T, h)`` — three new tensors."""
        raise NotImplementedError

    def backward(self, h: Tensor, g_s: Tensor, g_v: Tensor | None, g_h: Tensor | None, x: Tensor | None, v0: Tensor,
                 decay: Tensor, thr: Tensor, low: Tensor | None, spec: NeuronSpec, tv: bool, low_tv: bool,
                 needs: tuple[bool, ...]) -> tuple[Tensor | None, ...]:
        """Gradients ``(x, v0, decay, threshold, threshold_low)``, ``None`` where ``needs`` is False."""
        raise NotImplementedError

    def run(self, call: NeuronCall) -> tuple[Tensor, Tensor, Tensor]:
        s, v, h = torch.ops.spikeforge.neuron_multistep(
            call.x, call.v0, call.decay, call.threshold, call.threshold_low, spec_key(call.spec), self.name,
            call.time_varying, call.low_varying)
        return s, v, h


class FusedBackend(KernelBackend):
    name = "fused"

    def supports(self, call: NeuronCall) -> str | None:
        if call.pre_fire is not None:
            return "a callable pre_fire is run by the reference loop only (MPBN: pass norm=MembraneNorm)"
        return None

    def run(self, call: NeuronCall) -> tuple[Tensor, Tensor, Tensor]:
        norm = call.norm
        if norm is None:
            return super().run(call)
        return _fused_torch.FusedNormNode.apply(
            call.x, call.v0, call.decay, call.threshold, call.threshold_low, norm.weight, norm.bias, call.spec,
            call.time_varying, call.low_varying, norm)

    def forward(self, x, v0, decay, thr, low, spec, tv, low_tv):
        s, v, h, _ = _fused_torch.forward(x, v0, decay, thr, low, spec, tv, low_tv)
        return s, v, h

    def backward(self, h, g_s, g_v, g_h, x, v0, decay, thr, low, spec, tv, low_tv, needs):
        return _fused_torch.backward(_fused_torch.Saved(h), g_s, g_v, g_h, x=x, v0=v0, decay=decay, thr=thr,
                                     low=low, spec=spec, tv=tv, low_tv=low_tv, needs=needs)[:5]


_RESET_IDS = {"hard": 0, "soft": 1, "none": 2}


def _common_limits(call: NeuronCall, surrogates: dict[str, int]) -> str | None:
    spec = call.spec
    if call.pre_fire is not None or call.norm is not None:
        return "MPBN / a callable pre_fire runs in the PyTorch fused loop or the reference only"
    if spec.pre_fire != "none":
        return f"pre_fire={spec.pre_fire!r} (MPR) runs in the PyTorch fused loop or the reference only"
    if call.threshold_low is not None:
        return "a separate negative threshold (threshold_low) runs in the PyTorch fused loop or the reference only"
    if call.param_grad:
        return "a learnable decay or threshold needs the PyTorch fused loop (gradients of decay/threshold)"
    if call.decay.numel() != 1:
        return f"decay must be a scalar here, got shape {tuple(call.decay.shape)}"
    if spec.surrogate.name not in surrogates:
        return f"surrogate {spec.surrogate.name!r} is not compiled in (have {sorted(surrogates)})"
    if call.v0.shape != call.x.shape[1:]:
        return f"v0 of shape {tuple(call.v0.shape)} does not match x[0] {tuple(call.x.shape[1:])}"
    return None


def assume_constant_result(fn: Callable) -> Callable:
    """``torch.compiler.assume_constant_result`` without importing ``torch._dynamo`` when spikeforge is imported
    (that import costs ~2.5 s of every start-up): torch's decorator only marks the function with this attribute,
    which dynamo reads when it traces (``tests/functional`` checks the two agree)."""
    fn._dynamo_marked_constant = True  # type: ignore[attr-defined]
    return fn


@assume_constant_result
def _cpp_status() -> str:
    """Builds or loads the C++ kernel at first use (outside any ``torch.compile`` trace: a constant there)."""
    _cpu_kernel.kernel()
    return _cpu_kernel.kernel_status()


class CppBackend(KernelBackend):
    name = "cpp"

    def supports(self, call: NeuronCall) -> str | None:
        x = call.x
        if x.device.type != "cpu":
            return f"the C++ kernel runs on CPU tensors, got device {x.device}"
        if x.dtype not in (torch.float32, torch.float64):
            return f"the C++ kernel is compiled for float32/float64, got {x.dtype}"
        reason = _common_limits(call, _cpu_kernel.SURROGATE_IDS)
        if reason is not None:
            return reason
        if call.time_varying:
            return "the C++ kernel takes time-invariant thresholds (per-step thresholds: fused or triton)"
        if call.threshold.numel() != 1:
            if call.spec.reset == "soft" and call.spec.soft_reset_amount is None:
                return "a soft reset by a per-neuron threshold runs in the fused loop (the C++ kernel: scalar amount)"
            try:
                fits = torch.broadcast_shapes(call.threshold.shape, x.shape[1:]) == x.shape[1:]
            except RuntimeError:
                fits = False
            if not fits:
                return f"threshold {tuple(call.threshold.shape)} does not broadcast to x[0] {tuple(x.shape[1:])}"
        status = _cpp_status()
        return None if status == "built" else f"the C++ kernel is {status}"

    @staticmethod
    def _args(spec: NeuronSpec, decay: Tensor, thr: Tensor, like: Tensor) -> tuple[Any, ...]:
        """Kernel arguments; a threshold per channel/element goes in as one contiguous value per neuron of
        ``like`` (``x[0]``), read once per block of neurons."""
        if thr.numel() == 1:
            t, per_neuron = float(thr), None
        else:
            t, per_neuron = 0.0, thr.detach().to(like.dtype).expand(like.shape).contiguous().reshape(-1)
        amount = t if spec.soft_reset_amount is None else spec.soft_reset_amount
        return float(decay), spec.decay_input, t, per_neuron, _RESET_IDS[spec.reset], spec.v_reset, amount

    def forward(self, x, v0, decay, thr, low, spec, tv, low_tv):
        k = _cpu_kernel.kernel()
        assert k is not None
        s, h, v = k.lif_forward(x.contiguous(), v0.contiguous().reshape(-1), *self._args(spec, decay, thr, v0),
                                spec.spike == "ternary")
        return s, v.view(x.shape[1:]), h

    def backward(self, h, g_s, g_v, g_h, x, v0, decay, thr, low, spec, tv, low_tv, needs):
        k = _cpu_kernel.kernel()
        assert k is not None
        g_vT = None if g_v is None else g_v.contiguous().reshape(-1)  # None: the final state is unused (zero)
        g_x, g_v0 = k.lif_backward(g_s.contiguous(), None if g_h is None else g_h.contiguous(), g_vT,
                                   h.contiguous(), *self._args(spec, decay, thr, v0),
                                   spec.detach_reset, _cpu_kernel.SURROGATE_IDS[spec.surrogate.name],
                                   spec.surrogate.param, spec.spike == "ternary")
        return g_x, g_v0.view(h.shape[1:]), None, None, None


class TritonBackend(KernelBackend):
    name = "triton"

    def supports(self, call: NeuronCall) -> str | None:
        from . import _triton_kernel

        reason = _triton_kernel.unavailable(call.x)
        if reason is not None:
            return reason
        return _common_limits(call, _triton_kernel.SURROGATE_IDS)

    def forward(self, x, v0, decay, thr, low, spec, tv, low_tv):
        from . import _triton_kernel

        return _triton_kernel.forward(x, v0, decay, thr, spec, tv)

    def backward(self, h, g_s, g_v, g_h, x, v0, decay, thr, low, spec, tv, low_tv, needs):
        from . import _triton_kernel

        g_x, g_v0 = _triton_kernel.backward(h, g_s, torch.zeros_like(h[0]) if g_v is None else g_v, g_h, decay, thr,
                                            spec, tv)
        return g_x, g_v0, None, None, None


_REGISTRY: dict[str, NeuronBackend] = {
    b.name: b for b in (ReferenceBackend(), FusedBackend(), CppBackend(), TritonBackend())
}


def get_backend(name: str) -> NeuronBackend:
    """The backend registered under ``name`` (one of :data:`BACKENDS`)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown neuron backend {name!r}; choose one of {['auto', *BACKENDS]}")
    return _REGISTRY[name]


def _auto_order(x: Tensor) -> tuple[str, ...]:
    return ("triton", "fused", "reference") if x.device.type == "cuda" else ("cpp", "fused", "reference")


def select_backend(call: NeuronCall, backend: str = "auto") -> NeuronBackend:
    """The backend named ``backend`` (``"auto"``: the ``SPIKEFORGE_NEURON_BACKEND`` variable, else the first
    of Triton/C++, fused, reference that supports the call). A named backend that cannot run ``call`` raises."""
    name, source = backend, "backend"
    if name == "auto":
        env = os.environ.get(ENV_VAR, "").strip().lower()
        if env and env != "auto":
            name, source = env, f"environment variable {ENV_VAR}"
    if name == "auto":
        for candidate in _auto_order(call.x):
            if _REGISTRY[candidate].supports(call) is None:
                return _REGISTRY[candidate]
        raise AssertionError("the reference backend supports every call")
    if name not in _REGISTRY:
        raise ValueError(f"{source}={name!r} is not a neuron backend; choose one of {['auto', *BACKENDS]}")
    chosen = _REGISTRY[name]
    reason = chosen.supports(call)
    if reason is not None:
        raise ValueError(f"neuron backend {name!r} (from {source}) cannot run this call: {reason}")
    return chosen


def backend_support(call: NeuronCall) -> dict[str, str | None]:
    """For each backend, ``None`` if it runs ``call``, else why not (a diagnostic for users)."""
    return {name: b.supports(call) for name, b in _REGISTRY.items()}


# --- the custom op ------------------------------------------------------------------------------------------

_SPEC_FIELDS = [f.name for f in fields(NeuronSpec) if f.name != "surrogate"]


@assume_constant_result
def spec_key(spec: NeuronSpec) -> str:
    """``spec`` as a string (custom ops take primitive arguments); a constant for ``torch.compile``."""
    d = {k: getattr(spec, k) for k in _SPEC_FIELDS}
    d["surrogate"] = [spec.surrogate.name, spec.surrogate.param]
    return json.dumps(d, sort_keys=True)


@lru_cache(maxsize=256)
def spec_from_key(key: str) -> NeuronSpec:
    d = json.loads(key)
    name, param = d.pop("surrogate")
    sg = surrogate(name)
    return NeuronSpec(surrogate=type(sg)(name, float(param)), **d)


def _kernel(name: str) -> KernelBackend:
    b = _REGISTRY[name]
    assert isinstance(b, KernelBackend)
    return b


@torch.library.custom_op("spikeforge::neuron_multistep", mutates_args=())
def _neuron_multistep(x: Tensor, v0: Tensor, decay: Tensor, threshold: Tensor, threshold_low: Tensor | None,
                      spec: str, backend: str, time_varying: bool, low_varying: bool
                      ) -> tuple[Tensor, Tensor, Tensor]:
    return _kernel(backend).forward(x, v0, decay, threshold, threshold_low, spec_from_key(spec), time_varying,
                                    low_varying)


@_neuron_multistep.register_fake
def _(x, v0, decay, threshold, threshold_low, spec, backend, time_varying, low_varying):
    return torch.empty_like(x), torch.empty_like(v0), torch.empty_like(x)


@torch.library.custom_op("spikeforge::neuron_multistep_backward", mutates_args=())
def _neuron_multistep_backward(h: Tensor, g_s: Tensor, g_v: Tensor | None, g_h: Tensor | None, x: Tensor, v0: Tensor,
                               decay: Tensor, threshold: Tensor, threshold_low: Tensor | None, spec: str, backend: str,
                               time_varying: bool, low_varying: bool, needs: list[bool]
                               ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    grads = _kernel(backend).backward(h, g_s, g_v, g_h, x if x.numel() else None, v0, decay, threshold,
                                      threshold_low, spec_from_key(spec), time_varying, low_varying, tuple(needs))
    likes = (h, v0, decay, threshold, threshold_low if threshold_low is not None else h.new_empty(0))
    # custom ops return tensors: zeros stand for "not needed" (the autograd formula maps them back to None)
    return tuple(torch.zeros_like(like) if g is None else g.contiguous()  # type: ignore[return-value]
                 for g, like in zip(grads, likes))


@_neuron_multistep_backward.register_fake
def _(h, g_s, g_v, g_h, x, v0, decay, threshold, threshold_low, spec, backend, time_varying, low_varying, needs):
    low = threshold_low if threshold_low is not None else h.new_empty(0)
    return (torch.empty_like(h), torch.empty_like(v0), torch.empty_like(decay), torch.empty_like(threshold),
            torch.empty_like(low))


def _setup_context(ctx, inputs, output) -> None:
    x, v0, decay, threshold, threshold_low, spec, backend, tv, low_tv = inputs
    keep_x = spec_from_key(spec).decay_input and decay.requires_grad
    ctx.save_for_backward(output[2], x if keep_x else x.new_empty(0), v0, decay, threshold, threshold_low)
    ctx.args = (spec, backend, tv, low_tv)
    # an unused output (the membrane h, the final state v) gets no zero gradient: h is [T, B, ...], v is [B, ...]
    ctx.set_materialize_grads(False)


def _backward(ctx, g_s, g_v, g_h):
    h, x, v0, decay, threshold, threshold_low = ctx.saved_tensors
    if g_s is None:
        g_s = torch.zeros_like(h)
    needs = list(ctx.needs_input_grad[:5])
    grads = torch.ops.spikeforge.neuron_multistep_backward(
        h, g_s, g_v, g_h, x, v0, decay, threshold, threshold_low, *ctx.args, needs)
    return (*(g if need else None for g, need in zip(grads, needs)), None, None, None, None)


_neuron_multistep.register_autograd(_backward, setup_context=_setup_context)


def make_call(x: Tensor, spec: NeuronSpec, *, decay: Tensor | float, threshold: Tensor | float,
              v0: Tensor | None = None, threshold_low: Tensor | float | None = None, norm: MembraneNorm | None = None,
              pre_fire: Callable[[Tensor, int], Tensor] | None = None) -> NeuronCall:
    """Normalise a call's arguments (dtype, initial membrane, time-varying thresholds)."""
    from .neuron import _as_tensor, _is_time_varying

    thr = _as_tensor(threshold, x)
    low = None if threshold_low is None else _as_tensor(threshold_low, x)
    if low is not None and spec.spike != "ternary":
        raise ValueError("threshold_low is defined for ternary spikes only")
    if norm is not None and pre_fire is not None:
        raise ValueError("give either pre_fire or norm, not both")
    return NeuronCall(
        x=x, v0=torch.zeros_like(x[0]) if v0 is None else v0.to(x.dtype), decay=_as_tensor(decay, x), threshold=thr,
        spec=spec, threshold_low=low, norm=norm, pre_fire=pre_fire, time_varying=_is_time_varying(thr, x),
        low_varying=low is not None and _is_time_varying(low, x))


def run(call: NeuronCall, backend: str = "auto") -> tuple[Tensor, NeuronState, Tensor, str]:
    """Run ``call`` on the selected backend: ``(spikes, final_state, third, backend_name)``; ``third`` is the
    fire input for the reference backend, MPBN or a callable ``pre_fire``, else the pre-spike membrane ``h``."""
    chosen = select_backend(call, backend)
    s, v, third = chosen.run(call)
    return s, NeuronState(v), third, chosen.name
