"""The documentation site builds in strict mode (a broken link, a missing API reference, a docstring griffe cannot
parse or a missing snippet is an error), and its navigation covers what users need."""

from __future__ import annotations

import html as html_module
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs")
pytest.importorskip("material")
pytest.importorskip("mkdocstrings_handlers.python")


def _nav_files(items: list) -> list[str]:
    out: list[str] = []
    for item in items:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        out += _nav_files(value) if isinstance(value, list) else [value]
    return out


def _config() -> dict:
    # mkdocs.yml may hold python tags in general; this one is plain YAML
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text())


def test_strict_build_has_no_warnings(tmp_path: Path):
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log
    assert "WARNING" not in log, log
    html = (tmp_path / "site" / "api" / "neurons" / "index.html").read_text()
    assert 'id="spikeforge.neurons.Neuron.step"' in html  # the API reference is generated from the docstrings
    page = (tmp_path / "site" / "tutorials" / "streaming" / "index.html").read_text()
    text = html_module.unescape(re.sub(r"<[^>]+>", "", page))
    assert "states.get(i)" in text and "--8<--" not in text  # the example was included, section markers stripped


def test_nav_covers_the_user_guide():
    nav = _nav_files(_config()["nav"])
    for page in ("getting-started.md", "concepts.md", "data.md", "training.md", "benchmarks.md", "contributing.md",
                 "api/index.md"):
        assert page in nav
    methods = {p.name for p in (ROOT / "docs" / "methods").glob("*.md")}
    assert methods <= {Path(p).name for p in nav if p.startswith("methods/")}, "a method page is not in the nav"
    missing = [p for p in nav if not (ROOT / "docs" / p).is_file()]
    optional = _hooks().OPTIONAL_PAGES
    assert set(missing) <= optional, f"nav names missing pages {set(missing) - optional}"


def _hooks():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import mkdocs_hooks
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return mkdocs_hooks


def test_optional_pages_are_dropped_only_while_absent(tmp_path: Path):
    mkdocs_hooks = _hooks()
    nav = [{"Home": "index.md"}, {"Deployment": "deployment.md"}, {"Sub": [{"Results": "results.md"}, "x.md"]}]
    cfg = mkdocs_hooks.on_config({"nav": nav, "docs_dir": str(tmp_path)})
    assert cfg["nav"] == [{"Home": "index.md"}, {"Sub": ["x.md"]}]
    (tmp_path / "deployment.md").write_text("# d\n")
    cfg = mkdocs_hooks.on_config({"nav": nav, "docs_dir": str(tmp_path)})
    assert {"Deployment": "deployment.md"} in cfg["nav"]


def test_folding_package_is_referenced_from_one_page():
    """The folding package may be renamed: only docs/api/fold.md names it for mkdocstrings."""
    pages = [p for p in (ROOT / "docs").rglob("*.md") if re.search(r"^::: spikeforge\.folding\b", p.read_text(), re.M)]
    assert [p.relative_to(ROOT).as_posix() for p in pages] == ["docs/api/fold.md"]
