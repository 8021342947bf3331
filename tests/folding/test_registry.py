"""The rule registry: custom rules, MRO dispatch, and containers without a rule."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from spikeforge.folding import FoldError, Scale, fold, fold_conv_norm, fold_rule, registered_rules, verify_fold
from spikeforge.folding.registry import _RULES
from spikeforge.layers import BatchNorm1d, Linear
from spikeforge.neurons import Neuron


class TwoLayer(nn.Module):
    """Custom forward: fc -> bn -> neuron (with amplitude) -> head."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.bn, self.sn, self.head = Linear(6, 5, bias=False), BatchNorm1d(5), Neuron("real-spike", (5,)), \
            Linear(5, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.sn(self.bn(self.fc(x))))


def _trained() -> TwoLayer:
    torch.manual_seed(0)
    m = TwoLayer()
    with torch.no_grad():
        m.sn.amplitude.weight.uniform_(0.3, 1.7)
        m.bn.running_mean.uniform_(-0.2, 0.2)
        m.bn.weight.uniform_(0.5, 1.5)
    return m.double().eval()


def test_custom_container_without_rule_is_refused_with_guidance() -> None:
    with pytest.raises(FoldError, match=r"TwoLayer\) has a custom forward.*amplitude of sn.*rules_<name>\.py"):
        fold(_trained())


def test_registered_rule_folds_a_custom_module_exactly() -> None:
    @fold_rule(TwoLayer)
    def fold_two_layer(m: TwoLayer, scale: Scale | None, ctx):  # type: ignore[no-untyped-def]
        s = fold_conv_norm(m, "fc", "bn", scale, ctx)
        s = ctx.child(m, "sn", s)
        return m, ctx.child(m, "head", s)

    try:
        assert registered_rules()["TwoLayer"].endswith("fold_two_layer")
        model = _trained()
        folded = fold(model)
        assert isinstance(folded.bn, nn.Identity) and folded.sn.amplitude is None
        x = torch.randn(4, 7, 6, dtype=torch.float64) * 2
        assert verify_fold(model, folded, x).ok()
    finally:
        del _RULES[TwoLayer]


def test_duplicate_rule_registration_is_an_error() -> None:
    with pytest.raises(ValueError, match="already registered"):
        fold_rule(nn.Sequential)(lambda m, s, c: (m, s))
