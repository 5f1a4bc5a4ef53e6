"""The house runs one way: ``core`` at the bottom, ``ingestion`` and ``forecasting`` on it,
``tokenbook`` (the application) on those, ``dags`` on top; and no module imports itself back
through others. Read from the code with ``ast``, every import counted, including those inside
functions (a lazy import still ties two modules together)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("core", "ingestion", "forecasting", "tokenbook", "dags")
# What each package may import from the project (besides itself).
ALLOWED = {
    "core": set(),
    "ingestion": {"core"},
    "forecasting": {"core"},
    "tokenbook": {"core", "ingestion", "forecasting"},
    "dags": {"core", "tokenbook"},
}


def module_files(root: Path, packages=PACKAGES) -> dict[str, Path]:
    """Module name -> file, for every .py file of the packages under root."""
    out = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module an imported dotted name lands in (the longest prefix that is one)."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in modules:
            return candidate
        parts.pop()
    return None


def import_graph(root: Path, packages=PACKAGES) -> dict[str, set[str]]:
    """Module -> the project modules it imports (anywhere in the file)."""
    modules = module_files(root, packages)
    graph: dict[str, set[str]] = {}
    for mod, path in modules.items():
        is_pkg = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package
                    anchor = mod.split(".") if is_pkg else mod.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import submodule` imports the submodule; `from mod import name`
                # imports mod.
                subs = [f"{base}.{a.name}" for a in node.names]
                names = [n for n in subs if n in modules] or [base]
            for name in names:
                target = _resolve(name, modules)
                if target is not None and target != mod:
                    targets.add(target)
        graph[mod] = targets
    return graph


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, targets in sorted(graph.items()):
        pkg = mod.split(".")[0]
        for target in sorted(targets):
            tpkg = target.split(".")[0]
            if tpkg != pkg and tpkg not in ALLOWED[pkg]:
                bad.append(f"{mod} -> {target}")
    return bad


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_upward_import():
    bad = upward_imports(import_graph(ROOT))
    assert not bad, "imports against the layers (core < ingestion, forecasting < tokenbook < dags):\n" + "\n".join(bad)


def test_no_import_circle():
    found = circles(import_graph(ROOT))
    assert not found, "import circles:\n" + "\n".join(" <-> ".join(c) for c in found)


def test_the_checks_catch_a_lazy_upward_import_and_a_circle(tmp_path):
    """The analysis itself: a hidden import inside a function and a two-module circle are found."""
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "tokenbook" / "app.py").write_text("X = 1\n")
    (tmp_path / "ingestion" / "load.py").write_text(
        "def f():\n    from tokenbook.app import X\n    return X\n"
    )
    (tmp_path / "forecasting" / "a.py").write_text("from . import b\n")
    (tmp_path / "forecasting" / "b.py").write_text("import forecasting.a\n")
    (tmp_path / "core" / "ok.py").write_text("import os\n")
    graph = import_graph(tmp_path)
    assert upward_imports(graph) == ["ingestion.load -> tokenbook.app"]
    assert circles(graph) == [["forecasting.a", "forecasting.b"]]
