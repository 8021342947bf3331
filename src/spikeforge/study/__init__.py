"""The claims study (``spikeforge study``): every method of the line trained on real data at the settings where
information loss binds (T = 1 and 2, a ResNet rather than two convs), for several seeds, folded and measured; one
result file per run and a report generated from those files alone (``docs/results.md``).

:mod:`.plan` defines the parts, methods, baselines and the papers' claims; :mod:`.execute` runs them (one process
per run, resumable); :mod:`.stats` computes mean ± std and paired 95 % intervals; :mod:`.report` writes the report.
"""

from __future__ import annotations

from .execute import run_study
from .plan import PARTS, plan
from .report import render, write_report

__all__ = ["PARTS", "plan", "render", "run_study", "write_report"]
