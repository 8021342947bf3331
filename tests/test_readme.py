"""The README's Python examples run as written, and their folds are exact."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_python_example_runs():
    blocks = _blocks()
    assert blocks, "README has no python example"
    namespace: dict = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)
    report = namespace["sf"].verify_fold(namespace["model"], namespace["folded"],
                                         namespace["sf"].encode.direct(namespace["x"], 4))
    assert report.max_dev <= 1e-5 and report.spikes_equal


def test_readme_build_your_own_network_runs_and_folds():
    text = README.read_text()
    assert "## Build your own network" in text and "## Your own dataset" in text
    block = next(b for b in _blocks() if "from spikeforge import layers" in b)
    namespace: dict = {}
    exec(compile(block, str(README), "exec"), namespace)
    sf, net, x = namespace["sf"], namespace["net"], namespace["x"]
    assert net(x).shape == (4, 8, 10)
    folded = sf.fold(net)
    report = sf.verify_fold(net, folded, x)
    assert report.max_dev <= 1e-5 and report.spikes_equal
    neurons = [m for m in folded.modules() if isinstance(m, namespace["N"].Neuron)]
    assert neurons and all(m.mpbn is None for m in neurons)  # MPBN became thresholds


def test_every_readme_python_block_runs():
    from spikeforge.data import REGISTRY

    before = set(REGISTRY)
    try:
        for code in _blocks():
            namespace: dict = {}
            exec(compile(code, str(README), "exec"), namespace)
            if "train" in namespace and hasattr(namespace["train"], "x"):  # "Your own dataset"
                assert tuple(namespace["train"].x.shape) == (64, 1, 8, 8) and namespace["train"].classes
    finally:
        for name in set(REGISTRY) - before:  # the README registers an example dataset
            REGISTRY.pop(name)
