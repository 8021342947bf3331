"""Train a paper method with a recipe, then fold it into plain spikes and check the fold.

The method here is Soft reset + MPR (InfLoR-SNN, arXiv:2307.04356): a soft reset and a membrane potential
rectifier before firing. The rectifier only exists during training; the fold replaces it by the threshold
`phi^-1(V_th)`, so inference runs a plain soft-reset LIF. Any bundled recipe (`spikeforge recipes`) works the
same way: `train("ternary-fmnist", ...)`.

Run: `python examples/method_fold.py [OUT_DIR]` (`SPIKEFORGE_EXAMPLE_QUICK=1` for a few seconds).
"""

import os
import sys
import tempfile

import spikeforge as sf
from spikeforge import data
from spikeforge.train import load_run, train

QUICK = os.environ.get("SPIKEFORGE_EXAMPLE_QUICK") == "1"

# --8<-- [start:recipe]
recipe = {
    "description": "Soft reset + MPR on the embedded 8x8 digits",
    "model": {"name": "convnet", "widths": [16, 32], "neuron": "soft-mpr"},
    "data": {"name": "digits"},
    "T": 2,
    "optim": {"name": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4},
    "schedule": {"name": "cosine"},
    "epochs": 6,
    "batch_size": 32,
}
# the same overrides as `spikeforge train ... --set key=value` (`spikeforge train --help-keys` lists them)
overrides = ["epochs=1", "data.limit=192", "device=cpu", "analysis.enabled=false", "log.tensorboard=false",
             "log.progress=never"] if QUICK else ["device=cpu"]
# --8<-- [end:recipe]


def main(out: str) -> dict:
    # --8<-- [start:train]
    metrics = train(recipe, out, overrides, verbose=not QUICK)   # trains, evaluates, folds, writes metrics.json
    print(f"test accuracy {metrics['test_acc']:.3f}, fold max deviation {metrics.get('fold_max_dev')}")

    model, cfg = load_run(out)                 # the trained model, rebuilt from the run directory
    folded = sf.fold(model)                    # MPR removed, its effect moved into the threshold
    test = data.get("digits", "test", limit=64)
    x = sf.encode.direct(test.x, cfg["T"])
    report = sf.verify_fold(model, folded, x)
    print(f"re-checked: max deviation {report.max_dev:.2e}, spikes equal {report.spikes_equal}")
    # --8<-- [end:train]
    assert report.spikes_equal
    return metrics


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(sys.argv[1])
    else:
        with tempfile.TemporaryDirectory() as tmp:
            main(tmp)
