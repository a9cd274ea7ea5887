"""The layout's rules, read from the code: imports run down the layers, never in a circle, and
only the HTTP layer (and the app factory) knows FastAPI or Starlette."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("models", "index", "app")
# Lower layers never import higher ones. Modules in one layer may import each other (no cycles).
LAYERS: list[tuple[str, ...]] = [
    ("models",),
    ("index",),
    ("app.settings",),
    ("app.rendering", "app.services"),
    ("app.api",),
    ("app.main", "app.workers", "app.cli", "app.client", "app.progress", "app.bench"),
]
HTTP_FRAMEWORKS = ("fastapi", "starlette")
HTTP_AWARE = ("app.api", "app.main")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at any depth of the file (function-level imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


SOURCES = {module_name(path): path for package in PACKAGES for path in (ROOT / package).rglob("*.py")}
GRAPH = {name: {imported for imported in imports_of(path) if imported in SOURCES} for name, path in SOURCES.items()}


def layer_of(module: str) -> int:
    for rank, prefixes in enumerate(LAYERS):
        if any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes):
            return rank
    raise AssertionError(f"{module} is in no layer: add it to LAYERS in {Path(__file__).name}")


def test_every_module_has_a_layer() -> None:
    for module in SOURCES:
        if module not in PACKAGES:
            layer_of(module)


def test_no_import_runs_upward() -> None:
    upward = [
        f"{module} (layer {layer_of(module)}) imports {imported} (layer {layer_of(imported)})"
        for module, imported_modules in GRAPH.items()
        if module not in PACKAGES
        for imported in imported_modules
        if imported not in PACKAGES and layer_of(imported) > layer_of(module)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycle() -> None:
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for imported in sorted(GRAPH[module]):
            if imported != module and not module.startswith(imported + "."):  # a package's own __init__
                visit(imported, [*path, module])
        done.add(module)

    for module in sorted(GRAPH):
        visit(module, [])


@pytest.mark.parametrize("module", sorted(SOURCES))
def test_only_the_http_layer_imports_fastapi_or_starlette(module: str) -> None:
    frameworks = {name for name in imports_of(SOURCES[module]) if name.split(".")[0] in HTTP_FRAMEWORKS}
    allowed = any(module == prefix or module.startswith(prefix + ".") for prefix in HTTP_AWARE)
    assert allowed or not frameworks, f"{module} imports {sorted(frameworks)}"
