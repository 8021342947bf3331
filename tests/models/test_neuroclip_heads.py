"""NeuroCLIP heads: the zero-shot sum-of-cosines identity and the inter-timestep adapter's state across frames."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from spikeforge.models.neuroclip import (
    GENERIC_TEMPLATE,
    FewShotHead,
    InterTimestepAdapter,
    ZeroShotHead,
    class_prompts,
    frame_cosines,
    prompt_template,
    sum_of_cosines,
    text_matrix,
    zero_shot_logits,
)
from spikeforge.neurons import Neuron


def test_prompt_templates_follow_the_official_code():
    assert prompt_template("nmnist") == 'A black and white photo of the Arabic numeral number: "{}".'
    assert prompt_template("nmnist-sim") == prompt_template("nmnist")
    assert prompt_template("cifar10-dvs") == "A low quality stick figure of the object {}."
    assert prompt_template("es-imagenet") == "A low quality point cloud image of {}."
    assert prompt_template("n-fashion-mnist-sim") == GENERIC_TEMPLATE
    assert class_prompts(["3", "7"], "a {}.") == ["a 3.", "a 7."]
    with pytest.raises(ValueError, match="must contain"):
        class_prompts(["3"], "no slot")


def test_zero_shot_logits_equal_the_sum_of_per_frame_cosines():
    g = torch.Generator().manual_seed(0)
    T, B, C, D = 5, 4, 3, 8
    f, e = torch.randn(T, B, D, generator=g), torch.randn(C, D, generator=g)
    w = torch.tensor([0.25, 0.5, 1.0, 0.75, 0.25])
    # direct: sum over t of cosine(f_t, e_c), one pair at a time
    direct = torch.zeros(B, C)
    for t in range(T):
        for b in range(B):
            for c in range(C):
                direct[b, c] += w[t] * F.cosine_similarity(f[t, b], e[c], dim=0)
    scale = 14.0
    got = zero_shot_logits(f, e, scale, w)
    torch.testing.assert_close(got, scale * direct / math.sqrt(T))
    torch.testing.assert_close(sum_of_cosines(f, e, w), direct / math.sqrt(T))
    # the text side: normalised class feature repeated T times, concatenation normalised
    tm = text_matrix(e, T)
    assert tm.shape == (C, T * D)
    torch.testing.assert_close(tm.norm(dim=1), torch.ones(C))
    torch.testing.assert_close(tm[:, D:2 * D], F.normalize(e, dim=-1) / math.sqrt(T))
    # predictions equal the argmax of the plain sum of cosines; the head gives the same logits
    assert torch.equal(got.argmax(1), frame_cosines(f, e).mul(w[:, None, None]).sum(0).argmax(1))
    torch.testing.assert_close(ZeroShotHead(e, scale, w)(f), got)
    with pytest.raises(ValueError, match="one per frame"):
        zero_shot_logits(f, e, 1.0, torch.ones(T + 1))
    with pytest.raises(ValueError, match=r"\[T, B, D\]"):
        zero_shot_logits(f[0], e)


def test_adapter_neuron_is_the_groups_lif_with_a_rectangular_surrogate():
    a = InterTimestepAdapter(64)
    assert isinstance(a.act, Neuron) and a.hidden == 8 and a.ratio == 0.6
    c = a.act.config
    assert (c.decay, c.threshold, c.reset, c.surrogate, c.surrogate_param) == (0.25, 0.5, "hard", "rectangular", 1.0)
    assert a.drop_in.p == a.drop_hidden.p == 0.5
    assert isinstance(InterTimestepAdapter(64, activation="relu").act, torch.nn.ReLU)
    with pytest.raises(ValueError, match="activation"):
        InterTimestepAdapter(64, activation="tanh")  # type: ignore[arg-type]


def _hand_adapter(activation: str) -> InterTimestepAdapter:
    """D = 2, one hidden unit reading feature 0; BNs are identities in eval mode; up-projection weight 1."""
    a = InterTimestepAdapter(2, reduction=2, activation=activation, ratio=0.5)  # type: ignore[arg-type]
    with torch.no_grad():
        for bn in (a.bn_in, a.bn_hidden):
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)  # (x - 0) / sqrt(var + eps) = x
        a.down.weight.copy_(torch.tensor([[1.0, 0.0]]))
        a.down.bias.zero_()
        a.up.weight.fill_(1.0)
        a.up.bias.zero_()
    return a.eval()


def test_adapter_membrane_carries_frame_1_into_frame_T():
    # T = 3. With frame 1: u1 = 0.4 (silent), u2 = 0.25 * 0.4 + 0.3 = 0.4 (silent), u3 = 0.25 * 0.4 + 0.42 = 0.52
    # fires. Without frame 1: u2 = 0.3, u3 = 0.25 * 0.3 + 0.42 = 0.495 stays silent.
    f = torch.tensor([[[0.4, 0.0]], [[0.3, 0.0]], [[0.42, 0.0]]])  # [T=3, B=1, D=2]
    f_changed = f.clone()
    f_changed[0, 0, 0] = 0.0
    snn = _hand_adapter("spiking")
    out, out_changed = snn(f), snn(f_changed)
    # f'_T = r * relu(up(spike_T)) + (1 - r) * f_T with r = 0.5 and spike_T in {0, 1}
    torch.testing.assert_close(out[2, 0], 0.5 * torch.tensor([1.0, 1.0]) + 0.5 * f[2, 0])
    torch.testing.assert_close(out_changed[2, 0], 0.5 * f[2, 0])
    torch.testing.assert_close(out[1], out_changed[1])  # frame 2 is silent either way
    assert not torch.equal(out[2], out_changed[2])
    # the mechanism: the neuron's state is the only path between frames; a stateless op (the ANN adapter's ReLU)
    # gives an output at frame T that does not depend on frame 1 at all
    ann = _hand_adapter("relu")
    assert torch.equal(ann(f)[2], ann(f_changed)[2])
    snn_no_state = _hand_adapter("spiking")
    snn_no_state.act = torch.nn.Identity()
    assert torch.equal(snn_no_state(f)[2], snn_no_state(f_changed)[2])


def test_adapter_matches_the_hand_written_recurrence_and_is_fresh_per_call():
    torch.manual_seed(0)
    T, B, D = 6, 5, 16
    a = InterTimestepAdapter(D, reduction=4).eval()
    f = torch.randn(T, B, D)
    u = a.hidden_input(f)
    v, spikes = torch.zeros(B, 4), []
    for t in range(T):
        h = 0.25 * v + u[t]
        s = (h >= 0.5).float()
        v = h * (1 - s)
        spikes.append(s)
    ref = 0.6 * F.relu(a.up(torch.stack(spikes))) + 0.4 * f
    torch.testing.assert_close(a(f), ref)
    torch.testing.assert_close(a(f), a(f))  # no state leaks from one call into the next


def test_few_shot_head_shapes_and_gradient_through_the_spikes():
    torch.manual_seed(0)
    T, B, C, D = 4, 8, 3, 32
    head = FewShotHead(InterTimestepAdapter(D), torch.randn(C, D), logit_scale=10.0)
    logits = head(torch.randn(T, B, D))
    assert logits.shape == (B, C) and logits.abs().max() <= 10.0 + 1e-5
    F.cross_entropy(logits, torch.arange(B) % C).backward()
    assert head.adapter.down.weight.grad is not None and head.adapter.down.weight.grad.abs().sum() > 0
    assert head.text.requires_grad is False
    with pytest.raises(ValueError, match=r"\[C, 32\]"):
        FewShotHead(InterTimestepAdapter(D), torch.randn(C, D + 1))


def test_doc_snippet_runs():
    import re
    from pathlib import Path

    page = Path(__file__).resolve().parents[2] / "docs" / "methods" / "neuroclip.md"
    blocks = re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)
    assert blocks
    for code in blocks:
        exec(compile(code, str(page), "exec"), {"__name__": "docs_neuroclip"})
