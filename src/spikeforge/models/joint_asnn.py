"""Joint A-SNN (Guo et al., Pattern Recognition; arXiv:2305.02099; ``docs/methods/joint_asnn.md``): an ANN and an SNN
trained jointly in one dual-mode network that shares most parameters, with multi-exit self-distillation.

**Weight factorisation.** Every conv weight ``W ∈ R^{Co×Ci×k×k}`` is stored per spatial tap as a batched SVD
``W[:, :, i, j] = U_ij · diag(σ_ij) · V_ij`` with ``U ∈ R^{k×k×Co×r}``, ``V ∈ R^{k×k×r×Ci}``, ``r = min(Co, Ci)``.
``U`` and ``V`` are *shared* by both networks; the singular values are *private*: ``σ_ann`` and ``σ_snn``, both
initialised to ``σ``. So ``W_ann = U diag(σ_ann) V`` and ``W_snn = U diag(σ_snn) V`` (permuted back to
``(Co, Ci, k, k)``). The official code *reshapes* the ``(Co, Ci, k, k)`` weight to ``(k, k, Co, Ci)`` (scrambling
taps once at init, harmless for a random init); this implementation *permutes*, so at initialisation
``U diag(σ) V`` reproduces the initial kaiming weights exactly.

**Private parts.** BN is separate per network, both plain BNs with weight initialised to ``bn_weight_init`` = 1
and bias 0 (the official ``ASBatchNorm2d``). ANN: ``nn.BatchNorm2d`` on ``[B, C, H, W]``. SNN
(``snn_bn="per_step"``, the official code, whose SNN branch runs one time step per forward call):
:class:`StepBatchNorm2d` — every step ``t`` is normalised with the batch statistics of ``x[t]`` alone, and the one
running estimate is updated after every step (T momentum updates per batch); ``snn_bn="shared"`` pools the
statistics over T·B instead (:class:`~spikeforge.layers.BatchNorm2d`). In eval mode both use the running
estimate, so the SNN export and the fold are the same for both (``docs/methods/joint_asnn.md``). Linear layers keep
separate full weights ``weight_ann`` / ``weight_snn`` and share their bias (as the official code's ``ASLinear``).
Activation: ReLU (ANN) vs the LIF neuron (SNN; default τ-decay 0.25, V_th 0.5, hard reset, rectangular surrogate of
width 1). No conv bias.

**Network.** CIFAR ResNet-18: 3×3 stride-1 stem, no max-pool, stages of 2 BasicBlocks with widths
64/128/256/512 (× ``width``), plus three auxiliary exits after stages 1–3. Each exit: 1×1 conv (→ C_4/4) → BN →
act → k×k conv stride k (k = 8, 4, 2) → BN → act → 1×1 conv (→ C_4) → BN → act → global average pool → linear.

**Time.** The ANN branch sees the static image (``x.mean(0)`` of the time-first input; equal to ``x[0]`` for
direct encoding); the SNN branch runs multi-step on ``x[T, B, ...]`` (a fresh membrane per sequence, which equals
T stateful single steps; with ``snn_bn="per_step"`` the BNs see the steps one at a time, as there). SNN logits
and features are *summed* over T in the loss (readout ``sum``).

``model(x)`` runs the SNN branch's final exit only and returns per-step logits ``[T, B, K]`` (the registry
contract); :meth:`JointASNN.forward_joint` runs both branches with all exits for the Joint objective;
:meth:`JointASNN.export_snn` returns the SNN branch alone as a plain spiking ResNet of library layers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..layers import AdaptiveAvgPool2d, BasicBlock, BatchNorm2d, Conv2d, Flatten, Linear, make_neuron, out_hw
from ..layers.synaptic import SynapticGeometry, conv_geometry
from ..layers.time import seq_apply
from ..neurons import NeuronConfig, neuron_config
from .outputs import ModelOutput
from .registry import SpikingModel, register_model

__all__ = [
    "MODES", "SNN_BN_STATS", "StepBatchNorm2d", "DualConv2d", "DualBatchNorm2d", "DualAct", "DualLinear",
    "DualBasicBlock", "DualExit", "BranchOutput", "JointOutputs", "JointASNN", "joint_asnn_resnet18",
]

MODES = ("ann", "snn")
SNN_BN_STATS = ("per_step", "shared")


def _check_snn_bn(snn_bn: str) -> str:
    if snn_bn not in SNN_BN_STATS:
        raise ValueError(f"snn_bn (statistics of the SNN branch's BN) must be one of {SNN_BN_STATS}, got {snn_bn!r}")
    return snn_bn


def _check_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"dual-mode layer mode must be one of {MODES}, got {mode!r}")
    return mode


class _Dual(nn.Module):
    """Base of the dual-mode layers: ``mode`` selects the ANN (``[B, ...]`` input) or SNN (``[T, B, ...]``) path."""

    mode: str = "snn"


class DualConv2d(_Dual):
    """Conv with SVD-factorised weights: shared ``U``, ``V``, private ``sigma_ann`` / ``sigma_snn`` (no bias)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0):
        super().__init__()
        k = int(kernel_size)
        self.in_channels, self.out_channels, self.kernel_size = int(in_channels), int(out_channels), k
        self.stride, self.padding = int(stride), int(padding)
        w = torch.empty(out_channels, in_channels, k, k)
        nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
        self.factorise_(w)

    @torch.no_grad()
    def factorise_(self, weight: Tensor) -> None:
        """(Re)initialise from a full weight ``(Co, Ci, k, k)``: per-tap SVD, σ_ann = σ_snn = σ."""
        expected = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        if tuple(weight.shape) != expected:
            raise ValueError(f"weight must have shape {expected}, got {tuple(weight.shape)}")
        taps = weight.permute(2, 3, 0, 1)  # (k, k, Co, Ci)
        U, S, Vh = torch.linalg.svd(taps, full_matrices=False)  # U (k,k,Co,r), S (k,k,r), Vh (k,k,r,Ci)
        self.U = nn.Parameter(U.contiguous())
        self.V = nn.Parameter(Vh.contiguous())
        self.sigma_ann = nn.Parameter(S.clone())
        self.sigma_snn = nn.Parameter(S.clone())

    def weight_for(self, mode: str) -> Tensor:
        """``U diag(σ_mode) V`` permuted to ``(Co, Ci, k, k)``."""
        sigma = self.sigma_ann if _check_mode(mode) == "ann" else self.sigma_snn
        taps = (self.U * sigma.unsqueeze(-2)) @ self.V  # (k, k, Co, Ci)
        return taps.permute(2, 3, 0, 1)

    def forward(self, x: Tensor) -> Tensor:
        w = self.weight_for(self.mode)
        if self.mode == "ann":
            return F.conv2d(x, w, None, self.stride, self.padding)
        if x.ndim != 5:
            raise ValueError(f"SNN mode expects [T, B, C, H, W], got shape {tuple(x.shape)}")
        return seq_apply(lambda z: F.conv2d(z, w, None, self.stride, self.padding), x)

    def synaptic_geometry(self) -> SynapticGeometry:
        """The conv this layer computes (either mode), for the operation counters."""
        return conv_geometry(self, 2)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, rank={self.U.shape[-1]}")


class StepBatchNorm2d(nn.BatchNorm2d):
    """BN on ``[T, B, C, H, W]`` called once per time step: in training, step ``t`` is normalised with the batch
    statistics of ``x[t]`` (mean and biased variance over B, H, W) and the single running estimate is updated
    after each step, ``r ← (1 − m)·r + m·s_t`` (unbiased variance), t = 1..T in order. In eval mode every step
    uses the running estimate, exactly like a time-shared BN (same parameters and buffers as ``nn.BatchNorm2d``).

    This is the SNN BN of the official Joint A-SNN code (yfguo91/Joint-A-SNN, ``ASBatchNorm2d``), whose SNN branch
    is stepped one time step per forward call (arXiv:2305.02099; docs/methods/joint_asnn.md).
    """

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 5:
            raise ValueError(f"StepBatchNorm2d expects [T, B, C, H, W], got shape {tuple(x.shape)}")
        if not self.training:
            return super().forward(x.flatten(0, 1)).reshape(x.shape)
        return torch.stack([super(StepBatchNorm2d, self).forward(x[t]) for t in range(x.shape[0])])


class DualBatchNorm2d(_Dual):
    """Separate BN per network: ``bn_ann`` (``[B, C, H, W]``) and ``bn_snn`` (``[T, B, C, H, W]``): per-step
    statistics (:class:`StepBatchNorm2d`, ``snn_bn="per_step"``) or pooled over T (``"shared"``)."""

    def __init__(self, channels: int, weight_init: float = 1.0, snn_bn: str = "per_step"):
        super().__init__()
        self.bn_ann = nn.BatchNorm2d(channels)
        self.bn_snn: nn.BatchNorm2d = StepBatchNorm2d(channels) if _check_snn_bn(snn_bn) == "per_step" \
            else BatchNorm2d(channels)
        for bn in (self.bn_ann, self.bn_snn):
            nn.init.constant_(bn.weight, weight_init)
            nn.init.zeros_(bn.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.bn_ann(x) if self.mode == "ann" else self.bn_snn(x)


class DualAct(_Dual):
    """ReLU (ANN) or a spiking neuron (SNN)."""

    def __init__(self, channels: int, neuron: NeuronConfig, hw: tuple[int, int] | None = None):
        super().__init__()
        self.sn = make_neuron(neuron, channels, hw)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x) if self.mode == "ann" else self.sn(x)


class DualLinear(_Dual):
    """Separate full weights ``weight_ann`` / ``weight_snn`` with a shared bias (official ``ASLinear``)."""

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        base = nn.Linear(in_features, out_features)
        nn.init.kaiming_normal_(base.weight, mode="fan_out", nonlinearity="relu")
        self.weight_ann = nn.Parameter(base.weight.detach().clone())
        self.weight_snn = nn.Parameter(base.weight.detach().clone())
        self.bias = nn.Parameter(base.bias.detach().clone())

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight_ann if self.mode == "ann" else self.weight_snn, self.bias)

    def synaptic_geometry(self) -> SynapticGeometry:
        """The linear layer this computes (either mode), for the operation counters."""
        return SynapticGeometry("linear", int(self.weight_snn.shape[1]), int(self.weight_snn.shape[0]))


def _global_pool(x: Tensor) -> Tensor:
    """Average over the two spatial dims: ``[B, C, H, W] -> [B, C]`` or ``[T, B, C, H, W] -> [T, B, C]``."""
    return x.mean(dim=(-2, -1))


class DualBasicBlock(nn.Module):
    """``act2(bn2(conv2(act1(bn1(conv1(x))))) + shortcut(x))`` with dual-mode layers (names as
    :class:`spikeforge.layers.BasicBlock`: conv1, bn1, sn1, conv2, bn2, sn2, shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int, neuron: NeuronConfig, hw: tuple[int, int] | None,
                 bn: tuple[float, str] = (1.0, "per_step")):
        super().__init__()
        ohw = out_hw(hw, stride)
        self.cin, self.cout, self.stride = cin, cout, stride
        self.conv1 = DualConv2d(cin, cout, 3, stride, 1)
        self.bn1 = DualBatchNorm2d(cout, *bn)
        self.sn1 = DualAct(cout, neuron, ohw)
        self.conv2 = DualConv2d(cout, cout, 3, 1, 1)
        self.bn2 = DualBatchNorm2d(cout, *bn)
        self.sn2 = DualAct(cout, neuron, ohw)
        self.shortcut: nn.Module
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(DualConv2d(cin, cout, 1, stride, 0), DualBatchNorm2d(cout, *bn))
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        y = self.sn1(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return self.sn2(y + self.shortcut(x))


class DualExit(nn.Module):
    """Auxiliary exit: 1×1 conv → BN → act → k×k/stride-k conv → BN → act → 1×1 conv → BN → act → GAP → linear."""

    def __init__(self, cin: int, cout: int, kernel: int, num_classes: int, neuron: NeuronConfig,
                 hw: tuple[int, int] | None, bn: tuple[float, str] = (1.0, "per_step")):
        super().__init__()
        mid = max(1, cout // 4)
        khw = None if hw is None else (hw[0] // kernel, hw[1] // kernel)
        self.body = nn.Sequential(
            DualConv2d(cin, mid, 1), DualBatchNorm2d(mid, *bn), DualAct(mid, neuron, hw),
            DualConv2d(mid, mid, kernel, kernel), DualBatchNorm2d(mid, *bn), DualAct(mid, neuron, khw),
            DualConv2d(mid, cout, 1), DualBatchNorm2d(cout, *bn), DualAct(cout, neuron, khw),
        )
        self.head = DualLinear(cout, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        feature = _global_pool(self.body(x))
        return self.head(feature), feature


@dataclass
class BranchOutput:
    """One branch's outputs. ``logits`` / ``features`` are ordered ``[final, exit1, exit2, exit3]``; SNN tensors
    are per step (``[T, B, K]`` / ``[T, B, C]``), ANN tensors have no time dim."""

    logits: list[Tensor]
    features: list[Tensor]


@dataclass
class JointOutputs:
    """Outputs of :meth:`JointASNN.forward_joint`: the ANN (teacher) and SNN (student) branches."""

    ann: BranchOutput
    snn: BranchOutput


class JointASNN(SpikingModel):
    """Dual-mode CIFAR ResNet-18 of Joint A-SNN (see the module docstring)."""

    input_kind = "static"
    exit_kernels = (8, 4, 2)

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width: float = 1.0,
                 blocks: tuple[int, ...] = (2, 2, 2, 2), neuron: Any = None, bn_weight_init: float = 1.0,
                 input_size: tuple[int, int] | None = None, snn_bn: str = "per_step"):
        super().__init__()
        if width <= 0:
            raise ValueError(f"width multiplier must be positive, got {width}")
        if len(blocks) != 4 or any(int(b) < 1 for b in blocks):
            raise ValueError(f"blocks must give four stage depths >= 1, got {blocks}")
        cfg = neuron_config(neuron)
        self.neuron_config = cfg
        self.num_classes, self.in_channels, self.width = int(num_classes), int(in_channels), float(width)
        self.blocks_per_stage = tuple(int(b) for b in blocks)
        self.bn_weight_init = float(bn_weight_init)
        self.snn_bn = _check_snn_bn(snn_bn)
        bn = (self.bn_weight_init, self.snn_bn)
        self.input_size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
        self.input_shape = (self.in_channels,) + (self.input_size or (32, 32))  # per sample; CIFAR by default
        widths = tuple(max(1, int(round(c * width))) for c in (64, 128, 256, 512))
        self.widths = widths
        hw = self.input_size
        self.conv1 = DualConv2d(in_channels, widths[0], 3, 1, 1)
        self.bn1 = DualBatchNorm2d(widths[0], *bn)
        self.sn1 = DualAct(widths[0], cfg, hw)
        stages: list[nn.Sequential] = []
        stage_hw: list[tuple[int, int] | None] = []
        cin = widths[0]
        for i, (cout, depth) in enumerate(zip(widths, self.blocks_per_stage)):
            stride = 1 if i == 0 else 2
            layer = []
            for j in range(depth):
                layer.append(DualBasicBlock(cin, cout, stride if j == 0 else 1, cfg, hw, bn))
                hw = out_hw(hw, stride if j == 0 else 1)
                cin = cout
            stages.append(nn.Sequential(*layer))
            stage_hw.append(hw)
        self.layer1, self.layer2, self.layer3, self.layer4 = stages
        self.exits = nn.ModuleList([
            DualExit(widths[i], widths[3], k, num_classes, cfg, stage_hw[i], bn)
            for i, k in enumerate(self.exit_kernels)
        ])
        self.fc = DualLinear(widths[3], num_classes)
        self._set_mode("snn")

    # --- modes -------------------------------------------------------------------------------------------
    def _set_mode(self, mode: str) -> None:
        _check_mode(mode)
        for m in self.modules():
            if isinstance(m, _Dual):
                m.mode = mode

    @contextlib.contextmanager
    def mode(self, mode: str) -> Iterator[None]:
        """Run the block in ``ann`` or ``snn`` mode; the model returns to ``snn`` afterwards."""
        self._set_mode(mode)
        try:
            yield
        finally:
            self._set_mode("snn")

    # --- forward -----------------------------------------------------------------------------------------
    def _trunk(self, x: Tensor, exits: bool) -> BranchOutput:
        x = self.sn1(self.bn1(self.conv1(x)))
        logits: list[Tensor] = []
        features: list[Tensor] = []
        for i, stage in enumerate((self.layer1, self.layer2, self.layer3, self.layer4)):
            x = stage(x)
            if exits and i < 3:
                z, f = self.exits[i](x)
                logits.append(z)
                features.append(f)
        feature = _global_pool(x)
        return BranchOutput([self.fc(feature)] + logits, [feature] + features)

    def forward_branch(self, x: Tensor, mode: str, exits: bool = True) -> BranchOutput:
        """One branch: ``ann`` on ``x[B, C, H, W]``, ``snn`` on ``x[T, B, C, H, W]``."""
        want = 4 if _check_mode(mode) == "ann" else 5
        if x.ndim != want:
            layout = "[B, C, H, W]" if mode == "ann" else "[T, B, C, H, W]"
            raise ValueError(f"the {mode.upper()} branch expects {layout}, got shape {tuple(x.shape)}")
        with self.mode(mode):
            return self._trunk(x, exits)

    def forward_joint(self, x: Tensor) -> JointOutputs:
        """Both branches with all exits: the ANN on ``x.mean(0)`` (the static image), the SNN on ``x[T, B, ...]``."""
        if x.ndim != 5:
            raise ValueError(f"JointASNN expects [T, B, C, H, W], got shape {tuple(x.shape)}")
        ann = self.forward_branch(x.mean(0), "ann")
        snn = self.forward_branch(x, "snn")
        return JointOutputs(ann, snn)

    def forward(self, x: Tensor, aux: bool = False, joint: bool = False) -> Tensor | ModelOutput:
        """SNN branch, final exit: per-step logits ``[T, B, K]`` (sum them over T for the Joint readout).

        ``aux=True`` (or ``joint=True``) runs :meth:`forward_joint` instead (both branches, all exits) and returns a
        :class:`~spikeforge.models.ModelOutput`: the SNN final-exit logits and ``aux["joint"]`` =
        :class:`JointOutputs` — the form the Joint objective calls, so that wrappers such as
        DistributedDataParallel see a normal forward call."""
        if aux or joint:
            out = self.forward_joint(x)
            return ModelOutput(out.snn.logits[0], {"joint": out})
        return self.forward_branch(x, "snn", exits=False).logits[0]

    # --- export and fold ---------------------------------------------------------------------------------
    def fold_inference(self, scale: Any, ctx: Any) -> tuple[nn.Module, Any]:
        """Fold protocol (:class:`spikeforge.folding.FoldsItself`): inference runs the SNN branch only, so the model
        folds into its :meth:`export_snn` (materialised ``W_snn``, SNN BNs and linear weights, no ANN parameters,
        no exits), folded like any plain spiking ResNet. The export carries ``source_neuron_names``
        (:class:`spikeforge.folding.RenamesNeurons`) so that ``verify_fold`` compares each neuron with its source."""
        if scale is not None:
            raise ctx.error_unconsumed(scale, "JointASNN")
        if ctx.name:
            raise ctx.error("a JointASNN nested in another module cannot be replaced by its SNN export; fold the "
                            "JointASNN itself")
        return ctx.fold(self.export_snn().eval(), None, ctx.name)

    @torch.no_grad()
    def export_snn(self) -> nn.Sequential:
        """The SNN branch alone as a plain spiking ResNet of library layers (``layers.Conv2d`` with the
        materialised ``W_snn``, the SNN BNs (:class:`StepBatchNorm2d` or time-shared, as in this model),
        :class:`~spikeforge.neurons.Neuron`, ``layers.BasicBlock``,
        global average pool, ``layers.Linear``): no ANN parameters, no exits. Output: per-step logits."""
        cfg = self.neuron_config
        hw = self.input_size
        mods: list[nn.Module] = [_export_conv(self.conv1), _export_bn(self.bn1), _export_neuron(self.sn1, cfg, hw)]
        # qualified name of every exported neuron -> the neuron it copies in this model (for verify_fold)
        names = {"2": "sn1.sn"}
        for s_idx, stage in enumerate((self.layer1, self.layer2, self.layer3, self.layer4), start=1):
            for b_idx, block in enumerate(stage):
                blk = cast(DualBasicBlock, block)  # the stages hold DualBasicBlocks only (see __init__)
                for sn in ("sn1", "sn2"):
                    names[f"{len(mods)}.{sn}"] = f"layer{s_idx}.{b_idx}.{sn}.sn"
                out = BasicBlock(blk.cin, blk.cout, blk.stride, cfg, style="standard", norm="bn", hw=hw)
                out.conv1.weight.copy_(blk.conv1.weight_for("snn"))
                out.bn1 = _export_bn(blk.bn1)
                out.sn1.load_state_dict(blk.sn1.sn.state_dict())
                out.conv2.weight.copy_(blk.conv2.weight_for("snn"))
                out.bn2 = _export_bn(blk.bn2)
                out.sn2.load_state_dict(blk.sn2.sn.state_dict())
                if isinstance(blk.shortcut, nn.Sequential):
                    # both shortcuts are Sequential(1×1 conv, BN): a strided/widening block
                    out_conv = cast(Conv2d, cast(nn.Sequential, out.shortcut)[0])
                    src_conv = cast(DualConv2d, blk.shortcut[0])
                    src_bn = cast(DualBatchNorm2d, blk.shortcut[1])
                    out_conv.weight.copy_(src_conv.weight_for("snn"))
                    cast(nn.Sequential, out.shortcut)[1] = _export_bn(src_bn)
                hw = out_hw(hw, blk.stride)
                mods.append(out)
        fc = Linear(self.widths[3], self.num_classes)
        fc.weight.copy_(self.fc.weight_snn)
        fc.bias.copy_(self.fc.bias)
        mods += [AdaptiveAvgPool2d((1, 1)), Flatten(), fc]
        model = nn.Sequential(*mods)
        model.num_classes = self.num_classes  # type: ignore[assignment]
        model.input_kind = "static"  # type: ignore[assignment]
        # the RenamesNeurons protocol (spikeforge.folding): neuron name here -> the neuron it copies in this model
        model.source_neuron_names = dict(names)  # type: ignore[assignment]
        model.train(self.training)
        return model


def _export_conv(conv: DualConv2d) -> Conv2d:
    out = Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=False)
    out.weight.data.copy_(conv.weight_for("snn").detach())
    return out


def _export_bn(bn: DualBatchNorm2d) -> nn.BatchNorm2d:
    """A copy of the SNN branch's BN of the same kind (per-step or time-shared statistics; equal in eval mode)."""
    src = bn.bn_snn
    out = type(src)(src.num_features, eps=src.eps, momentum=src.momentum)
    out.load_state_dict(src.state_dict())
    return out


def _export_neuron(act: DualAct, cfg: NeuronConfig, hw: tuple[int, int] | None) -> nn.Module:
    fs = act.sn.feature_shape
    assert fs is not None and fs[0] is not None  # DualAct builds its neuron for (channels, H, W)
    out = make_neuron(cfg, fs[0], hw)
    out.load_state_dict(act.sn.state_dict())
    return out


@register_model
def joint_asnn_resnet18(num_classes: int = 10, in_channels: int = 3, width: float = 1.0, neuron: Any = None,
                        bn_weight_init: float = 1.0, input_size: tuple[int, int] | None = None,
                        snn_bn: str = "per_step", blocks: tuple[int, ...] = (2, 2, 2, 2)) -> JointASNN:
    """Joint A-SNN dual-mode CIFAR ResNet-18 with three exits (arXiv:2305.02099); ``width`` scales channels.
    ``snn_bn``: ``per_step`` (official: per-step batch statistics, one running estimate) or ``shared`` (over T·B).
    ``blocks``: BasicBlocks per stage (the paper's ResNet-18 is ``(2, 2, 2, 2)``; the SNN branch then has the shape
    of ``cifar_resnet`` with the same ``blocks``)."""
    return JointASNN(num_classes, in_channels, width, tuple(blocks), neuron, bn_weight_init, input_size, snn_bn)
