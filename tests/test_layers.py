"""The package's layers (docs/DESIGN.md): each folder imports only the folders below it,
and no module imports itself back through others (an import circle)."""

from __future__ import annotations

import ast
from pathlib import Path

import workbench

# Lowest first; the top floor is the package's own files (__init__, _api, _tables, cli, plots).
ORDER = ["core", "api", "store", "calls", "scoring", "sweeps", "decide", "optimize", "notebook",
         "TOP"]
PACKAGE = Path(workbench.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def _type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(
    module: str, path: Path, modules: dict[str, Path], *, typing: bool = False
) -> dict[str, int]:
    """The workbench modules ``module`` imports at run time (in functions too), each with
    the line of its first import; with ``typing``, those under ``if TYPE_CHECKING:`` too
    (a circle drawn by type names still ties the modules together for a reader)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: dict[str, int] = {}

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _type_checking(child) and not typing:
                continue
            targets: list[str] = []
            if isinstance(child, ast.ImportFrom):
                if child.level:
                    parts = package.split(".")
                    base = parts[: len(parts) - child.level + 1]
                    source = ".".join([*base, *([child.module] if child.module else [])])
                else:
                    source = child.module or ""
                for alias in child.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else source)
            elif isinstance(child, ast.Import):
                targets = [alias.name for alias in child.names]
            for target in targets:
                if target in modules and target != module:
                    found.setdefault(target, child.lineno)
            visit(child)

    visit(ast.parse(path.read_text()))
    return found


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ORDER else "TOP"


def test_no_import_runs_up_the_layers() -> None:
    modules = _modules()
    upward = [
        f"{module} -> {target} (line {line})"
        for module, path in modules.items()
        for target, line in _imports(module, path, modules).items()
        if ORDER.index(_layer(target)) > ORDER.index(_layer(module))
    ]
    assert upward == []


def test_no_import_circles() -> None:
    modules = _modules()
    graph = {
        module: set(_imports(module, path, modules, typing=True))
        for module, path in modules.items()
    }
    # A module is in a circle when it can reach itself; the circle is every module it
    # reaches that reaches it back. Each circle is reported once.
    reach = {module: _reach(graph, module) for module in graph}
    circles = {
        frozenset(m for m in reach[module] if module in reach[m])
        for module in graph
        if module in reach[module]
    }
    assert sorted(sorted(circle) for circle in circles) == []


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph[module])
    return seen
