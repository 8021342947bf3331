"""MkDocs hooks of the documentation site (``mkdocs.yml`` -> ``hooks``).

Pages that other work streams add later (``OPTIONAL_PAGES``) are listed in the nav already; while such a file is
absent its nav entry is dropped, so ``mkdocs build --strict`` stays clean before and after it arrives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

OPTIONAL_PAGES = {"deployment.md", "results.md", "reproduction.md"}


def _prune(items: list[Any], docs_dir: Path) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, dict):
            (title, value), = item.items()
            if isinstance(value, list):
                out.append({title: _prune(value, docs_dir)})
                continue
            target = value
        else:
            target = item
        if isinstance(target, str) and target in OPTIONAL_PAGES and not (docs_dir / target).is_file():
            continue
        out.append(item)
    return out


def on_config(config: Any, **kwargs: Any) -> Any:
    config["nav"] = _prune(list(config["nav"] or []), Path(config["docs_dir"]))
    return config
