"""Peak-memory reading of the benchmarks: it must see a known allocation, also on a repeated (warm) call.

No timing assertions.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from spikeforge.bench.memory import peak_extra_memory, resident_kib
from spikeforge.bench.step import StepConfig, measure_step

MiB = 2**20
linux = pytest.mark.skipif(not (os.access("/proc/self/clear_refs", os.W_OK) and Path("/proc/self/status").exists()),
                           reason="VmHWM reset needs Linux /proc/self/clear_refs")


@linux
def test_one_large_tensor_is_seen():
    reading = peak_extra_memory(lambda: float(torch.ones(50 * 2**20).sum()))  # 200 MiB of float32
    assert reading.peak_bytes is not None and 190 * MiB <= reading.peak_bytes < 260 * MiB, reading
    assert "VmHWM" in reading.method


@linux
def test_a_repeated_step_is_seen_although_glibc_kept_its_pages():
    """Many mid-sized tensors (below glibc's raised mmap threshold) with survivors between them: after the first
    call their freed chunks stay cached in the heap, and a reading without ``malloc_trim`` sees ~nothing."""
    survivors: list[torch.Tensor] = []

    def step() -> None:
        held = []
        for _ in range(50):
            held.append(torch.ones(2**20))  # 4 MiB each, 200 MiB held at once
            survivors.append(torch.ones(2**16))  # 256 KiB that outlives the step, between the big chunks
        del held

    float(torch.ones(4 * 2**20).sum())  # a freed 16 MiB mmap raises glibc's mmap threshold above 4 MiB
    first = peak_extra_memory(step).peak_bytes
    second = peak_extra_memory(step).peak_bytes
    assert first is not None and second is not None
    assert first >= 190 * MiB and second >= 190 * MiB, (first / MiB, second / MiB)
    assert resident_kib("VmRSS") is not None


@linux
def test_the_step_benchmark_counts_its_activations():
    """A VGG-4 step holds at least its conv outputs: T*B*(64*32^2 + ...) floats; the reading must be at least the
    first layer's saved activations (a lower bound computed from the shapes) and not the near-zero of a reading
    that reuses cached pages."""
    cfg = StepConfig(model="vgg4", steps=2, batch=4, input_size=32, repeats=1, threads=1)
    m = measure_step("eager", cfg)
    first_conv_out = cfg.steps * cfg.batch * 64 * 32 * 32 * 4
    assert m.peak_mem_bytes is not None and m.peak_mem_bytes >= 3 * first_conv_out, m.peak_mem_bytes
    assert "VmHWM" in m.memory_method
