"""A tiny finished run shared by the CLI tests (trained once per session through ``spikeforge train``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from spikeforge.cli.main import main

TINY_SET = ["--set", "epochs=2", "--set", "data.limit=48", "--set", "batch_size=16", "--set", "device=cpu",
            "--set", "model.widths=[4, 8]", "--set", "log.tensorboard=false", "--set", "log.progress=never",
            "--set", "fold.verify_samples=16", "--set", "analysis.samples=16"]


@pytest.fixture
def tiny_set() -> list[str]:
    return list(TINY_SET)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "quickstart", "--out", str(out), *TINY_SET]) == 0
    return out
