"""The code blocks of docs/methods/*.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from spikeforge.folding.registry import _RULES

DOCS = Path(__file__).resolve().parents[2] / "docs" / "methods"
PAGES = ["ternary_spike.md", "real_spike.md", "mpbn.md", "soft_reset_mpr.md", "folding.md"]


@pytest.mark.parametrize("page", PAGES)
def test_doc_snippets_run(page: str) -> None:
    blocks = re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), flags=re.S)
    assert blocks, f"{page} has no python snippet"
    rules_before = dict(_RULES)
    try:
        for code in blocks:
            exec(compile(code, f"{page}", "exec"), {"__name__": f"docs_{page}"})
    finally:
        _RULES.clear()
        _RULES.update(rules_before)
