"""Training: recipes (:mod:`.config`), the loop (:class:`Trainer`), run directories and pickle-free checkpoints
(:mod:`spikeforge.runs`).

``spikeforge train RECIPE --out DIR`` runs :func:`train`; :func:`spikeforge.runs.load_run` rebuilds a
trained model from its run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..runs import CheckpointError, load_run
from .config import RecipeError, apply_overrides, load_recipe, resolve
from .trainer import NonFiniteLossError, Trainer

__all__ = ["CheckpointError", "NonFiniteLossError", "RecipeError", "Trainer", "load_run", "train", "resume"]


def train(recipe: str | Path | dict[str, Any], out: str | Path, overrides: list[str] | tuple[str, ...] = (),
          verbose: bool = True) -> dict[str, Any]:
    """Train a recipe (file, bundled name or dict) with ``--set``-style overrides into ``out``; returns metrics."""
    raw = dict(recipe) if isinstance(recipe, dict) else load_recipe(recipe)
    cfg = resolve(apply_overrides(raw, overrides))
    return Trainer(cfg, out, verbose=verbose).fit()


def resume(run_dir: str | Path, overrides: list[str] | tuple[str, ...] = (), verbose: bool = True) -> dict[str, Any]:
    """Continue a run from ``run_dir/checkpoints/last`` (``--set epochs=N`` may extend it)."""
    from ..runs import finished_epochs, read_config

    cfg = resolve(apply_overrides(read_config(run_dir), overrides))
    done = finished_epochs(run_dir)
    if done >= cfg["epochs"]:
        raise RecipeError(f"the run in {run_dir} already finished {done} of {cfg['epochs']} epochs; nothing to resume "
                          f"— to train further, extend it with --set epochs=N (N > {done})")
    return Trainer(cfg, run_dir, resume=True, verbose=verbose).fit()
