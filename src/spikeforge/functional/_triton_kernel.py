"""Triton kernel for the fused neuron (CUDA; CPU tensors under ``TRITON_INTERPRET=1``).

Same math as :func:`spikeforge.functional.neuron.reference_multistep` for what it covers: binary or ternary
spikes (symmetric thresholds), reset hard (any ``v_reset``) / soft (by the threshold or a constant) / none,
``detach_reset`` and ``decay_input`` either way, a scalar decay, thresholds of any granularity (scalar,
per-channel, per-element, per-step) without gradient, and the surrogates rectangular, ste, triangle, sigmoid,
atan and dspike (tanh family). One program walks a block of neurons through all T steps with the membrane in
registers: the forward reads ``x`` once and writes ``s`` and ``h`` once, the backward reads ``g_s`` and ``h``
once and writes ``g_x`` once.

Rounding: the charge ``decay * v + gain * x`` is two roundings like the reference (the kernel is compiled with
``enable_fp_fusion=False``: no fused multiply-add), so spikes are bit-identical; gradients agree to float
rounding. Scalars (decay, gain, v_reset, reset amount, surrogate constants) are passed as a tensor in the input's
dtype, so float64 runs entirely in float64.
"""

from __future__ import annotations

import importlib.util
import math
import os

import torch
from torch import Tensor

from .neuron import NeuronSpec

__all__ = ["SURROGATE_IDS", "backward", "forward", "unavailable"]

SURROGATE_IDS: dict[str, int] = {"rectangular": 0, "ste": 1, "triangle": 2, "sigmoid": 3, "atan": 4, "dspike": 5}
_RESET_IDS = {"hard": 0, "soft": 1, "none": 2}
_BLOCK = 1024


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0").strip() not in ("", "0")


def unavailable(x: Tensor) -> str | None:
    """``None`` when Triton can run on ``x``'s device, else why not."""
    if x.dtype not in (torch.float32, torch.float64):
        return f"the Triton kernel runs float32/float64, got {x.dtype}"
    if x.device.type == "cpu" and not _interpreting():
        return "Triton runs CUDA tensors (CPU tensors only under TRITON_INTERPRET=1)"
    if x.device.type not in ("cpu", "cuda"):
        return f"Triton runs CUDA tensors, got device {x.device}"
    try:
        _kernels()
    except ImportError as exc:
        return f"triton is not installed ({exc})"
    return None


_KERNELS: dict[bool, tuple] = {}


def _kernels():
    """Compile (define) the kernels once per interpreter mode: ``triton.jit`` reads TRITON_INTERPRET when applied."""
    mode = _interpreting()
    if mode in _KERNELS:
        return _KERNELS[mode]
    path = os.path.join(os.path.dirname(__file__), "_triton_src.py")
    spec = importlib.util.spec_from_file_location(f"spikeforge.functional._triton_src_{int(mode)}", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _KERNELS[mode] = (mod._forward, mod._backward)
    return _KERNELS[mode]


def _params(x: Tensor, decay: Tensor, spec: NeuronSpec) -> Tensor:
    d = decay.reshape(()).to(x.dtype)
    gain = (1.0 - d) if spec.decay_input else torch.ones((), dtype=x.dtype, device=d.device)
    p = spec.surrogate.param
    c = {"atan": math.pi * p / 2, "dspike": 2 * math.tanh(p / 2)}.get(spec.surrogate.name, 0.0)
    amount = 0.0 if spec.soft_reset_amount is None else spec.soft_reset_amount
    rest = torch.tensor([spec.v_reset, amount, p, c], dtype=x.dtype, device=d.device)
    return torch.cat([d.reshape(1), gain.reshape(1), rest]).to(x.device)


def _threshold(thr: Tensor, x: Tensor, tv: bool) -> tuple[Tensor, int, int]:
    """``(buffer, t_stride, n_stride)``: a scalar is read with strides 0, anything else expanded to ``[N]`` or
    ``[T, N]``."""
    thr = thr.to(device=x.device, dtype=x.dtype)
    N = x[0].numel()
    if thr.numel() == 1:
        return thr.reshape(1).contiguous(), 0, 0
    if tv:
        return thr.expand(x.shape).contiguous(), N, 1
    return thr.expand(x.shape[1:]).contiguous(), 0, 1


def _launch(kernel, grid, *args, **meta) -> None:
    if _interpreting():
        kernel[grid](*args, **meta)
    else:
        kernel[grid](*args, **meta, enable_fp_fusion=False)


def _flags(spec: NeuronSpec) -> dict[str, object]:
    return {"RESET": _RESET_IDS[spec.reset], "TERNARY": spec.spike == "ternary",
            "SOFT_BY_THR": spec.reset == "soft" and spec.soft_reset_amount is None}


def forward(x: Tensor, v0: Tensor, decay: Tensor, thr: Tensor, spec: NeuronSpec, tv: bool
            ) -> tuple[Tensor, Tensor, Tensor]:
    fwd, _ = _kernels()
    x = x.contiguous()
    T, N = x.shape[0], x[0].numel()
    s, h = torch.empty_like(x), torch.empty_like(x)
    v = torch.empty_like(x[0])
    buf, ts, ns = _threshold(thr, x, tv)
    _launch(fwd, (triton_cdiv(N, _BLOCK),), x, v0.contiguous(), buf, _params(x, decay, spec), s, h, v, N, T, ts, ns,
            **_flags(spec), BLOCK=_BLOCK)
    return s, v, h


def backward(h: Tensor, g_s: Tensor, g_v: Tensor, g_h: Tensor | None, decay: Tensor, thr: Tensor, spec: NeuronSpec,
             tv: bool) -> tuple[Tensor, Tensor]:
    _, bwd = _kernels()
    h = h.contiguous()
    T, N = h.shape[0], h[0].numel()
    g_x = torch.empty_like(h)
    g_v0 = torch.empty_like(h[0])
    buf, ts, ns = _threshold(thr, h, tv)
    has_gh = g_h is not None
    gh = h if g_h is None else g_h.contiguous()  # any pointer when absent: HAS_GH=False never reads it
    _launch(bwd, (triton_cdiv(N, _BLOCK),), g_s.contiguous(), gh, g_v.contiguous(), h, buf, _params(h, decay, spec),
            g_x, g_v0, N, T, ts, ns, **_flags(spec), HAS_GH=has_gh,
            DETACH=spec.detach_reset, SG=SURROGATE_IDS[spec.surrogate.name], BLOCK=_BLOCK)
    return g_x, g_v0


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)
