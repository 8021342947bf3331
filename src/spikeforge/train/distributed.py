"""Multi-process training under ``torchrun``: process-group setup, sharded batches and synchronised BN.

``torchrun --nproc_per_node N spikeforge train RECIPE`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; the trainer
then wraps the model in ``DistributedDataParallel`` (gloo on CPU, NCCL on CUDA). Each global batch of
``batch_size`` samples is split into equal contiguous slices, one per rank (the DistributedSampler layout on a
shared permutation), so gradients averaged by DDP equal those of one process on the whole batch.
"""

from __future__ import annotations

import os
import types
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..layers import BatchNorm1d, BatchNorm2d, TDBatchNorm2d

__all__ = ["DistInfo", "init_distributed", "shutdown", "all_reduce_sum", "convert_sync_bn"]


@dataclass
class DistInfo:
    world_size: int = 1
    rank: int = 0
    local_rank: int = 0
    initialised_here: bool = False

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device_type: str) -> DistInfo:
    """Join the process group described by torchrun's environment (no-op for a single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    made = False
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
        made = True
    return DistInfo(world, rank, local, made)


def shutdown(info: DistInfo, synchronize: bool = True) -> None:
    """Leave the process group. After a normal run all ranks meet at a barrier first: a rank that tears gloo down
    while another still talks to it can abort ("terminate called without an active exception"). After an error
    (``synchronize=False``) the other ranks may never arrive, so there is no barrier."""
    if info.initialised_here and dist.is_initialized():
        if synchronize:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_sum(values: list[float], info: DistInfo, device: torch.device) -> list[float]:
    """Sum a list of numbers over processes (identity for one process)."""
    if not info.enabled:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def _sync_bn_forward(self: nn.modules.batchnorm._BatchNorm, x: Tensor) -> Tensor:
    """Time-shared BN on ``[T, B, C, ...]`` with statistics over T, the whole global batch and space:
    ``mean = sum_all(x) / n``, ``var = sum_all(x^2) / n - mean^2``, sums all-reduced (differentiably) over
    processes; running statistics use the unbiased global variance, as torch's BN."""
    if not self.training or not dist.is_initialized():
        return type(self).forward(self, x)
    from torch.distributed.nn.functional import all_reduce

    T, B = x.shape[:2]
    flat = x.flatten(0, 1)  # [T*B, C, ...]
    dims = [0] + list(range(2, flat.ndim))
    count = torch.tensor([float(flat.numel() // flat.shape[1])], device=x.device, dtype=x.dtype)
    stats = torch.cat([flat.sum(dims), (flat * flat).sum(dims), count])
    stats = all_reduce(stats)
    C = flat.shape[1]
    n = stats[-1]
    mean = stats[:C] / n
    var = stats[C:2 * C] / n - mean * mean
    if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
        with torch.no_grad():
            m = 0.1 if self.momentum is None else self.momentum
            self.running_mean.mul_(1 - m).add_(m * mean.detach())
            self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1).clamp(min=1))
            if self.num_batches_tracked is not None:
                self.num_batches_tracked.add_(1)
    shape = [1, C] + [1] * (flat.ndim - 2)
    weight = self.effective_weight() if isinstance(self, TDBatchNorm2d) else self.weight
    y = (flat - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
    if weight is not None:
        y = y * weight.view(shape)
    if self.bias is not None:
        y = y + self.bias.view(shape)
    return y.reshape((T, B) + tuple(y.shape[1:]))


def convert_sync_bn(model: nn.Module) -> int:
    """Make every time-shared BN (BatchNorm1d/2d, tdBN) compute global-batch statistics across processes.

    The modules keep their class and ``state_dict`` keys (the forward is rebound per instance), so checkpoints
    are unchanged. Per-step norms (BNTT, MPBN) keep per-process statistics. Returns the number converted.
    """
    n = 0
    for m in model.modules():
        if isinstance(m, (BatchNorm1d, BatchNorm2d)):
            m.forward = types.MethodType(_sync_bn_forward, m)  # type: ignore[method-assign]
            n += 1
    return n

