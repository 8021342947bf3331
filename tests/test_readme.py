"""The README's Python example runs as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert blocks, "README has no python example"
    for code in blocks:
        namespace: dict = {}
        exec(compile(code, str(README), "exec"), namespace)
    report = namespace["sf"].verify_fold(namespace["model"], namespace["folded"],
                                         namespace["sf"].encode.direct(namespace["x"], 4))
    assert report.max_dev <= 1e-5 and report.spikes_equal
