"""verify_fold reports deviations, spike mismatches and non-plain spike values."""

from __future__ import annotations

import torch

from spikeforge import verify_fold as top_level_verify
from spikeforge.folding import FoldReport, fold, verify_fold

from ._nets import inputs, make_net, train_steps


def test_report_is_a_float_and_detects_a_broken_fold() -> None:
    model = train_steps(make_net("real-spike")).double()
    folded = fold(model)
    report = verify_fold(model, folded, inputs(3))
    assert isinstance(report, FoldReport) and isinstance(report, float)
    assert report.ok() and report < 1e-5 and float(top_level_verify(model, folded, inputs(3))) == report.max_dev
    assert report.float32_spike_agreement > 0.99 and report.float32_prediction_agreement >= 0.5
    assert set(report.layer_size) == {"2", "3.sn1", "3.sn2", "4.sn1", "4.sn2"}
    with torch.no_grad():
        folded[3].sn1.threshold.add_(0.2)  # break one neuron
    bad = verify_fold(model, folded, inputs(3))
    assert not bad.spikes_equal and bad.layer_mismatch["3.sn1"] > 0 and bad.layer_mismatch["2"] == 0
    assert bad.max_dev > 1e-3 and not bad.ok()
    assert "3.sn1" in repr(bad)


def test_spike_values_flag_an_unfolded_amplitude() -> None:
    model = train_steps(make_net({"preset": "ternary", "amplitude": "channel"})).double()
    report = verify_fold(model, model, inputs(4))  # "folded" = the training model itself
    assert report.max_dev == 0 and report.spikes_equal
    assert report.spike_values_ok  # observed spikes are the plain ones, before the amplitude
    assert set(report.spike_values["2"]) <= {-1.0, 0.0, 1.0}
