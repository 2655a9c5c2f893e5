"""The package's import graph: no cycles, and no import from a lower layer to a higher one.

The layers (docs/architecture.md), low to high: utilities, then losses/clusters/models, data,
the evaluation core, training (with its config), finished runs, experiments, and the command
line. Imports
inside ``if TYPE_CHECKING:`` are for annotations only and do not count; imports inside
functions do (they run).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import clinfonce

#: The package itself (its ``__init__``) is the public facade: it may hand out
#: ``clinfonce.load_encoder`` from the top, and no module of the package imports it but the
#: command line's, for ``__version__``.
PACKAGE = "clinfonce"
LAYERS: tuple[tuple[str, ...], ...] = (
    (
        "clinfonce.yaml_files",
        "clinfonce.outputs",
        "clinfonce.interrupted",
        "clinfonce.binder",
        "clinfonce.paths",
    ),
    ("clinfonce.losses", "clinfonce.clusters", "clinfonce.models"),
    ("clinfonce.data",),
    ("clinfonce.evaluation",),
    ("clinfonce.training", "clinfonce.config"),
    ("clinfonce.runs",),
    ("clinfonce.experiments",),
    ("clinfonce.cli", "clinfonce.__main__", PACKAGE),
)


def module_files(root: Path, package: str) -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package under ``root``."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node except those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def _imported(node: ast.AST, here: str, modules: dict[str, Path]) -> list[str]:
    """The package's modules an import statement loads (the most specific one per name)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            parent = here.split(".")[: len(here.split(".")) - node.level + 1]
            base = ".".join([*parent, *([base] if base else [])])
        # ``from pkg import name``: the submodule pkg.name when there is one, else pkg.
        names = [f"{base}.{alias.name}" for alias in node.names]
    else:
        return []
    found = []
    for name in names:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name:
            found.append(name)
    return found


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module -> the package's modules it imports at run time."""
    modules = module_files(root, package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            graph[name].update(t for t in _imported(node, here, modules) if t != name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    order: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        order[node] = low[node] = len(order)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in order:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], order[target])
        if low[node] == order[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return found


def layer_of(module: str) -> int:
    """Index in LAYERS of the longest prefix naming the module's room."""
    best, best_length = -1, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module == prefix or (prefix != PACKAGE and module.startswith(prefix + "."))
            if inside and len(prefix) > best_length:
                best, best_length = index, len(prefix)
    if best < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return best


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``a -> b`` for every import of a higher layer's module by a lower layer's."""
    return [
        f"{source} -> {target}"
        for source, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(source)
    ]


PACKAGE_ROOT = Path(clinfonce.__file__).parent


def test_package_has_no_import_cycle() -> None:
    assert cycles(import_graph(PACKAGE_ROOT, "clinfonce")) == []


def test_no_module_imports_a_higher_layer() -> None:
    assert upward_imports(import_graph(PACKAGE_ROOT, "clinfonce")) == []


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


def test_checks_find_a_cycle_and_an_upward_import(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "__init__.py": "",
            "data/__init__.py": "",
            "data/a.py": "from clinfonce.data import b\n",
            "data/b.py": "def f():\n    from clinfonce.data.a import x\n",
            "data/c.py": "from clinfonce.training import run\n",
            "training/__init__.py": "",
            "training/run.py": (
                "from typing import TYPE_CHECKING\n"
                "from clinfonce.data import c\n"
                "if TYPE_CHECKING:\n    from clinfonce.cli import main\n"
            ),
            "cli/__init__.py": "",
        },
    )
    graph = import_graph(tmp_path, "clinfonce")
    assert graph["clinfonce.training.run"] == {"clinfonce.data.c"}
    assert cycles(graph) == [
        ["clinfonce.data.a", "clinfonce.data.b"],
        ["clinfonce.data.c", "clinfonce.training.run"],
    ]
    assert upward_imports(graph) == ["clinfonce.data.c -> clinfonce.training.run"]


def test_relative_imports_resolve(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "__init__.py": "",
            "data/__init__.py": "from . import a\nfrom .b import g\n",
            "data/a.py": "from ..losses import cl\n",
            "data/b.py": "",
            "losses/__init__.py": "",
            "losses/cl.py": "",
        },
    )
    graph = import_graph(tmp_path, "clinfonce")
    assert graph["clinfonce.data"] == {"clinfonce.data.a", "clinfonce.data.b"}
    assert graph["clinfonce.data.a"] == {"clinfonce.losses.cl"}
