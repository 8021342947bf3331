"""Whole-step benchmark at tiny sizes: same network in every library, report writer, --quick smoke run.

No timing assertions (the CPU is shared).
"""

from __future__ import annotations

import importlib.util
import math
import sys
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
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("model", ["vgg4", "resnet19"])
def test_every_library_computes_the_same_network(model):
    cfg = StepConfig(model=model, steps=2, batch=2, input_size=16 if model == "vgg4" else 8, width=0.125,
                     repeats=1, threads=1)
    rows = check_step_agreement(available_step_libraries(), cfg)
    assert {"spikeforge", "spikeforge-compressed", "spikeforge-recompute", "eager"} <= {r.library for r in rows}
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
                        "--skip", "inference", "pointnet", "profiles", "--out", str(out)]) == 0
    text = out.read_text()
    assert "## Whole training step (generated)" in text and "uptime" in text
    assert "| step >= 1.2x faster than the fastest peer at T = 4 | vgg4 |" in text
    assert "| eager |" in text


def _m(lib, median_ms, mem_mib, model="vgg4", steps=4):
    from spikeforge.bench.step import StepMeasurement

    return StepMeasurement(lib, "x", model, steps, 32, 1, [median_ms / 1e3] * 3, [median_ms / 2e3] * 3,
                           None if mem_mib is None else int(mem_mib * 2**20), 0.0, "test")


def test_step_targets_verdicts_and_profiles_of_misses():
    script = _load_script()
    main = {"vgg4": [_m("spikeforge", 500, 100), _m("spikeforge-compressed", 520, 40), _m("snntorch", 650, 300),
                     _m("eager", 600, 320), _m("ann", 100, 10), _m("spikeforge-recompute", 700, 30)]}
    sweep = {("vgg4", 1): [_m("spikeforge", 200, None, steps=1), _m("eager", 150, None, steps=1)],
             ("vgg4", 8): [_m("spikeforge", 900, None, steps=8), _m("eager", 1000, None, steps=8)]}
    asked = []

    def profile(model, t, lib, by):
        asked.append((model, t, lib, by))
        return f"profile {lib} T={t} {by}"

    rows = {r.target.split(" ")[0] + r.target.split(" ")[-1]: r for r in script.step_targets(main, sweep, profile)}
    speed = rows["step4"]  # 600 / 500 = 1.2x vs eager: met, no profile
    assert speed.met is True and "1.20x vs eager" in speed.measured and speed.explanation == ""
    any_t = rows["no1..8"]  # T = 1: 150 / 200 = 0.75x: missed, profiled at the worst T
    assert any_t.met is False and "T=1: 0.75x" in any_t.measured and "T=1" in any_t.explanation
    mem = rows["peaktime"]  # compressed: 40 / 300 = 0.13x of snntorch's at 0.80x its time: met
    assert mem.met is True and "0.13x snntorch's" in mem.measured
    comp = rows["compressiontime"]  # recompute: 320 / 30 = 10.7x at 700 / 600 = 1.17x: met (judged on it)
    assert comp.met is True and "spikeforge-recompute: 10.67x less memory at 1.17x" in comp.measured
    assert "spikeforge-compressed: 8.00x less memory at 0.87x" in comp.measured
    assert asked == [("vgg4", 1, "spikeforge", "time")]


def test_inference_and_pointnet_rows():
    from spikeforge.bench.targets import InferenceResult, PointNetResult

    script = _load_script()
    rows = script.inference_targets([InferenceResult("mpbn", [1.0, 1.1, 1.05], [1.0, 1.0, 1.0], ["op 1 ms"]),
                                     InferenceResult("ternary", [0.99], [1.0], ["op 2 ms"])])
    assert [r.met for r in rows] == [False, True] and rows[0].explanation == "op 1 ms" and rows[1].explanation == ""
    row = script.pointnet_target(PointNetResult([0.3, 0.2, 0.25], [1.0, 1.0, 1.0], 4, ["op"]))
    assert row.met is True and row.measured.startswith("0.25x")
    assert script.pointnet_target(None).met is None
    assert "not measured" in script.pointnet_target(None).markdown()
