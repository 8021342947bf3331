"""Layers for time-first spiking sequences: time folding, SNN batch-norm variants, residual blocks."""

from .blocks import BasicBlock, conv_bn, downsample_shortcut, make_neuron, make_norm, out_hw
from .norm import BatchNorm1d, BatchNorm2d, BNTT2d, TDBatchNorm2d, TEBN2d
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
    seq_apply,
)
from .unshared import UnsharedConv2d, unshared_conv2d

__all__ = [
    "AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AvgPool1d", "AvgPool2d", "BNTT2d", "BasicBlock", "BatchNorm1d",
    "BatchNorm2d", "Conv1d", "Conv2d", "Dropout", "Flatten", "Identity", "Linear", "MaxPool1d", "MaxPool2d",
    "SeqModule", "TDBatchNorm2d", "TEBN2d", "UnsharedConv2d", "conv_bn", "downsample_shortcut", "make_neuron",
    "make_norm", "out_hw", "seq_apply", "unshared_conv2d",
]
