"""Whole-step benchmark at tiny sizes: same network in every library, report writer, --quick smoke run.

No timing assertions (the CPU is shared).
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch

from spikeforge.bench.step import (
    StepConfig,
    available_step_libraries,
    build,
    check_step_agreement,
    measure_step,
)

TINY = StepConfig(model="resnet19", steps=2, batch=2, input_size=8, width=0.125, repeats=1, threads=1)
ROOT = Path(__file__).resolve().parents[2]


def _load_script():
    spec = importlib.util.spec_from_file_location("bench_step_script", ROOT / "benchmarks" / "step.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("model", ["vgg4", "resnet19"])
def test_every_library_computes_the_same_network(model):
    cfg = StepConfig(model=model, steps=2, batch=2, input_size=16 if model == "vgg4" else 8, width=0.125,
                     repeats=1, threads=1)
    rows = check_step_agreement(available_step_libraries(), cfg)
    assert {"spikeforge", "spikeforge-compressed", "eager"} <= {r.library for r in rows}
    for r in rows:
        assert r.spikes == r.reference_spikes > 0, r
        assert r.logits_max_abs_diff < 1e-5
        if r.library == "norse":
            assert math.isnan(r.grad_rel_diff)
        else:
            assert r.grad_rel_diff < 1e-4, r


def test_weights_are_copied_into_the_peer_network():
    sf, eager = build("spikeforge", TINY), build("eager", TINY)
    a = [p for p in sf.parameters()]
    b = [p for p in eager.parameters()]
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def test_measure_step_trains_and_reports():
    m = measure_step("eager", TINY, memory=False)
    assert len(m.step_s) == 1 and m.step_s[0] >= m.fwd_s[0] > 0 and m.threads == 1


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="model must be one of"):
        StepConfig(model="vgg16")
    with pytest.raises(ValueError, match="unknown library"):
        build("tensorflow", TINY)


def test_write_section_replaces_only_its_block(tmp_path):
    script = _load_script()
    out = tmp_path / "b.md"
    out.write_text("# Benchmarks\n\nneuron results\n")
    script.write_section(out, "first")
    script.write_section(out, "second")
    text = out.read_text()
    assert text.count(script.BEGIN) == 1 and "second" in text and "first" not in text
    assert text.startswith("# Benchmarks\n\nneuron results")


def test_quick_run_writes_the_report(tmp_path):
    script = _load_script()
    out = tmp_path / "docs" / "benchmarks.md"
    assert script.main(["--quick", "--models", "vgg4", "--libraries", "spikeforge", "eager", "--sweep",
                        "--out", str(out)]) == 0
    text = out.read_text()
    assert "## Whole training step (generated)" in text and "uptime" in text
    assert "| step >= 1.2x faster than the fastest peer at T = 4 | vgg4 |" in text
    assert "| eager |" in text
