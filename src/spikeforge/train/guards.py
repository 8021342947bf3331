"""Checks that stop a run with a clear message before bad data or a diverging optimiser corrupt it: label ranges
and finite samples of a split, non-finite parameters and gradients named, divergence diagnosed."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["check_split", "check_batch", "nonfinite_tensors", "diagnose_nonfinite", "gradient_norm"]


def check_batch(x: Tensor, y: Tensor, num_classes: int, where: str) -> None:
    """Labels integer in ``[0, num_classes)`` and samples finite; ``where`` names the split/batch in the error."""
    if y.is_floating_point() or y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"{where}: labels must be integers (class indices), got dtype {y.dtype}")
    if y.numel():
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= num_classes:
            bad = ((y < 0) | (y >= num_classes)).nonzero().flatten()[:5].tolist()
            raise ValueError(f"{where}: labels must lie in [0, {num_classes}), found {lo}..{hi} "
                             f"(first bad sample(s): {bad})")
    if x.is_floating_point() and not bool(torch.isfinite(x.sum())) and not bool(torch.isfinite(x).all()):
        flat = (~torch.isfinite(x)).reshape(x.shape[0], -1).any(1).nonzero().flatten()[:5].tolist()
        raise ValueError(f"{where}: samples contain NaN or Inf values (first bad sample(s): {flat})")


def check_split(split: Any, name: str, chunk: int = 4096) -> None:
    """:func:`check_batch` over an in-memory split (``x``, ``y``, ``num_classes``) in chunks."""
    x, y, k = split.x, split.y, int(split.num_classes)
    for i in range(0, len(y), chunk):
        try:
            check_batch(x[i:i + chunk], y[i:i + chunk], k, name)
        except ValueError as exc:  # report indices within the whole split
            raise ValueError(str(exc).replace("sample(s): [", f"sample(s) from index {i}: [")) from None


def nonfinite_tensors(named: dict[str, Tensor | None]) -> list[str]:
    """``"name (n NaN/Inf of m)"`` for every tensor with a non-finite entry."""
    out = []
    for name, t in named.items():
        if t is None or not t.is_floating_point():
            continue
        bad = int((~torch.isfinite(t.detach())).sum())
        if bad:
            out.append(f"{name} ({bad} NaN/Inf of {t.numel()})")
    return out


def gradient_norm(model: nn.Module) -> float:
    """Total 2-norm of all gradients (inf/nan when any gradient is non-finite)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    if not grads:
        return 0.0
    return float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g.detach(), 2.0) for g in grads])))


def diagnose_nonfinite(model: nn.Module, what: str, lr: float, grads: bool = False) -> str:
    """Explain a NaN/Inf that appeared at ``what`` (e.g. "loss at epoch 3, step 7"): name non-finite parameters
    (or gradients), else the largest-magnitude parameter, with advice."""
    if grads:
        bad = nonfinite_tensors({n: p.grad for n, p in model.named_parameters()})
        if bad:
            return (f"non-finite gradient(s) at {what}: {', '.join(bad[:5])}"
                    f"{f' and {len(bad) - 5} more' if len(bad) > 5 else ''}; lower optim.lr (now {lr:.4g}) or set "
                    "grad_clip")
    bad = nonfinite_tensors(dict(model.named_parameters()))
    bad += nonfinite_tensors({n: b for n, b in model.named_buffers()})
    if bad:
        return (f"non-finite parameter(s)/buffer(s) at {what}: {', '.join(bad[:5])}"
                f"{f' and {len(bad) - 5} more' if len(bad) > 5 else ''} — written by an earlier optimiser step; "
                f"lower optim.lr (now {lr:.4g}) or set grad_clip")
    largest, where = 0.0, "-"
    for n, p in model.named_parameters():
        if p.numel():
            m = float(p.detach().abs().max())
            if m > largest:
                largest, where = m, n
    size = f"{largest:.3g}" if math.isfinite(largest) else str(largest)
    return (f"NaN/Inf values at {what} although the batch and every parameter are finite: activations overflowed "
            f"(largest parameter |{where}| = {size}); the run diverged — lower optim.lr (now {lr:.4g}) or set "
            "grad_clip")
