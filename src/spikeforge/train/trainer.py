"""The training loop: one resolved recipe -> a trained, evaluated, folded and measured model in a run directory.

Per epoch: shuffle (generator seeded from ``(seed, epoch)``), batches from a batch source
(:mod:`spikeforge.train.batches`: in-memory slices, or a worker ``DataLoader`` for streamed datasets), augment on the
device, encode to ``[T, B, ...]``, forward through
the objective (inside :func:`spikeforge.neurons.observe` when it needs membrane potentials), backward (AMP on CUDA
only), gradient clipping, optimiser step, per-step learning rate from :func:`~spikeforge.train.builders.lr_at`;
then evaluation on the test split, ``metrics.csv``/TensorBoard logging and the ``last``/``best`` checkpoints.
After the last epoch: fold (:func:`spikeforge.fold`), :func:`spikeforge.verify_fold` on test samples, energy
measurement (:mod:`spikeforge.analysis`) and ``metrics.json``.

Determinism: every random stream used in an epoch (torch, numpy, python ``random``, the shuffle and the
augmentation generators) is re-seeded at the start of the epoch from ``(seed, epoch, rank)``. Resuming after
epoch k therefore replays epochs k+1.. exactly; on CPU with ``deterministic: true`` the weights are bit-identical
to an uninterrupted run.
"""

from __future__ import annotations

import csv
import math
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import Tensor, nn

from .. import runs as ckpt
from ..encode import encoding_for, readout
from ..functional import NonFiniteError
from ..layers import recompute
from ..losses.classification import readout_loss
from .batches import eval_batches, make_batch_source
from .bn_calibration import recalibrate_bn
from .builders import (
    apply_memory_options,
    build_model,
    build_objective,
    build_optimizer,
    encode_input,
    fill_model_from_data,
    input_kind,
    load_data,
    lr_at,
)
from .distributed import DistInfo, all_reduce_sum, convert_sync_bn, init_distributed, shutdown
from .guards import check_split, diagnose_nonfinite, gradient_norm
from .sweep import check_votes

__all__ = ["Trainer", "NonFiniteLossError", "resolve_device", "evaluate", "epoch_seed"]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite; the message names the epoch and step."""


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` under torchrun -> ``cuda:LOCAL_RANK``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available; use --set device=cpu")
        if name == "cuda":
            name = f"cuda:{local_rank}"
    elif name != "cpu":
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")
    return torch.device(name)


def epoch_seed(seed: int, epoch: int, rank: int = 0, stream: int = 0) -> int:
    """A 63-bit seed for one random stream of one epoch on one rank (SplitMix64-style mixing)."""
    z = (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + rank * 0x94D049BB133111EB + stream) \
        & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & 0x7FFFFFFFFFFFFFFF


@torch.no_grad()
def evaluate(model: nn.Module, objective: Any, x: Any, y: Tensor, *, T: int, kind: str, batch_size: int,
             device: torch.device, dist_info: DistInfo | None = None, workers: int = 0,
             votes: int = 1) -> tuple[float, float]:
    """Test ``(loss, accuracy)``: accuracy of the objective's readout, loss = CE of that readout (NLL for the
    ``log_softmax_mean`` readout). ``votes = V``: the readout is the mean over V forward passes of each batch
    (Spiking PointNet's 3-vote test; each pass draws fresh random initial membranes, see
    :mod:`spikeforge.train.sweep`).

    ``x`` is a tensor or the lazy view of a streamed split (then read by a ``DataLoader`` with ``workers``).
    Under torchrun each rank evaluates a contiguous shard and the sums are all-reduced.
    """
    info = dist_info or DistInfo()
    was_training = model.training
    model.eval()
    n = x.shape[0]
    lo, hi = n * info.rank // info.world_size, n * (info.rank + 1) // info.world_size
    correct, loss_sum = 0.0, 0.0
    mode = getattr(objective, "readout", "mean")
    votes = check_votes(votes)
    for xb_raw, yb_raw in eval_batches(x, y, lo, hi, batch_size, workers=workers,
                                       pin_memory=device.type == "cuda"):
        xb = encode_input(xb_raw.to(device, non_blocking=True), kind, T)
        yb = yb_raw.to(device, non_blocking=True)
        z = readout(objective.logits(objective.forward(model, xb)).float(), mode)
        for _ in range(votes - 1):
            z = z + readout(objective.logits(objective.forward(model, xb)).float(), mode)
        z = z / votes
        correct += float((z.argmax(1) == yb).sum())
        loss_sum += float(readout_loss(z, yb, mode, reduction="sum"))
    correct, loss_sum = all_reduce_sum([correct, loss_sum], info, device)
    model.train(was_training)
    return loss_sum / max(1, n), correct / max(1, n)


class _Progress:
    """A ``rich`` progress bar (loss, acc, it/s, ETA) on a TTY; one plain line per epoch otherwise."""

    def __init__(self, mode: str, enabled: bool) -> None:
        tty = sys.stdout.isatty() and not os.environ.get("CI")
        self.live = enabled and (mode == "always" or (mode == "auto" and tty))
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None

    def start_epoch(self, epoch: int, epochs: int, steps: int) -> None:
        if not self.live:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(TextColumn("epoch {task.fields[ep]}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[stats]}"), TimeRemainingColumn(), transient=True)
        self._bar.start()
        self._task = self._bar.add_task("train", total=steps, ep=f"{epoch}/{epochs}", stats="")
        self._t0 = time.perf_counter()

    def step(self, done: int, loss: float, acc: float) -> None:
        if self._bar is not None:
            rate = done / max(1e-9, time.perf_counter() - self._t0)
            self._bar.update(self._task, completed=done, stats=f"loss {loss:.4f} acc {acc:.3f} {rate:.1f} it/s")

    def end_epoch(self, line: str) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.enabled:
            print(line, flush=True)


class Trainer:
    """Train one resolved recipe into ``out``; ``resume=True`` continues from ``out/checkpoints/last``.

    ``on_epoch_end(trainer, epoch)`` runs after each epoch's checkpoint is written (tests use it to simulate a
    crash). ``verbose=False`` silences the per-epoch lines.
    """

    def __init__(self, cfg: dict[str, Any], out: str | os.PathLike[str], *, resume: bool = False,
                 on_epoch_end: Callable[[Trainer, int], None] | None = None, verbose: bool = True) -> None:
        self.cfg = cfg
        self.out = Path(out)
        self.resume = resume
        self.on_epoch_end = on_epoch_end
        self.verbose = verbose
        self.batches: Any = None  # the batch source (spikeforge.train.batches), built in _setup

    # --- setup ------------------------------------------------------------------------------------------
    def _setup(self) -> None:
        cfg = self.cfg
        requested = str(cfg["device"])
        self.dist = init_distributed("cuda" if requested.startswith("cuda") or
                                     (requested == "auto" and torch.cuda.is_available()) else "cpu")
        self.device = resolve_device(requested, self.dist.local_rank)
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        if cfg["deterministic"]:
            torch.use_deterministic_algorithms(True)
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        self.train_set = load_data(cfg, "train")
        self.test_set = load_data(cfg, "test")
        if len(self.train_set) == 0 or len(self.test_set) == 0:
            raise ValueError(f"dataset {cfg['data']['name']!r} gave {len(self.train_set)} training and "
                             f"{len(self.test_set)} test samples; both must be non-empty")
        for split, part in ((self.train_set, "train"), (self.test_set, "test")):
            if isinstance(getattr(split, "x", None), Tensor):  # in memory: checked once, before any step
                check_split(split, f"dataset {cfg['data']['name']!r} ({part} split)")
        fill_model_from_data(cfg, self.train_set)
        torch.manual_seed(cfg["seed"])  # identical initial weights on every rank
        self.raw_model = build_model(cfg).to(self.device)
        self.kind = input_kind(self.raw_model)
        if self.kind != self.train_set.kind:
            raise ValueError(f"model {cfg['model']['name']!r} takes {self.kind} input but dataset "
                             f"{cfg['data']['name']!r} is {self.train_set.kind}")
        self.objective = build_objective(cfg)
        apply_memory_options(cfg, self.raw_model, self.objective)
        if self.dist.enabled:
            if cfg["sync_bn"]:
                convert_sync_bn(self.raw_model)
            self.model: nn.Module = nn.parallel.DistributedDataParallel(
                self.raw_model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        else:
            self.model = self.raw_model
        self.optimizer = build_optimizer(cfg, self.raw_model)
        self.use_amp = bool(cfg["amp"]) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        world = self.dist.world_size
        if cfg["batch_size"] % world:
            raise ValueError(f"batch_size {cfg['batch_size']} must be divisible by the number of processes {world}")
        n = len(self.train_set)
        self.global_batch = cfg["batch_size"] if n >= cfg["batch_size"] else (n // world) * world
        if self.global_batch == 0:
            raise ValueError(f"{n} training samples cannot be split over {world} processes")
        self.steps_per_epoch = n // self.global_batch  # the last incomplete batch is dropped
        self.workers = int(cfg["data"].get("workers", 0) or 0)
        self.batches = make_batch_source(self.train_set, self.global_batch, self.dist, workers=self.workers,
                                         pin_memory=self.device.type == "cuda")
        self.T, self.eval_T = int(cfg["T"]), int(cfg["eval_T"] or cfg["T"])
        if encoding_for(self.kind) == "time_first":  # event frames carry their own time axis [N, T, 2, H, W]
            self.T = self.eval_T = int(self.train_set.x.shape[1])
        self.start_epoch, self.global_step, self.best_acc, self.best_epoch = 0, 0, -1.0, 0
        self.train_seconds = 0.0
        self._csv_fields: list[str] | None = None
        self._tb: Any = None
        if self.resume:
            self._load_last()

    # --- checkpoints ------------------------------------------------------------------------------------
    def _optimizer_payload(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        sd = self.optimizer.state_dict()
        tensors: dict[str, Tensor] = {}
        scalars: dict[str, dict[str, Any]] = {}
        for pid, st in sd["state"].items():
            for k, v in st.items():
                if isinstance(v, Tensor):
                    tensors[f"optim/{pid}/{k}"] = v
                else:
                    scalars.setdefault(str(pid), {})[k] = v
        return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}

    def save_checkpoint(self, name: str, epoch: int) -> None:
        if not self.dist.is_main:
            return
        folder = self.out / "checkpoints" / name
        if name == "best":
            ckpt.write_checkpoint(folder, self.raw_model.state_dict(),
                                  state={"epoch": epoch, "test_acc": self.best_acc})
            return
        tensors, optim_state = self._optimizer_payload()
        state = {
            "epoch": epoch, "global_step": self.global_step, "best_acc": self.best_acc,
            "best_epoch": self.best_epoch, "train_seconds": self.train_seconds, "optimizer": optim_state,
            "optimizer_class": type(self.optimizer).__name__, "scaler": self.scaler.state_dict(),
            "schedule": {"name": self.cfg["schedule"]["name"], "step": self.global_step,
                         "steps_per_epoch": self.steps_per_epoch},
            "rng": {"scheme": "per-epoch streams seeded from (seed, epoch, rank)", "seed": self.cfg["seed"],
                    "next_epoch": epoch + 1},
            "world_size": self.dist.world_size,
        }
        ckpt.write_checkpoint(folder, self.raw_model.state_dict(), tensors, state)

    def _load_last(self) -> None:
        data = ckpt.read_checkpoint(self.out / "checkpoints" / "last")
        try:
            self.raw_model.load_state_dict(data["model"], strict=True)
        except RuntimeError as exc:
            raise ckpt.CheckpointError(f"checkpoint does not match the recipe's model: {exc}") from None
        st = data["state"]
        if st.get("optimizer_class") != type(self.optimizer).__name__:
            raise ckpt.CheckpointError(f"checkpoint was written with optimizer {st.get('optimizer_class')}, the "
                                       f"recipe builds {type(self.optimizer).__name__}")
        opt = st["optimizer"]
        state: dict[int, dict[str, Any]] = {}
        for key, v in data["tensors"].items():
            _, pid, k = key.split("/", 2)
            state.setdefault(int(pid), {})[k] = v.to(self.device)
        for pid, d in opt["scalars"].items():
            state.setdefault(int(pid), {}).update(d)
        self.optimizer.load_state_dict({"state": state, "param_groups": opt["param_groups"]})
        if st.get("scaler"):
            self.scaler.load_state_dict(st["scaler"])
        if st["schedule"]["steps_per_epoch"] != self.steps_per_epoch:
            raise ckpt.CheckpointError(f"checkpoint has {st['schedule']['steps_per_epoch']} steps per epoch, this "
                                       f"run {self.steps_per_epoch}: data.limit or batch_size changed")
        self.start_epoch = int(st["epoch"])
        self.global_step = int(st["global_step"])
        self.best_acc, self.best_epoch = float(st["best_acc"]), int(st["best_epoch"])
        self.train_seconds = float(st["train_seconds"])

    # --- logging ----------------------------------------------------------------------------------------
    def _log_epoch(self, row: dict[str, Any]) -> None:
        if not self.dist.is_main:
            return
        path = self.out / "metrics.csv"
        if self._csv_fields is None:
            if path.exists() and self.resume:
                with path.open() as f:
                    self._csv_fields = next(csv.reader(f), None)
                self._truncate_csv(path, row["epoch"])
            if not self._csv_fields:
                self._csv_fields = list(row)
                with path.open("w", newline="") as f:
                    csv.writer(f).writerow(self._csv_fields)
        with path.open("a", newline="") as f:
            csv.DictWriter(f, self._csv_fields, extrasaction="ignore").writerow(row)
        if self.cfg["log"]["tensorboard"]:
            if self._tb is None:
                try:
                    from torch.utils.tensorboard import SummaryWriter
                except ImportError:  # tensorboard is an optional dependency ([viz])
                    self.cfg["log"]["tensorboard"] = False
                    return
                self._tb = SummaryWriter(log_dir=str(self.out))
            for k, v in row.items():
                if k != "epoch" and isinstance(v, (int, float)):
                    self._tb.add_scalar(k, v, row["epoch"])
            self._tb.flush()

    @staticmethod
    def _truncate_csv(path: Path, epoch: int) -> None:
        """On resume drop rows of epochs >= ``epoch`` (written after the checkpoint the run resumes from)."""
        with path.open() as f:
            rows = list(csv.reader(f))
        keep = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) < epoch]
        ckpt.atomic_write_bytes(path, "".join(",".join(r) + "\n" for r in keep).encode())

    # --- training ---------------------------------------------------------------------------------------
    def _seed_epoch(self, epoch: int) -> tuple[torch.Generator, torch.Generator]:
        seed, rank = int(self.cfg["seed"]), self.dist.rank
        torch.manual_seed(epoch_seed(seed, epoch, rank, 0))
        np.random.seed(epoch_seed(seed, epoch, rank, 1) % (2**32))
        random.seed(epoch_seed(seed, epoch, rank, 2))
        shuffle = torch.Generator().manual_seed(epoch_seed(seed, epoch, 0, 3))  # shared by all ranks
        augment = torch.Generator().manual_seed(epoch_seed(seed, epoch, rank, 4))
        return shuffle, augment

    def _build_augment(self, generator: torch.Generator) -> Any:
        from ..data import transforms

        meta = getattr(self.train_set, "meta", {}) or {}
        stats = {"mean": meta["mean"], "std": meta["std"]} if meta.get("normalized") and "mean" in meta else {}
        return transforms.build(self.cfg["data"]["augment"], generator=generator, **stats)

    def _forward_loss(self, xb: Tensor, yb: Tensor, progress: float) -> tuple[Tensor, dict[str, float], Tensor]:
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.use_amp):
            # records (name, fire_input) per neuron call when the objective needs membranes (RMP/IM-Loss)
            with self.objective.observe(self.raw_model) as membranes:
                outputs = self.objective.forward(self.model, xb)
            loss, parts = self.objective.loss(outputs, yb, membranes=membranes, progress=progress)
        logits = readout(self.objective.logits(outputs).detach().float(), getattr(self.objective, "readout",
                                                                                   "mean"))
        return loss, parts, logits

    def _train_epoch(self, epoch: int, bar: _Progress) -> dict[str, Any]:
        cfg = self.cfg
        shuffle_gen, aug_gen = self._seed_epoch(epoch)
        augment = self._build_augment(aug_gen)
        self.model.train()
        loss_sum, correct, seen = 0.0, 0.0, 0.0
        parts_sum: dict[str, float] = {}
        bar.start_epoch(epoch + 1, cfg["epochs"], self.steps_per_epoch)
        sample_seeds = epoch_seed(int(cfg["seed"]), epoch, 0, 5)  # per-sample crops of streamed data
        for i, (xb_cpu, yb_cpu) in enumerate(self.batches.epoch(shuffle_gen, sample_seeds)):
            xb = xb_cpu.to(self.device, non_blocking=True)
            if len(augment):
                xb = augment(xb)  # on the training device; random numbers from the CPU generator
            xb = encode_input(xb, self.kind, self.T)
            yb = yb_cpu.to(self.device, non_blocking=True)
            lr = lr_at(cfg, self.global_step, self.steps_per_epoch)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            progress = (epoch + i / self.steps_per_epoch) / cfg["epochs"]
            at = f"epoch {epoch + 1}, step {i + 1}/{self.steps_per_epoch} (global step {self.global_step + 1})"
            try:
                loss, parts, logits = self._forward_loss(xb, yb, progress)
            except NonFiniteError as exc:
                raise NonFiniteLossError(f"{exc} at {at}; {diagnose_nonfinite(self.raw_model, at, lr)}") from None
            if not torch.isfinite(loss.detach()).all():
                raise NonFiniteLossError(f"loss became {float(loss.detach())} at {at}; lower optim.lr (now {lr:.4g}) "
                                         f"or set grad_clip ({diagnose_nonfinite(self.raw_model, at, lr)})")
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if cfg["grad_clip"]:
                self.scaler.unscale_(self.optimizer)
                grad_norm = float(nn.utils.clip_grad_norm_(self.raw_model.parameters(), float(cfg["grad_clip"])))
            else:
                grad_norm = 0.0 if self.use_amp else gradient_norm(self.raw_model)
            if not self.use_amp and not math.isfinite(grad_norm):  # AMP's scaler skips such steps by design
                raise NonFiniteLossError(diagnose_nonfinite(self.raw_model, at, lr, grads=True))
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.global_step += 1
            b = yb.shape[0]
            loss_sum += float(loss.detach()) * b
            correct += float((logits.argmax(1) == yb).sum())
            seen += b
            for k, v in parts.items():
                parts_sum[k] = parts_sum.get(k, 0.0) + float(v) * b
            bar.step(i + 1, loss_sum / seen, correct / seen)
        keys = sorted(parts_sum)
        totals = all_reduce_sum([loss_sum, correct, seen] + [parts_sum[k] for k in keys], self.dist, self.device)
        seen_all = max(1.0, totals[2])
        out = {"train_loss": totals[0] / seen_all, "train_acc": totals[1] / seen_all, "lr": lr}
        out.update({f"train_{k}": v / seen_all for k, v in zip(keys, totals[3:])})
        return out

    def fit(self) -> dict[str, Any]:
        """Train, evaluate, checkpoint, fold, measure; returns the final metrics (also in metrics.json)."""
        was_deterministic = torch.are_deterministic_algorithms_enabled()
        self._tb = None
        self.dist = DistInfo()
        finished = False
        try:
            self._setup()
            metrics = self._fit()
            finished = True
            return metrics
        finally:
            if self._tb is not None:
                self._tb.close()
            if getattr(self, "batches", None) is not None:
                self.batches.close()
            shutdown(self.dist, synchronize=finished)
            torch.use_deterministic_algorithms(was_deterministic)  # a process-wide switch: leave it as found

    def _fit(self) -> dict[str, Any]:
        cfg = self.cfg
        main = self.dist.is_main
        if main:
            self.out.mkdir(parents=True, exist_ok=True)
            ckpt.atomic_write_bytes(self.out / ckpt.CONFIG_NAME, yaml.safe_dump(cfg, sort_keys=False).encode())
            if (self.out / ckpt.MANIFEST).exists():  # a resumed, finished run: the manifest follows the new recipe
                ckpt.update_run_manifest(self.out, [ckpt.CONFIG_NAME])
        bar = _Progress(cfg["log"]["progress"], enabled=self.verbose and main)
        if main and self.verbose:
            params = sum(p.numel() for p in self.raw_model.parameters())
            print(f"spikeforge train: {cfg['model']['name']} ({params:,} params) on {cfg['data']['name']} "
                  f"({len(self.train_set)} train / {len(self.test_set)} test), T={self.T}, device={self.device}, "
                  f"{self.dist.world_size} process(es), epochs {self.start_epoch + 1}..{cfg['epochs']}", flush=True)
        test_acc, test_loss = float("nan"), float("nan")
        for epoch in range(self.start_epoch, cfg["epochs"]):
            t0 = time.perf_counter()
            row: dict[str, Any] = {"epoch": epoch + 1}
            row.update(self._train_epoch(epoch, bar))
            last = epoch + 1 == cfg["epochs"]
            evaluated = last or (epoch + 1) % int(cfg["eval"]["every"]) == 0
            if evaluated:
                self.recalibrate_bn()
                test_loss, test_acc = evaluate(self.model, self.objective, self.test_set.x, self.test_set.y,
                                               T=self.eval_T, kind=self.kind, batch_size=cfg["eval_batch_size"],
                                               device=self.device, dist_info=self.dist, workers=self.workers,
                                               votes=int(self.cfg["eval"]["votes"]))
                if test_acc > self.best_acc:
                    self.best_acc, self.best_epoch = test_acc, epoch + 1
                    self.save_checkpoint("best", epoch + 1)
            row.update(test_loss=test_loss if evaluated else "", test_acc=test_acc if evaluated else "")
            self.train_seconds += time.perf_counter() - t0
            row["seconds"] = round(time.perf_counter() - t0, 3)
            self._log_epoch(row)
            self.save_checkpoint("last", epoch + 1)
            bar.end_epoch(f"epoch {epoch + 1}/{cfg['epochs']}  loss {row['train_loss']:.4f}  "
                          f"train acc {row['train_acc']:.4f}  test acc {test_acc if evaluated else float('nan'):.4f}  "
                          f"lr {row['lr']:.4g}  "
                          f"{row['seconds']:.1f}s")
            if self.on_epoch_end is not None:
                self.on_epoch_end(self, epoch + 1)
        if self.start_epoch >= cfg["epochs"]:
            test_loss, test_acc = evaluate(self.model, self.objective, self.test_set.x, self.test_set.y,
                                           T=self.eval_T, kind=self.kind, batch_size=cfg["eval_batch_size"],
                                           device=self.device, dist_info=self.dist, workers=self.workers,
                                           votes=int(self.cfg["eval"]["votes"]))
        metrics = self._finish(test_acc, test_loss) if main else {}
        return metrics

    def recalibrate_bn(self) -> int:
        """Re-estimate BN running statistics on the first ``eval.bn_recalibration`` training batches (fixed order,
        no augmentation; the same batches on every rank) — see :mod:`spikeforge.train.bn_calibration`."""
        n = min(int(self.cfg["eval"]["bn_recalibration"]), self.steps_per_epoch)
        if n <= 0:
            return 0
        B = self.global_batch
        inputs = (encode_input(self.train_set.x[i * B:(i + 1) * B].to(self.device), self.kind, self.T)
                  for i in range(n))
        return recalibrate_bn(self.raw_model, inputs, forward=self.objective.forward)

    # --- after training ---------------------------------------------------------------------------------
    def _test_inputs(self, count: int, T: int) -> Tensor:
        return encode_input(self.test_set.x[:count].to(self.device), self.kind, T)

    def _finish(self, test_acc: float, test_loss: float) -> dict[str, Any]:
        from .finalize import finalize

        if self.cfg["memory"]["recompute"]:
            recompute(self.raw_model, False)  # the fold and the artifact get the plain model
        return finalize(self, test_acc, test_loss)
