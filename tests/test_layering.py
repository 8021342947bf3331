"""The package's dependency rules, read from the source with ``ast`` (no import runs).

* ``functional -> neurons -> layers -> models``: a package imports only packages left of it (and the dependency-free
  utilities ``encode`` and ``registry``); none of them imports a package beside the chain (fold, losses, data, ...).
* ``models`` and ``analysis``/``fold``/``train``/``data``/``cli``: models import none of them; ``analysis``,
  ``fold`` and ``data`` import no ``models`` module at all; ``train``/``cli`` (and everything else beside the chain)
  reach the models only through the registry facade (``spikeforge.models``, ``.registry``, ``.complexity``),
  never an architecture module.
* ``data`` imports nothing else from spikeforge (the dependency-free ``registry`` helper excepted).
* No import cycle between packages (lazy imports inside functions count too).
* No ``try/except ImportError`` around an import of a spikeforge module.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "spikeforge"
CHAIN = ["functional", "neurons", "layers", "models"]
UTILITIES = {"encode", "registry"}  # top-level modules that import nothing from spikeforge
MODELS_FACADE = {"spikeforge.models", "spikeforge.models.registry", "spikeforge.models.complexity"}
NO_MODELS = {"analysis", "fold", "data"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(mod: str, is_pkg: bool, node: ast.ImportFrom) -> list[str]:
    """Absolute spikeforge module names an ``ImportFrom`` refers to (a name may be a submodule)."""
    if node.level:
        base = mod.split(".") if is_pkg else mod.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("spikeforge"):
        return []
    out = [target]
    for alias in node.names:
        sub = SRC.parent.joinpath(*f"{target}.{alias.name}".split("."))
        if sub.with_suffix(".py").is_file() or (sub / "__init__.py").is_file():
            out.append(f"{target}.{alias.name}")
    return out


def _imports(path: Path) -> list[tuple[str, int]]:
    mod, tree = _module_name(path), ast.parse(path.read_text(), str(path))
    is_pkg = path.name == "__init__.py"
    found: list[tuple[str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, node.lineno) for a in node.names if a.name.startswith("spikeforge")]
        elif isinstance(node, ast.ImportFrom):
            found += [(t, node.lineno) for t in _resolve(mod, is_pkg, node)]
    return found


def _unit(module: str) -> str | None:
    """The package (or top-level module) a ``spikeforge.*`` module belongs to; None for the root facade."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


FILES = sorted(SRC.rglob("*.py"))
EDGES = [(_module_name(p), target, line, p) for p in FILES for target, line in _imports(p)]


def test_the_source_tree_was_found():
    assert len(FILES) > 50 and any(t == "spikeforge.neurons" for _, t, _, _ in EDGES)


def _violations(rule) -> list[str]:
    return [f"{p.relative_to(SRC.parent)}:{line}: {src} imports {dst}" for src, dst, line, p in EDGES
            if _unit(src) is not None and _unit(dst) is not None and _unit(src) != _unit(dst)
            and rule(_unit(src), _unit(dst), dst)]


def test_the_chain_only_imports_downwards():
    def bad(a: str, b: str, dst: str) -> bool:
        if a not in CHAIN:
            return False
        return b not in UTILITIES and (b not in CHAIN or CHAIN.index(b) > CHAIN.index(a))

    assert _violations(bad) == []


def test_models_and_the_packages_beside_them():
    def bad(a: str, b: str, dst: str) -> bool:
        if a == "models":
            return b not in CHAIN and b not in UTILITIES
        if b == "models":
            return a in NO_MODELS or dst not in MODELS_FACADE
        return False

    assert _violations(bad) == []


def test_data_imports_nothing_else_from_spikeforge():
    assert _violations(lambda a, b, dst: a == "data" and b not in {"registry"}) == []


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = defaultdict(set)
    for src, dst, _, _ in EDGES:
        a, b = _unit(src), _unit(dst)
        if a is not None and b is not None and a != b:
            graph[a].add(b)
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(graph[node]):
            if nxt == path[0]:
                cycles.append(path + [nxt])
            elif nxt not in path and nxt > path[0]:  # report each cycle once, from its smallest member
                visit(nxt, path + [nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert cycles == []


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in ("ImportError", "ModuleNotFoundError") for n in names)


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(SRC)))
def test_no_try_except_import_error_around_own_imports(path):
    mod, is_pkg = _module_name(path), path.name == "__init__.py"
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Try) or not any(_catches_import_error(h) for h in node.handlers):
            continue
        for stmt in node.body:
            for sub in ast.walk(stmt):
                own = (isinstance(sub, ast.ImportFrom) and _resolve(mod, is_pkg, sub)) or (
                    isinstance(sub, ast.Import) and any(a.name.startswith("spikeforge") for a in sub.names))
                if own:
                    bad.append(sub.lineno)
    assert bad == [], f"{path.relative_to(SRC.parent)}: own-module import inside try/except ImportError at lines {bad}"
