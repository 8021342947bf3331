"""The model-entry check rejects a bad batch before any layer (BatchNorm statistics included) changes state."""

from __future__ import annotations

import pytest
import torch

import spikeforge as sf
from spikeforge.functional import NonFiniteError


@pytest.mark.parametrize("neuron", [{"preset": "ternary", "pre_fire": "mpbn"}, "lif"])
def test_nan_batch_in_training_leaves_batchnorm_untouched(neuron):
    torch.manual_seed(0)
    model = sf.create_model("convnet", widths=(4, 8), neuron=neuron).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.rand(2, 3, 1, 8, 8)
    x[1, 2, 0, 4, 4] = float("nan")
    with pytest.raises(NonFiniteError, match="1 NaN/Inf value"):
        model(x)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running means, variances, counters
    model(torch.rand(2, 3, 1, 8, 8))  # still usable
    assert all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point())


@pytest.mark.parametrize("dtype, match", [
    (torch.float64, "float32 parameters but the input is torch.float64"),
    (torch.float16, "float32 parameters but the input is torch.float16"),
    (torch.int64, "floating-point input static .*got dtype torch.int64"),
])
def test_wrong_dtype_is_a_clear_error(dtype, match):
    model = sf.create_model("convnet", widths=(4, 8))
    x = (torch.rand(2, 3, 1, 8, 8) * 10).to(dtype)
    with pytest.raises(TypeError, match=match):
        model(x)
    assert model.double()(torch.rand(2, 3, 1, 8, 8, dtype=torch.float64)).dtype == torch.float64


def test_layout_and_channel_errors_name_the_expected_layout():
    model = sf.create_model("convnet", widths=(4, 8))
    with pytest.raises(ValueError, match=r"static \[T, B, 1, H, W\].*encode.direct"):
        model(torch.rand(3, 1, 8, 8))
    with pytest.raises(ValueError, match=r"built for 1 input channel"):
        model(torch.rand(2, 3, 3, 8, 8))
    with pytest.raises(ValueError, match="T = 0"):
        model(torch.rand(0, 3, 1, 8, 8))
    with pytest.raises(TypeError, match="takes a tensor"):
        model([1, 2, 3])


def test_validation_switch_also_covers_the_model_entry():
    model = sf.create_model("convnet", widths=(4, 8)).eval()
    x = torch.rand(2, 3, 1, 8, 8)
    x[0, 0, 0, 0, 0] = float("inf")
    sf.neurons.set_input_validation(False)
    try:
        model(x)  # no check: the user asked for none
    finally:
        sf.neurons.set_input_validation(True)
    with pytest.raises(NonFiniteError):
        model(x)


def test_convnet_accepts_an_int_input_size():
    model = sf.create_model("convnet", input_size=12, widths=(4, 8))
    assert model(torch.rand(1, 2, 1, 12, 12)).shape == (1, 2, 10)
    assert model[-1].in_features == 8 * 3 * 3


def test_readout_of_zero_steps_is_an_error():
    with pytest.raises(ValueError, match="T = 0"):
        sf.readout(torch.zeros(0, 3, 10))
