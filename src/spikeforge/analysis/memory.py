"""Up-front activation-memory estimate, so a request that cannot fit (``spikeforge eval --T 1000``) is refused
with its size instead of failing deep inside an allocation."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["activation_bytes", "available_bytes", "check_fits"]


@torch.no_grad()
def activation_bytes(model: nn.Module, x: Tensor) -> int:
    """Bytes of all leaf-module outputs of one forward on ``x`` (an upper bound of an inference forward's
    activation peak: not every output is alive at once). Measured on a small input and scaled linearly by the
    caller (activations grow linearly in T and B)."""
    total = 0

    def hook(_m: nn.Module, _i: object, out: object) -> None:
        nonlocal total
        if isinstance(out, Tensor):
            total += out.numel() * out.element_size()

    handles = [m.register_forward_hook(hook) for m in model.modules() if next(m.children(), None) is None]
    was_training = model.training
    try:
        model.eval()
        model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


def available_bytes(device: torch.device | str) -> int | None:
    """Free memory on ``device`` (CUDA: ``mem_get_info``; CPU on Linux: ``MemAvailable``), None if unknown."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    meminfo = Path("/proc/meminfo")
    if device.type == "cpu" and meminfo.is_file():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    if device.type == "cpu" and hasattr(os, "sysconf"):
        try:
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError):
            return None
    return None


def check_fits(model: nn.Module, one_step_one_sample: Tensor, T: int, batch_size: int,
               device: torch.device | str, what: str) -> int:
    """Estimate the activations of a forward at ``T`` x ``batch_size`` from one step of one sample and raise a
    ``MemoryError`` naming ``what`` and the size when they exceed the free memory of ``device``. Returns the
    estimate in bytes."""
    need = activation_bytes(model, one_step_one_sample) * T * batch_size
    free = available_bytes(device)
    if free is not None and need > free:
        fit = max(0, int(batch_size * free / need))
        advice = f"lower --batch-size to {fit} or less" if fit >= 1 else "lower --T"
        raise MemoryError(f"{what} needs about {need / 2**30:.1f} GiB of activations (T={T}, batch {batch_size}) "
                          f"but {free / 2**30:.1f} GiB is free on {torch.device(device)}; {advice}")
    return need
