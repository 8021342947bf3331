"""End of a run: final weights, fold + verification, energy measurement, T sweep, ``metrics.json``."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from . import checkpoint as ckpt

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["finalize", "fold_and_verify", "measure_energy", "t_sweep_values"]


def _num(x: Any) -> Any:
    """JSON-safe number (NaN/inf -> None)."""
    if isinstance(x, torch.Tensor):
        x = x.item() if x.numel() == 1 else x.tolist()
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return None
    return x


def fold_and_verify(model: nn.Module, x: torch.Tensor) -> tuple[nn.Module, float]:
    """``spikeforge.fold`` the model (eval mode) and the maximum deviation of :func:`spikeforge.verify_fold`
    between the trained and the folded model on input ``x[T, B, ...]``."""
    # imported from the subpackage: after its first import, ``spikeforge.fold`` names the module, not the wrapper
    from ..fold import fold, verify_fold

    model.eval()
    folded = fold(model)
    report = verify_fold(model, folded, x)
    dev = report.max_dev if hasattr(report, "max_dev") else report
    return folded, float(dev)


def measure_energy(model: nn.Module, x: torch.Tensor, T: int, batch: int = 64) -> Any:
    """:func:`spikeforge.analysis.measure` (firing rates, SOPs, energy) on batch-first samples ``x[N, ...]``;
    the model's ``input_kind`` selects the encoding. Returns the ``EnergyReport``."""
    from ..analysis import measure

    batches = [x[i:i + batch] for i in range(0, x.shape[0], batch)]
    return measure(model, batches, T=T)


def t_sweep_values(spec: Any) -> list[int]:
    """``eval.T_sweep``: an int N means T = 1..N, a list means those T."""
    if spec is None:
        return []
    if isinstance(spec, int):
        if spec < 1:
            raise ValueError(f"eval.T_sweep must be >= 1, got {spec}")
        return list(range(1, spec + 1))
    if isinstance(spec, (list, tuple)) and all(isinstance(t, int) and t >= 1 for t in spec):
        return [int(t) for t in spec]
    raise ValueError(f"eval.T_sweep must be an int or a list of ints >= 1, got {spec!r}")


def sweep(model: nn.Module, objective: Any, x: torch.Tensor, y: torch.Tensor, kind: str, Ts: list[int],
          batch_size: int, device: torch.device, votes: int = 1) -> dict[int, float]:
    """Test accuracy per T (the "train at T=1, test at T>1" protocol of Spiking PointNet, arXiv:2310.06232)."""
    from ..encode import direct, time_first
    from .sweep import sweep_accuracy

    T_max = max(Ts)
    encode: Callable[[torch.Tensor, int], torch.Tensor]
    if kind == "events":  # event frames carry their own T: sweep over prefixes of the recorded frames
        T_max = min(T_max, int(x.shape[1]))

        def frame_prefix(xb: torch.Tensor, T: int) -> torch.Tensor:
            return time_first(xb)[:T]

        encode = frame_prefix
    else:
        encode = direct
    batches = [(x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, x.shape[0], batch_size)]
    res = sweep_accuracy(model, batches, T_max, encode=encode, readout=getattr(objective, "readout", "mean"),
                         forward=lambda m, xb: objective.logits(objective.forward(m, xb)), device=device,
                         votes=votes)
    return {T: res[T] for T in Ts if T in res}


def finalize(tr: Trainer, test_acc: float, test_loss: float) -> dict[str, Any]:
    cfg, out, model = tr.cfg, tr.out, tr.raw_model
    model.eval()
    ckpt.save_tensors(out / "model.safetensors", model.state_dict())
    ckpt.update_run_manifest(out, [ckpt.CONFIG_NAME, "model.safetensors"])
    metrics: dict[str, Any] = {
        "recipe": cfg.get("description", ""), "model": cfg["model"]["name"], "dataset": cfg["data"]["name"],
        "test_acc": _num(test_acc), "test_loss": _num(test_loss), "best_test_acc": _num(tr.best_acc),
        "best_epoch": tr.best_epoch, "epochs": cfg["epochs"], "T": tr.T, "eval_T": tr.eval_T,
        "train_seconds": round(tr.train_seconds, 3), "params": sum(p.numel() for p in model.parameters()),
        "train_samples": len(tr.train_set), "test_samples": len(tr.test_set), "world_size": tr.dist.world_size,
        "device": str(tr.device), "fold_max_dev": None,
    }
    notes: list[str] = []
    n_verify = int(cfg["fold"]["verify_samples"])
    if cfg["fold"]["enabled"]:
        t0 = time.perf_counter()
        try:
            folded, dev = fold_and_verify(model, tr._test_inputs(n_verify, tr.eval_T))
            metrics["fold_max_dev"] = _num(dev)
            ckpt.save_tensors(out / "folded.safetensors", folded.state_dict())
            ckpt.update_run_manifest(out, ["folded.safetensors"])
            metrics["fold_seconds"] = round(time.perf_counter() - t0, 3)
        except (ImportError, NotImplementedError, ValueError) as exc:  # FoldError is a ValueError
            metrics["fold_error"] = str(exc)
            notes.append(f"fold failed: {exc}")
            if tr.verbose:
                print(f"warning: the model could not be folded: {exc}", flush=True)
    if cfg["analysis"]["enabled"]:
        try:
            n = int(cfg["analysis"]["samples"])
            energy = measure_energy(model, tr.test_set.x[:n].to(tr.device), tr.eval_T).to_dict()
            keys = ("sops", "macs", "energy_pj", "ann_energy_pj", "mean_firing_rate")
            metrics.update({k: energy[k] for k in keys if k in energy})
            if "firing_rates" in energy:
                metrics["firing_rates"] = energy["firing_rates"]
            metrics["energy"] = energy
        except (ImportError, NotImplementedError) as exc:
            notes.append(f"analysis not available: {exc}")
    Ts = t_sweep_values(cfg["eval"]["T_sweep"])
    if Ts:
        metrics["T_sweep"] = {str(T): acc for T, acc in sweep(model, tr.objective, tr.test_set.x, tr.test_set.y,
                                                              tr.kind, Ts, cfg["eval_batch_size"],
                                                              tr.device, int(cfg["eval"]["votes"])).items()}
    if notes:
        metrics["notes"] = notes
    ckpt.save_json(out / "metrics.json", _jsonable(metrics))
    if tr.verbose:
        dev = metrics["fold_max_dev"]
        print(f"test accuracy {test_acc:.4f} (best {tr.best_acc:.4f} at epoch {tr.best_epoch}); fold max deviation "
              f"{'n/a' if dev is None else f'{dev:.3g}'}; {metrics['train_seconds']:.1f}s training; run -> {out}",
              flush=True)
    return metrics


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, torch.Tensor):
        return _jsonable(x.tolist())
    return _num(x)
