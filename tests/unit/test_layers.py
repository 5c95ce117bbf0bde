"""The package's layers hold: every import in jam/ (lazy ones inside functions included),
read from the source with :mod:`ast`.

- ``jam.music`` (pure music logic) imports nothing from ``jam.engine``, ``jam.midi`` or
  ``jam.model``;
- nothing in ``jam/`` imports the tools or the tests;
- the modules of ``jam/`` import each other without cycles.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "jam"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports, anywhere in the file."""
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
GRAPH = {name: {i for i in imports_of(path) if i in MODULES and i != name}
         for name, path in MODULES.items()}


def test_the_graph_is_read():
    assert "jam.engine.callresponse" in MODULES and "jam.music.tokens" in MODULES
    assert "jam.music.tokens" in GRAPH["jam.engine.listener"]


def test_music_logic_imports_no_engine_ports_or_model():
    music = [name for name in MODULES if name.startswith("jam.music")]
    assert music
    for name in music:
        bad = {i for i in imports_of(MODULES[name])
               if i.startswith(("jam.engine", "jam.midi", "jam.model"))}
        assert not bad, f"{name} imports {sorted(bad)}"


def test_the_package_imports_no_tool_or_test():
    local = {p.stem for folder in ("tools", "tests") for p in (ROOT / folder).rglob("*.py")}
    local |= {"tools", "tests"}
    for name, path in MODULES.items():
        bad = {i for i in imports_of(path) if i.split(".")[0] in local}
        assert not bad, f"{name} imports {sorted(bad)}"


def test_no_import_cycles():
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            cycle = path[path.index(name):] + [name]
            raise AssertionError("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        for child in sorted(GRAPH[name]):
            visit(child, path + [name])
        done.add(name)

    for name in sorted(GRAPH):
        visit(name, [])
