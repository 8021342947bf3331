"""Layers for time-first spiking sequences: time folding, SNN batch-norm variants, residual blocks."""

from .blocks import BasicBlock, conv_bn, downsample_shortcut, make_neuron, make_norm, out_hw
from .norm import BatchNorm1d, BatchNorm2d, BNTT2d, TDBatchNorm2d, TEBN2d
from .recompute import RecomputeConfig, SegmentPlan, hooks_rerun, recompute, recompute_plan, recomputing
from .spikes import (
    PackedSpikes,
    compress_spikes,
    pack_spikes,
    spike_amplitude,
    spike_conv2d,
    spike_linear,
    unpack_spikes,
)
from .time import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AvgPool1d,
    AvgPool2d,
    Conv1d,
    Conv2d,
    Dropout,
    Flatten,
    Identity,
    Linear,
    MaxPool1d,
    MaxPool2d,
    SeqModule,
    is_static,
    seq_apply,
)
from .unshared import UnsharedConv2d, unshared_conv2d

__all__ = [
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AvgPool1d", "AvgPool2d", "BNTT2d", "BasicBlock", "BatchNorm1d",
    "BatchNorm2d", "Conv1d", "Conv2d", "Dropout", "Flatten", "Identity", "Linear", "MaxPool1d", "MaxPool2d",
    "PackedSpikes", "RecomputeConfig", "SegmentPlan", "SeqModule", "TDBatchNorm2d", "TEBN2d", "UnsharedConv2d",
    "compress_spikes", "conv_bn", "downsample_shortcut", "hooks_rerun", "is_static", "make_neuron", "make_norm",
    "out_hw", "pack_spikes", "recompute", "recompute_plan", "recomputing", "seq_apply", "spike_amplitude",
    "spike_conv2d", "spike_linear", "unpack_spikes", "unshared_conv2d",
]
