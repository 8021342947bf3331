"""Accuracy at every inference length T = 1..T_max in one pass — the "train at T = 1, infer at T > 1" protocol
of Spiking PointNet (Ren et al., NeurIPS 2023, arXiv:2310.06232; methods.md §2, §11 item 15).

**Why one pass is exact.** Run the model once at ``T_max`` and read out the first T steps:
``acc(T) = acc(argmax readout(z[:T]))``. This equals a separate evaluation at length T because a spiking network
of this library is *causal in time*: every call starts from a fresh state (zero, or the configured random initial
membrane), and the output at step t depends only on inputs at steps ≤ t — neurons integrate forwards,
stateless layers act per step, BN in eval mode uses fixed running statistics, and the per-step BN variants
(BNTT, TEBN, per-step MPBN statistics, per-step thresholds) index step t only. Preconditions checked or enforced:

* the model is put in ``eval()`` mode for the sweep (and restored afterwards) — training-mode BN pools
  batch statistics over all T steps, and dropout draws fresh masks, both breaking the equality;
* the encoder must be causal too: the first T steps of ``encode(x, T_max)`` must equal ``encode(x, T)``
  (direct encoding repeats the input, so it is; a rate encoder with a seeded generator is, a
  normalise-by-T encoder is not);
* with Spiking PointNet's membrane perturbation at test time (``init='uniform', init_when='always'``) each
  neuron draws its initial membrane once per call with shape ``[B, ...]`` independent of T, so the sweep equals
  separate evaluations run from the same random state (and is one sample of that random evaluation otherwise).

The accumulated readout uses ``cumsum`` over time: ``mean`` divides by T, ``sum`` does not (same argmax);
``log_softmax_mean`` (the official Spiking PointNet readout) accumulates per-step log-softmax and divides by T.

**Votes** (the official Spiking PointNet test, DayongRen/Spiking-PointNet ``test_classification.py``,
``--num_votes 3``): ``votes = V`` runs the model V times on the same batch — each run draws a fresh random initial
membrane when the neurons use one at test time (MPP) — and predicts ``argmax (1/V) Σ_v readout_v``, the mean of
the V readouts (log-softmax averaged over T for that readout). Nothing else changes between the runs (no
re-sampling or augmentation of the points), so with a deterministic model all votes are equal.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ..encode import READOUT_MODES, direct

__all__ = ["sweep_accuracy", "cumulative_readout", "check_votes"]

Encoder = Callable[[Tensor, int], Tensor]


def cumulative_readout(logits: Tensor, readout: str = "mean") -> Tensor:
    """``[T, B, K]`` per-step logits -> ``[T, B, K]`` whose entry ``T-1`` is the readout of the first T steps."""
    if logits.ndim != 3:
        raise ValueError(f"expected per-step logits [T, B, K], got shape {tuple(logits.shape)}")
    _check_readout(readout)
    acc = (logits.log_softmax(-1) if readout == "log_softmax_mean" else logits).cumsum(0)
    if readout == "sum":
        return acc
    steps = torch.arange(1, logits.shape[0] + 1, device=logits.device, dtype=logits.dtype)
    return acc / steps.view(-1, 1, 1)


def _check_readout(readout: str) -> None:
    if readout not in READOUT_MODES:
        raise ValueError(f"readout must be 'mean' or 'sum' (over logits) or 'log_softmax_mean', got {readout!r}")


def check_votes(votes: int) -> int:
    if isinstance(votes, bool) or not isinstance(votes, int) or votes < 1:
        raise ValueError(f"votes (forward passes averaged per test batch) must be an integer >= 1, got {votes!r}")
    return votes


def _batches(data: Any) -> Iterable[tuple[Tensor, Tensor]]:
    if isinstance(data, tuple) and len(data) == 2 and isinstance(data[0], Tensor):
        return [data]  # a single (x, y) batch
    return data


@torch.no_grad()
def sweep_accuracy(model: nn.Module, loader_or_batches: Any, T_max: int, encode: Encoder | None = direct,
                   readout: str = "mean", forward: Callable[[nn.Module, Tensor], Tensor] | None = None,
                   device: torch.device | str | None = None, votes: int = 1) -> dict[int, float]:
    """Top-1 accuracy (fraction in [0, 1]) for every T = 1..T_max from one model run per batch at ``T_max``.

    ``loader_or_batches``: a DataLoader or any iterable of ``(x, y)`` batches (or one ``(x, y)`` tuple).
    ``encode(x, T)`` turns a batch into ``[T, B, ...]`` (default: direct encoding); ``encode=None`` means the
    batches are already time-first ``[T_max, B, ...]``. ``forward(model, x)`` returns per-step logits
    ``[T, B, K]`` (default ``model(x)``). ``device`` defaults to the model's parameters' device. ``votes``: mean
    of that many runs' readouts per batch (see the module docstring).
    """
    if int(T_max) < 1:
        raise ValueError(f"T_max must be >= 1, got {T_max}")
    T_max = int(T_max)
    _check_readout(readout)
    votes = check_votes(votes)
    if device is None:
        p = next(model.parameters(), None)
        device = p.device if p is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    correct = torch.zeros(T_max, dtype=torch.long)
    total = 0
    try:
        for batch in _batches(loader_or_batches):
            x, y = batch[0].to(device), batch[1].to(device)
            seq = encode(x, T_max) if encode is not None else x
            if seq.shape[0] != T_max:
                raise ValueError(f"the encoded batch has {seq.shape[0]} time steps, expected T_max = {T_max}")
            pooled: Tensor | None = None
            for _ in range(votes):
                logits = forward(model, seq) if forward is not None else model(seq)
                if not isinstance(logits, Tensor) or logits.ndim != 3 or logits.shape[0] != T_max:
                    got = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
                    raise ValueError(f"the model must return per-step logits [T_max={T_max}, B, K], got {got}")
                r = cumulative_readout(logits.float(), readout)
                pooled = r if pooled is None else pooled + r
            assert pooled is not None  # votes >= 1
            pred = (pooled / votes).argmax(-1)  # [T_max, B]
            correct += (pred == y.view(1, -1)).sum(1).cpu()
            total += int(y.shape[0])
    finally:
        model.train(was_training)
    if total == 0:
        raise ValueError("no batches to evaluate")
    return {t + 1: float(correct[t]) / total for t in range(T_max)}
