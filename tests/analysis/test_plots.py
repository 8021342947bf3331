"""PNG figures from a monitor result (matplotlib Agg)."""

from __future__ import annotations

import pytest
import torch

from spikeforge import create_model
from spikeforge.analysis import Monitor, measure, plot_firing_rates, plot_membrane_histograms, plot_raster

pytest.importorskip("matplotlib")

PNG = b"\x89PNG\r\n\x1a\n"


def test_plots_write_png_files(tmp_path):
    torch.manual_seed(0)
    rep = measure(create_model("convnet", widths=(4, 8), neuron="ternary"), [torch.randn(4, 1, 8, 8)], T=3,
                  reservoir_size=256)
    for fn, name in ((plot_membrane_histograms, "mem.png"), (plot_firing_rates, "rates.png"),
                     (plot_raster, "raster.png")):
        out = fn(rep, tmp_path / "figs" / name)  # accepts the EnergyReport (its monitor result)
        assert out.read_bytes()[:8] == PNG and out.stat().st_size > 1000
    out = plot_membrane_histograms(rep.monitor, tmp_path / "one.png", layers=["6"])
    assert out.exists()


def test_plot_errors_name_the_problem(tmp_path):
    model = create_model("mlp", in_features=4, hidden=(3,))
    with Monitor(model) as mon:
        pass
    with pytest.raises(ValueError, match="no spiking layer"):
        plot_firing_rates(mon.result(), tmp_path / "x.png")
    with Monitor(model, raster_neurons=0) as mon:
        model(torch.rand(2, 1, 4))
    with pytest.raises(ValueError, match="no raster"):
        plot_raster(mon.result(), tmp_path / "x.png")
    with pytest.raises(ValueError, match="no recorded spiking layer"):
        plot_membrane_histograms(mon.result(), tmp_path / "x.png", layers=["nope"])
    with pytest.raises(TypeError, match="MonitorResult"):
        plot_firing_rates(object(), tmp_path / "x.png")
