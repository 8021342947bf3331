"""Energy, firing and membrane analysis of spiking networks.

* :class:`Monitor` — removable hooks recording firing rates, −1 spike share, membrane samples and, per synaptic
  layer, dense MACs and synaptic operations (SOPs);
* :func:`count_macs` — dense MACs per layer of one sample and time step (no spikes needed);
* :func:`measure` / :func:`energy_report` — E = E_MAC·MACs(real-valued-input layers) + E_AC·SOPs(spike-input
  layers), with E_MAC = 4.6 pJ, E_AC = 0.9 pJ (45 nm, Horowitz ISSCC 2014), and the ANN-equivalent energy;
* :func:`plot_membrane_histograms`, :func:`plot_firing_rates`, :func:`plot_raster`, :func:`plot_confusion` — PNG
  figures (matplotlib).

See ``docs/analysis.md`` for the definitions.
"""

from .energy import E_AC_PJ, E_MAC_PJ, EnergyReport, LayerEnergy, energy_report, measure
from .macs import MacCount, count_macs, total_macs
from .monitor import Monitor, MonitorResult, NeuronRecord, Reservoir, SynapseRecord
from .ops import dense_macs, is_synaptic, register_synaptic, sops, spike_events, synaptic_geometry
from .plots import plot_confusion, plot_firing_rates, plot_membrane_histograms, plot_raster

__all__ = [
    "E_AC_PJ", "E_MAC_PJ", "EnergyReport", "LayerEnergy", "MacCount", "Monitor", "MonitorResult", "NeuronRecord",
    "Reservoir", "SynapseRecord", "count_macs", "dense_macs", "energy_report", "is_synaptic", "measure",
    "plot_confusion", "plot_firing_rates", "plot_membrane_histograms", "plot_raster", "register_synaptic", "sops",
    "spike_events", "synaptic_geometry", "total_macs",
]
