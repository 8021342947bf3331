"""What the claims study trains: its parts, methods, baselines, and the papers' own claims.

Every run is one recipe (a plain dict, as ``spikeforge train`` takes) identified by ``part/method/T/seed``. The
static part trains one narrow CIFAR-style ResNet-10 (``cifar_resnet``, blocks 1-1-1-1) with every method of the
line at T = 1 and T = 2 on Fashion-MNIST; the events part a DVS-CNN on simulated saccade recordings of Fashion-MNIST
at T = 10 frames; the points part Spiking PointNet on point clouds made from Fashion-MNIST images. ``quick=True``
swaps in the embedded 8×8 digits (and their simulated events and point clouds), tiny subsets and one epoch: a smoke
test of the whole pipeline, not evidence.

Sizes cut for time (full study, ~1 h on 2 CPU cores) are named in :data:`CUTS` and printed in the report.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Method", "Part", "PARTS", "CUTS", "StudyRun", "plan", "part_names"]


@dataclass(frozen=True)
class Method:
    """One row of a study table.

    ``recipe``: overrides merged into the part's base recipe. ``Ts``: training lengths this method runs at
    (``None`` = the part's). ``who``: the paper (name and arXiv id). ``claim``: its claim about this method against
    the part's baseline,
    ``paper``: the paper's own figure (a string quoted in the report), ``expect``: the direction the paper claims
    for ``method - baseline`` (+1 better, 0 no claim)."""

    name: str
    label: str
    recipe: dict[str, Any]
    claim: str = ""
    paper: str = ""
    who: str = ""
    expect: int = 1
    Ts: tuple[int, ...] | None = None
    fold: bool = True


@dataclass(frozen=True)
class Part:
    name: str
    title: str
    base: dict[str, Any]
    quick_base: dict[str, Any]
    methods: tuple[Method, ...]
    Ts: tuple[int, ...]
    baseline: str
    eval_Ts: tuple[int, ...] = ()  # accuracy at these inference lengths (points: T = 1..4)


@dataclass(frozen=True)
class StudyRun:
    part: str
    method: str
    T: int
    seed: int
    quick: bool
    recipe: dict[str, Any] = field(compare=False)

    @property
    def run_id(self) -> str:
        return f"{self.part}-{self.method}-T{self.T}-s{self.seed}{'-quick' if self.quick else ''}"


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in update.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k not in ("neuron",):
            out[k] = _merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


# --- part 1: static images ----------------------------------------------------------------------------------------
_STATIC_MODEL = {"name": "cifar_resnet", "blocks": [1, 1, 1, 1], "width": 0.125}
_STATIC = {
    "description": "claims study, static part: Fashion-MNIST, narrow CIFAR ResNet-10",
    "model": dict(_STATIC_MODEL, neuron="lif"),
    "data": {"name": "fashion-mnist", "train_limit": 5000, "limit": 5000},
    "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5.0e-4},
    "schedule": {"name": "cosine", "warmup_epochs": 0.5},
    "epochs": 3,
    "batch_size": 128,
    "eval": {"every": 1000},
    "fold": {"enabled": True, "verify_samples": 64},
    "analysis": {"enabled": True, "samples": 256},
    "log": {"tensorboard": False, "progress": "never"},
}
_STATIC_QUICK = {"data": {"name": "digits", "train_limit": 256, "limit": 128}, "epochs": 1, "batch_size": 64,
                 "model": {"width": 0.125}, "analysis": {"samples": 64}, "fold": {"verify_samples": 16}}

_TERNARY = "Ternary Spike (arXiv:2312.06372)"
_REAL = "Real Spike (arXiv:2210.06686)"
_MPBN = "MPBN (arXiv:2308.08359)"
STATIC_METHODS: tuple[Method, ...] = (
    Method("binary", "vanilla binary LIF (hard reset)", {"model": {"neuron": "lif"}}, expect=0,
           claim="the baseline: the group's LIF (decay 0.25, threshold 0.5, hard reset, rectangular surrogate)"),
    Method("ternary", "ternary spike, fixed amplitude", {"model": {"neuron": "ternary-vanilla"}},
           who=_TERNARY,
           claim="ternary spikes {-1, 0, 1} carry more information than binary ones and raise accuracy",
           paper="ImageNet ResNet-34 T=4: vanilla ternary ≈69.5 (approx., unverified); CIFAR-10 ResNet-20 T=2 ≈94.3 "
                 "(approx., unverified)"),
    Method("ternary-learnable", "ternary spike + learnable amplitude", {"model": {"neuron": "ternary"}},
           who=_TERNARY, claim="a learnable layer-wise amplitude adds to the ternary gain",
           paper="ImageNet ResNet-34 T=4: ≈70.7 with learnable a vs ≈69.5 fixed (approx., unverified); CIFAR-10 "
                 "ResNet-19 T=2: 95.80 (as reported in a later paper)"),
    Method("real-spike-layer", "Real Spike, layer-wise", {"model": {"neuron": {"preset": "lif", "amplitude": "layer"}}},
           who=_REAL, claim="real-valued (amplitude-scaled) spikes in training, folded to binary at inference, "
                 "improve accuracy at every granularity",
           paper="all amplitude granularities improve over the binary SNN (abstract, verified); CIFAR-10 ResNet-19 "
                 "T=2 ≈95.3 (approx., unverified)"),
    Method("real-spike-channel", "Real Spike, channel-wise",
           {"model": {"neuron": {"preset": "lif", "amplitude": "channel"}}},
           who=_REAL, claim="as layer-wise", paper="as layer-wise"),
    Method("real-spike-element", "Real Spike, element-wise",
           {"model": {"neuron": {"preset": "lif", "amplitude": "element"}}},
           who=_REAL, claim="as layer-wise", paper="as layer-wise"),
    Method("mpbn-channel", "MPBN, channel-wise", {"model": {"neuron": {"preset": "lif", "pre_fire": "mpbn"}}},
           who=_MPBN, claim="a BN on the membrane before firing (folded into thresholds) raises accuracy",
           paper="CIFAR-10 ResNet-19 T=1/2: 96.06/96.47 (approx., unverified)"),
    Method("mpbn-element", "MPBN, element-wise",
           {"model": {"neuron": {"preset": "lif", "pre_fire": "mpbn", "mpbn": "element"}}},
           who=_MPBN, claim="as channel-wise", paper="as channel-wise"),
    Method("rmp-loss", "RMP-Loss", {"model": {"neuron": "lif"},
                                     "objective": {"name": "rmp", "weight": 0.1, "schedule": "cosine"}},
           who="RMP-Loss (arXiv:2308.06787)",
           claim="pulling membranes towards the spike values cuts quantisation error and raises accuracy",
           paper="CIFAR-10 ResNet-19 T=4 ≈96.1 (approx., unverified)"),
    Method("soft-reset-mpr", "soft reset + MPR", {"model": {"neuron": "soft-mpr"}},
           who="InfLoR-SNN (arXiv:2307.04356)", claim="soft reset keeps the residual membrane and the MPR rectifier "
                 "redistributes it; both raise accuracy",
           paper="CIFAR-10 ResNet-19 T=2 ≈94.4 (approx., unverified)"),
    Method("joint-asnn", "Joint A-SNN (SNN branch)",
           {"model": {"name": "joint_asnn_resnet18", "blocks": [1, 1, 1, 1], "width": 0.125, "neuron": "lif"},
            "objective": {"name": "joint_asnn", "alpha": 0.1, "temperature": 3.0, "beta": 1.0e-6}},
           who="Joint A-SNN (arXiv:2305.02099)", claim="training an ANN and an SNN jointly with shared weights and "
                 "self-distillation raises the SNN's accuracy",
           paper="CIFAR-100 ResNet-18 T=4: 77.39 (abstract, verified)"),
    Method("ann", "ANN (same network, ReLU)", {"model": {"ann": True}}, Ts=(1,), fold=False, expect=0,
           claim="reference: the same network with ReLU activations (an SNN's accuracy ceiling)"),
)

# --- part 2: events -----------------------------------------------------------------------------------------------
_EVENTS = {
    "description": "claims study, events part: simulated N-MNIST-style saccades of Fashion-MNIST, DVS-CNN, T=10",
    "model": {"name": "dvs_cnn", "widths": [8, 16], "neuron": "lif"},
    "data": {"name": "n-fashion-mnist-sim", "options": {"T": 10, "cache_dir": ".cache/spikeforge-study"},
             "train_limit": 2000, "limit": 1000},
    "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5.0e-4},
    "schedule": {"name": "cosine", "warmup_epochs": 0.5},
    "epochs": 3,
    "batch_size": 64,
    "eval": {"every": 1000},
    "fold": {"enabled": True, "verify_samples": 32},
    "analysis": {"enabled": True, "samples": 128},
    "log": {"tensorboard": False, "progress": "never"},
}
_EVENTS_QUICK = {"data": {"name": "nmnist-sim", "train_limit": 128, "limit": 64, "options": {"cache_dir": None}},
                 "epochs": 1, "model": {"widths": [4, 8]}, "analysis": {"samples": 32}, "fold": {"verify_samples": 8}}
EVENT_METHODS: tuple[Method, ...] = (
    Method("binary", "vanilla binary LIF", {"model": {"neuron": "lif"}}, expect=0, claim="the baseline"),
    Method("ternary-learnable", "ternary spike + learnable amplitude", {"model": {"neuron": "ternary"}},
           who=_TERNARY, claim="the ternary gain holds on event data",
           paper="CIFAR10-DVS ResNet-20 T=10 ≈79.8 (approx., unverified)"),
    Method("mpbn-channel", "MPBN, channel-wise", {"model": {"neuron": {"preset": "lif", "pre_fire": "mpbn"}}},
           who=_MPBN, claim="the MPBN gain holds on event data",
           paper="CIFAR10-DVS ResNet-19 T=10 ≈74.4 (approx., unverified)"),
)

# --- part 3: point clouds -----------------------------------------------------------------------------------------
_POINTS = {
    "description": "claims study, points part: Fashion-MNIST images as 2-D point clouds, narrow Spiking PointNet",
    "model": {"name": "pointnet", "neuron": "pointnet", "width": 0.125, "weight_init": "pytorch"},
    "data": {"name": "fmnist-points", "options": {"n_points": 128}, "train_limit": 2000, "limit": 1000},
    "objective": {"name": "ce", "readout": "log_softmax_mean", "feature_transform_weight": 0.001},
    "eval": {"every": 1000, "T_sweep": 4, "votes": 3, "bn_recalibration": 8},
    "optim": {"name": "adam", "lr": 2.0e-3, "weight_decay": 1.0e-4, "no_decay": []},
    "schedule": {"name": "cosine"},
    "epochs": 4,
    "batch_size": 32,
    "eval_T": 4,
    "fold": {"enabled": True, "verify_samples": 32},
    "analysis": {"enabled": True, "samples": 128},
    "log": {"tensorboard": False, "progress": "never"},
}
_POINTS_QUICK = {"data": {"name": "digits-points", "options": {"n_points": 64}, "train_limit": 128, "limit": 64},
                 "epochs": 1, "eval": {"bn_recalibration": 2}, "analysis": {"samples": 16},
                 "fold": {"verify_samples": 8}}
_NO_MPP = {"preset": "pointnet", "init": "zero"}
_PN = "Spiking PointNet (arXiv:2310.06232)"
POINT_METHODS: tuple[Method, ...] = (
    Method("vanilla-T4", "trained at T=4, no MPP", {"model": {"neuron": _NO_MPP}}, Ts=(4,), expect=0,
           claim="the baseline: a vanilla SNN PointNet trained and tested at T=4"),
    Method("mpp-T1", "trained at T=1 with MPP", {"model": {"neuron": "pointnet"}}, Ts=(1,),
           who=_PN, claim="trained at T=1 with membrane potential perturbation, tested at T=4, beats the vanilla "
                 "SNN trained at T=4",
           paper="ModelNet40: 88.61 (T=1 train, T=4 test; T=1 test 87.72) vs vanilla 86.70 (README, verified)"),
    Method("nompp-T1", "trained at T=1 without MPP", {"model": {"neuron": _NO_MPP}}, Ts=(1,), expect=0,
           claim=f"{_PN} ablation: without the perturbation, the T=1-trained net gains less from T>1 at test"),
    Method("ann", "ANN PointNet", {"model": {"ann": True}, "eval": {"T_sweep": None, "votes": 1}, "eval_T": 1},
           Ts=(1,), fold=False, expect=0,
           claim="reference: the same PointNet with ReLU",
           paper="ModelNet40 ANN PointNet 89.20 (README, verified)"),
)

PARTS: dict[str, Part] = {
    "static": Part("static", "Static images: Fashion-MNIST", _STATIC, _STATIC_QUICK, STATIC_METHODS, (1, 2), "binary"),
    "events": Part("events", "Events: simulated N-MNIST-style recordings of Fashion-MNIST", _EVENTS, _EVENTS_QUICK,
                   EVENT_METHODS, (10,), "binary"),
    "points": Part("points", "Point clouds: Fashion-MNIST images as point clouds", _POINTS, _POINTS_QUICK,
                   POINT_METHODS, (1,), "vanilla-T4", eval_Ts=(1, 2, 3, 4)),
}

#: what the full study cut for time, printed in the report
CUTS: dict[str, str] = {
    "static": "5,000 of the 60,000 training images and 5,000 of the 10,000 test images (the first ones), 3 epochs, "
              "width 1/8 (channels 8-16-32-64), one BasicBlock per stage (ResNet-10), no augmentation; "
              "T = 4 not run",
    "events": "2,000 training / 1,000 test recordings simulated from the first Fashion-MNIST images, 3 epochs, "
              "DVS-CNN 8-16",
    "points": "2,000 training / 1,000 test clouds of 128 points, 4 epochs, PointNet width 1/8",
}


def part_names() -> list[str]:
    return list(PARTS)


def _recipe(part: Part, method: Method, T: int, seed: int, quick: bool) -> dict[str, Any]:
    r = _merge(part.base, part.quick_base) if quick else copy.deepcopy(part.base)
    if quick and "model" in method.recipe and "name" in method.recipe["model"]:
        # another architecture (Joint A-SNN): keep the quick width
        method_recipe = _merge(method.recipe, {"model": {"width": part.quick_base.get("model", {}).get(
            "width", method.recipe["model"].get("width"))}})
    else:
        method_recipe = method.recipe
    model_name = method_recipe.get("model", {}).get("name")
    if model_name is not None and model_name != r["model"]["name"]:
        r["model"] = {}  # a different architecture: its own model section only
    r = _merge(r, method_recipe)
    r["T"] = T
    r["seed"] = seed
    r["description"] = f"{r['description']}; method {method.name}, T={T}, seed {seed}" + (" (quick)" if quick else "")
    return r


def plan(parts: list[str] | None = None, seeds: int = 3, quick: bool = False,
         methods: list[str] | None = None) -> list[StudyRun]:
    """The runs of the named parts (all by default) for seeds ``0..seeds-1``; ``methods`` keeps only those
    method names."""
    names = list(parts) if parts else part_names()
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        raise ValueError(f"unknown study part(s) {unknown}; the parts are {part_names()}")
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be an integer >= 1, got {seeds!r}")
    if methods:
        known = {m.name for n in names for m in PARTS[n].methods}
        bad = sorted(set(methods) - known)
        if bad:
            raise ValueError(f"unknown method(s) {bad} in parts {names}; known: {sorted(known)}")
    runs: list[StudyRun] = []
    for n in names:
        part = PARTS[n]
        for seed in range(seeds):
            for m in part.methods:
                if methods and m.name not in methods:
                    continue
                for T in m.Ts or part.Ts:
                    runs.append(StudyRun(n, m.name, T, seed, quick, _recipe(part, m, T, seed, quick)))
    return runs
