"""Folded-inference and Spiking PointNet measurements at tiny sizes, the profile helpers. No timing assertions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge.bench.targets import (
    InferenceConfig,
    PointNetConfig,
    measure_folded_inference,
    measure_pointnet,
    saved_tensors_by_module,
    top_ops,
    trained_vgg4,
)


def test_folded_inference_runs_every_variant_against_vanilla():
    cfg = InferenceConfig(steps=2, batch=2, input_size=16, repeats=2, threads=None, profile_top=2)
    res = measure_folded_inference(cfg)
    assert [r.variant for r in res] == ["mpbn", "ternary", "real-spike"]
    for r in res:
        assert len(r.variant_s) == len(r.vanilla_s) == 2 and r.ratio > 0 and len(r.profile) == 3
        assert r.profile[0].startswith("neurons: ")  # which backend the folded neurons ran on


def test_trained_vgg4_has_a_trained_state_that_folds_exactly():
    from spikeforge import fold
    from spikeforge.folding import verify_fold

    cfg = InferenceConfig(steps=2, batch=2, input_size=16)
    model = trained_vgg4("real-spike", cfg)
    amps = [p for n, p in model.named_parameters() if "amplitude" in n]
    assert amps and not all(torch.equal(a, torch.ones_like(a)) for a in amps)  # not the init any more
    x = torch.rand(2, 2, 3, 16, 16)
    report = verify_fold(model, fold(model), x)
    assert report.max_dev < 1e-5


def test_pointnet_epochs_at_both_t():
    res = measure_pointnet(PointNetConfig(batch=2, points=16, batches=1, epochs=2, threads=None, profile_top=1))
    assert len(res.short_s) == len(res.long_s) == 2 and res.long_steps == 4 and len(res.profile) == 2


def test_saved_tensors_are_attributed_to_their_module():
    model = nn.Sequential(nn.Linear(256, 256), nn.ReLU())
    x = torch.randn(1024, 256, requires_grad=True)  # 1 MiB, saved by the Linear (weight grad)
    rows = saved_tensors_by_module(model, lambda: model(x).sum().backward())
    assert rows[0].startswith("Linear 1 MiB") and any(r.startswith("ReLU 1 MiB") for r in rows)


def test_top_ops_names_the_dominant_op():
    a = torch.randn(256, 256)
    rows = top_ops(lambda: [a @ a for _ in range(20)], top=2)
    assert "aten::mm" in rows[0] and "20 calls" in rows[0]


def test_bad_configs_are_clear_errors():
    with pytest.raises(ValueError, match="variants: unknown"):
        InferenceConfig(variants=("plif",))
    with pytest.raises(ValueError, match="width"):
        PointNetConfig(width=2.0)


def test_neuron_backends_names_the_backend_and_why_not_the_first_choice():
    from spikeforge.bench.targets import neuron_backends
    from spikeforge.functional import NeuronSpec, multistep

    x = torch.randn(3, 2, 4)
    with neuron_backends() as used:
        multistep(x, NeuronSpec(), decay=0.5, threshold=0.5, backend="fused")
        multistep(x, NeuronSpec(), decay=0.5, threshold=0.5, backend="fused")
    assert used == ["neurons: fused x2 (cpp: backend='fused' requested)"]
    with neuron_backends() as used:
        multistep(x, NeuronSpec(), decay=0.5, threshold=torch.rand(4) + 0.5)  # auto: per-element threshold
    assert len(used) == 1 and used[0].startswith("neurons: ")
