"""Smoke tests of the neuron benchmark at tiny sizes (no timing assertions: the CPU is shared)."""

from __future__ import annotations

import sys

import pytest

from spikeforge.bench import (
    BenchConfig,
    LIFParams,
    available_libraries,
    check_agreement,
    format_table,
    measure,
    measure_in_subprocess,
)
from spikeforge.bench.neuron import format_agreement, neuron_fn
from spikeforge.cli.main import main

TINY = BenchConfig(case="conv", shape=(4, 2, 3, 5, 5), repeats=2, warmup=1)


def test_spikeforge_paths_and_eager_agree_with_reference():
    rows = check_agreement(["spikeforge", "spikeforge-pyfused", "eager"], TINY)
    assert [r.library for r in rows] == ["spikeforge", "spikeforge-pyfused", "eager"]
    for r in rows:
        assert r.spikes == r.reference_spikes > 0 and r.mismatches == 0
        assert r.grad_compared and r.grad_rel_diff < 1e-5
    assert "| eager |" in format_agreement(rows)


def test_linear_case_gradient_is_on_the_weight():
    cfg = BenchConfig(case="linear", shape=(6, 2, 16), repeats=1, warmup=0)
    (row,) = check_agreement(["eager"], cfg)
    assert row.mismatches == 0 and row.grad_rel_diff < 1e-5


def test_installed_peers_run_the_same_neuron():
    peers = available_libraries(("spikingjelly", "snntorch"))
    if not peers:
        pytest.skip("no peer library installed (make bench installs them)")
    for r in check_agreement(peers, TINY):
        assert r.mismatches == 0, f"{r.library} fires differently from the reference"
        assert r.grad_rel_diff < 1e-5, f"{r.library} gradient differs: {r.grad_rel_diff}"


def test_measure_records_every_repeat_and_table_has_ratios():
    ms = [measure(lib, TINY, memory=False) for lib in ("spikeforge", "spikeforge-reference")]
    for m in ms:
        assert len(m.fwd_s) == len(m.total_s) == TINY.repeats
        assert all(t >= f > 0 for f, t in zip(m.fwd_s, m.total_s))
        assert 0 < m.spike_rate < 1
    table = format_table(ms)
    assert "| spikeforge | " in table and "1.00x" in table


def test_subprocess_measures_peak_memory():
    m = measure_in_subprocess("spikeforge", TINY, timeout=300)
    assert m.library == "spikeforge" and len(m.total_s) == TINY.repeats
    if sys.platform.startswith("linux"):
        assert m.peak_mem_bytes is not None and m.peak_mem_bytes >= 0 and "VmHWM" in m.mem_method


def test_bad_configs_are_rejected():
    with pytest.raises(ValueError, match="tau"):
        LIFParams(tau=1.0)
    with pytest.raises(ValueError, match="linear case"):
        BenchConfig(case="linear", shape=(2, 2, 2, 2))
    with pytest.raises(ValueError, match="case"):
        BenchConfig(case="resnet")
    with pytest.raises(ValueError, match="unknown library"):
        neuron_fn("brian2", LIFParams())


def test_cli_bench_runs(capsys):
    assert main(["bench", "--no-memory", "--steps", "3", "--shape", "2", "3", "4", "4", "--repeats", "1",
                 "--check"]) == 0
    out = capsys.readouterr().out
    assert "spikeforge-reference" in out and "mismatching" in out
