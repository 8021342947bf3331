"""Peak extra memory of one call: what a training step (or a forward+backward) adds on top of what is resident.

CPU (Linux): the process's resident set is read (``VmRSS``) after ``gc.collect()`` and after glibc has been
asked to return its cached free memory to the kernel (``malloc_trim(0)``); then the kernel's high-water mark
``VmHWM`` is reset to the current resident set (``/proc/self/clear_refs`` ← ``5``), the call runs, and the
reading is ``VmHWM − VmRSS``: the largest number of bytes resident at once during the call beyond those resident
before it. Without the trim a second step would reuse the pages glibc kept from the first one (freed chunks below
its dynamic mmap threshold, up to 32 MiB each, stay resident) and the reading would be near 0 — the flaw this
module fixes. The reading counts every allocation that touches pages (torch tensors, Python objects, library
buffers); ``tracemalloc`` is no alternative, it does not see torch's allocations.

CUDA: ``torch.cuda.max_memory_allocated() − torch.cuda.memory_allocated()`` around the call (after
``torch.cuda.reset_peak_memory_stats()``): bytes of tensors allocated by torch, not the caching allocator's
reserve and not the CUDA context.

Other systems: ``None`` (the method string says why).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import torch

__all__ = ["MemoryReading", "peak_extra_memory", "release_cached_heap", "reset_high_water_mark", "resident_kib"]

CPU_METHOD = "VmHWM - VmRSS around the call, after gc.collect() and malloc_trim(0) (Linux)"
CUDA_METHOD = "torch.cuda.max_memory_allocated() - torch.cuda.memory_allocated() around the call"


@dataclass(frozen=True)
class MemoryReading:
    peak_bytes: int | None  # None: not measurable here
    method: str


def resident_kib(key: str = "VmRSS") -> int | None:
    """A ``/proc/self/status`` memory field in KiB (``VmRSS``, ``VmHWM``); ``None`` off Linux."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


@cache
def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        fn = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    fn.argtypes, fn.restype = [ctypes.c_size_t], ctypes.c_int
    return fn


def release_cached_heap() -> bool:
    """``gc.collect()`` and glibc's ``malloc_trim(0)`` (free heap pages back to the kernel); False without glibc."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


def reset_high_water_mark() -> bool:
    """Reset this process's ``VmHWM`` to its current ``VmRSS`` (``/proc/self/clear_refs``); False off Linux."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_extra_memory(fn: Callable[[], object], device: str | torch.device = "cpu") -> MemoryReading:
    """Run ``fn()`` once and return the peak memory it needed beyond what was resident before (module docstring).

    The result of ``fn`` is dropped before returning. Call it in a fresh process for a number that does not
    depend on what ran before (the benchmarks do: one subprocess per library).
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        gc.collect()
        torch.cuda.synchronize(dev)
        base = torch.cuda.memory_allocated(dev)
        torch.cuda.reset_peak_memory_stats(dev)
        fn()
        torch.cuda.synchronize(dev)
        return MemoryReading(torch.cuda.max_memory_allocated(dev) - base, CUDA_METHOD)
    if dev.type != "cpu":
        fn()
        return MemoryReading(None, f"unavailable on {dev.type}")
    trimmed = release_cached_heap()
    before = resident_kib("VmRSS")
    if before is None or not reset_high_water_mark():
        fn()
        return MemoryReading(None, "unavailable (no /proc/self/clear_refs: Linux only)")
    fn()
    peak = resident_kib("VmHWM")
    if peak is None:
        return MemoryReading(None, "unavailable (no VmHWM)")
    method = CPU_METHOD if trimmed else CPU_METHOD.replace(" and malloc_trim(0)", " (no glibc: no malloc_trim)")
    return MemoryReading(max(0, peak - before) * 1024, method)
