"""Batch sources: the boundary between the data and the training loop.

* :class:`InMemoryBatches` - splits held as tensors (digits, MNIST, CIFAR, event frames, point clouds): index
  slices of a per-epoch permutation, no worker processes (fast for small samples).
* :class:`StreamingBatches` - splits read from disk per sample (``imagenet``): a torch ``DataLoader`` with
  ``data.workers`` worker processes (persistent across epochs), pinned memory on CUDA, and
  :class:`ShardedBatchSampler` for the DDP sharding.

Both produce exactly the same sample order: the global permutation of epoch ``e`` comes from the trainer's
shuffle generator (seeded from ``(seed, e)``, shared by all ranks); global batch ``i`` is
``perm[i*G:(i+1)*G]`` and rank ``r`` of ``R`` takes the contiguous slice ``[r*G/R, (r+1)*G/R)`` (the
DistributedSampler layout on a shared permutation); the incomplete last batch is dropped. Streamed samples
also receive a per-sample seed :func:`~spikeforge.data.imagefolder.sample_seed` for their random crop, so
the batches do not depend on the number of workers and a resumed run replays them exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor

from ..data.imagefolder import LazyImages, sample_seed
from .distributed import DistInfo

__all__ = ["InMemoryBatches", "StreamingBatches", "ShardedBatchSampler", "make_batch_source", "eval_batches"]


def _rank_slice(perm: Tensor, step: int, global_batch: int, dist: DistInfo) -> Tensor:
    per_rank = global_batch // dist.world_size
    idx = perm[step * global_batch:(step + 1) * global_batch]
    return idx[dist.rank * per_rank:(dist.rank + 1) * per_rank]


class InMemoryBatches:
    """Batches ``(x[idx], y[idx])`` of an in-memory split (CPU tensors; the trainer moves them)."""

    def __init__(self, split: Any, global_batch: int, dist: DistInfo) -> None:
        self.split, self.global_batch, self.dist = split, int(global_batch), dist
        self.steps_per_epoch = len(split) // self.global_batch

    def epoch(self, shuffle: torch.Generator, seed_base: int) -> Iterator[tuple[Tensor, Tensor]]:
        perm = torch.randperm(len(self.split), generator=shuffle)
        for i in range(self.steps_per_epoch):
            idx = _rank_slice(perm, i, self.global_batch, self.dist)
            yield self.split.x[idx], self.split.y[idx]

    def close(self) -> None:
        """Nothing to release."""


class ShardedBatchSampler(torch.utils.data.Sampler):
    """This rank's share of each global batch as ``[(index, sample_seed), ...]``; call :meth:`set_epoch` with
    the epoch's permutation and seed base before iterating."""

    def __init__(self, n: int, global_batch: int, dist: DistInfo) -> None:
        self.n, self.global_batch, self.dist = int(n), int(global_batch), dist
        self.steps = self.n // self.global_batch
        self.perm: Tensor | None = None
        self.seed_base = 0

    def set_epoch(self, perm: Tensor, seed_base: int) -> None:
        if perm.numel() != self.n:
            raise ValueError(f"permutation has {perm.numel()} entries for {self.n} samples")
        self.perm, self.seed_base = perm, int(seed_base)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        if self.perm is None:
            raise RuntimeError("ShardedBatchSampler.set_epoch must be called before iterating")
        for i in range(self.steps):
            idx = _rank_slice(self.perm, i, self.global_batch, self.dist).tolist()
            yield [(j, sample_seed(self.seed_base, j)) for j in idx]

    def __len__(self) -> int:
        return self.steps


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # decoding is per process; avoid oversubscribing the cores


def _loader_kwargs(workers: int, pin_memory: bool) -> dict[str, Any]:
    kw: dict[str, Any] = {"num_workers": int(workers), "pin_memory": bool(pin_memory)}
    if workers > 0:
        kw.update(worker_init_fn=_worker_init, prefetch_factor=2)
    return kw


class StreamingBatches:
    """Batches of a streamed split through a persistent-worker ``DataLoader`` (see the module docstring)."""

    def __init__(self, split: Any, global_batch: int, dist: DistInfo, workers: int, pin_memory: bool) -> None:
        if workers < 0:
            raise ValueError(f"data.workers must be >= 0, got {workers}")
        self.split, self.global_batch = split, int(global_batch)
        self.steps_per_epoch = len(split) // self.global_batch
        self.sampler = ShardedBatchSampler(len(split), global_batch, dist)
        self.loader = torch.utils.data.DataLoader(split.dataset, batch_sampler=self.sampler,
                                                  persistent_workers=workers > 0,
                                                  **_loader_kwargs(workers, pin_memory))

    def epoch(self, shuffle: torch.Generator, seed_base: int) -> Iterator[tuple[Tensor, Tensor]]:
        self.sampler.set_epoch(torch.randperm(len(self.split), generator=shuffle), seed_base)
        yield from self.loader

    def close(self) -> None:
        """Stop the persistent workers."""
        it = getattr(self.loader, "_iterator", None)
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()
        self.loader._iterator = None


def make_batch_source(split: Any, global_batch: int, dist: DistInfo, *, workers: int = 0,
                      pin_memory: bool = False) -> InMemoryBatches | StreamingBatches:
    """:class:`StreamingBatches` for a streamed split (``split.streaming``), else :class:`InMemoryBatches`."""
    if getattr(split, "streaming", False):
        return StreamingBatches(split, global_batch, dist, workers, pin_memory)
    return InMemoryBatches(split, global_batch, dist)


def eval_batches(x: Any, y: Tensor, lo: int, hi: int, batch_size: int, *, workers: int = 0,
                 pin_memory: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
    """Consecutive batches of samples ``lo..hi-1``: tensor slices, or a ``DataLoader`` over a streamed view."""
    if isinstance(x, LazyImages):
        subset = torch.utils.data.Subset(x.dataset, range(lo, hi))
        loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, shuffle=False,
                                             **_loader_kwargs(workers, pin_memory))
        yield from loader
        return
    for i in range(lo, hi, batch_size):
        j = min(i + batch_size, hi)
        yield x[i:j], y[i:j]
