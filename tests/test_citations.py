"""Docstrings and recipe headers cite the paper and ``docs/methods/*.md``, never the internal methods.md."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_no_citation_of_the_internal_methods_file():
    pattern = re.compile(r"(?<!docs/methods/)(?<![\w/])methods\.md")
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in sorted((ROOT / "src").rglob("*")) if p.suffix in (".py", ".yaml")
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if pattern.search(line)]
    assert hits == []


def test_cited_method_pages_exist():
    cited = {m for p in (ROOT / "src").rglob("*.py")
             for m in re.findall(r"docs/methods/([\w-]+\.md)", p.read_text(encoding="utf-8"))}
    assert cited and all((ROOT / "docs" / "methods" / name).is_file() for name in cited), cited
