"""Benchmarks that the CLI (``spikeforge bench``) and ``benchmarks/neuron.py`` run.

Only :mod:`spikeforge.bench.neuron` exists: LIF forward+backward timing and peak memory of spikeforge against
a plain eager loop and the peer libraries that happen to be installed (SpikingJelly, snnTorch, Norse). The
peers are optional; they are never dependencies of the package.
"""

from .neuron import (
    CASES,
    LIBRARIES,
    Agreement,
    BenchConfig,
    LIFParams,
    Measurement,
    available_libraries,
    check_agreement,
    format_agreement,
    format_table,
    library_version,
    machine_info,
    measure,
    measure_in_subprocess,
    measure_rounds,
)

__all__ = [
    "CASES", "LIBRARIES", "Agreement", "BenchConfig", "LIFParams", "Measurement", "available_libraries",
    "check_agreement", "format_agreement", "format_table", "library_version", "machine_info", "measure",
    "measure_in_subprocess", "measure_rounds",
]
