"""Every tutorial under examples/ runs with tiny settings (SPIKEFORGE_EXAMPLE_QUICK=1) and checks its own result,
and every one is rendered into the documentation site."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("*.py"))


def test_examples_exist():
    assert {p.stem for p in EXAMPLES} >= {"custom_network", "method_fold", "event_files", "streaming", "own_dataset"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_runs_quick(path: Path, tmp_path: Path):
    env = {**os.environ, "SPIKEFORGE_EXAMPLE_QUICK": "1", "MPLBACKEND": "Agg"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    args = [sys.executable, str(path)]
    if "sys.argv" in path.read_text():       # examples that write files take an output folder
        args.append(str(tmp_path / "out"))
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"{path.name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert proc.stdout.strip(), f"{path.name} printed nothing"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_is_in_the_site(path: Path):
    pages = "\n".join(p.read_text() for p in (ROOT / "docs" / "tutorials").glob("*.md"))
    assert f"examples/{path.name}" in pages, f"{path.name} is not included by any docs/tutorials page"
