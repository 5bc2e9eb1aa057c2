"""``hub/`` is layered: its modules import each other one way only, function-level imports included.

Resolving a model used to go source -> addon -> defaults -> source, half of it through imports inside functions,
which hide a circle from Python's import machinery but not from a reader."""
from __future__ import annotations

import ast
from pathlib import Path

import squeeze_studio.hub

HUB = Path(squeeze_studio.hub.__file__).parent
PACKAGE = "squeeze_studio.hub"


def module_name(path: Path, root: Path = HUB) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join((PACKAGE, *parts)).removesuffix(".__init__")


def imported_modules(path: Path, modules: set[str], root: Path = HUB) -> set[str]:
    """The hub modules ``path`` imports anywhere in its body: at the top, in functions, under TYPE_CHECKING."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]  # `from . import x` names a module
        else:
            continue
        found.update(target for target in targets if target in modules and target != name)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = sorted(HUB.rglob("*.py"))
    modules = {module_name(path) for path in paths}
    # A package's __init__ runs before any of its modules; edges into it are not a module depending on another.
    return {module_name(path): imported_modules(path, modules) - {PACKAGE} for path in paths}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as the list of modules around it, or None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return path[path.index(module):] + [module]
        if module in done:
            return None
        for target in sorted(graph.get(module, ())):
            circle = visit(target, path + [module])
            if circle:
                return circle
        done.add(module)
        return None

    for module in sorted(graph):
        circle = visit(module, [])
        if circle:
            return circle
    return None


def test_hub_modules_import_each_other_one_way_only():
    graph = import_graph()
    assert f"{PACKAGE}.source" in graph[f"{PACKAGE}.manager"]  # the parser sees the imports at all
    circle = find_circle(graph)
    assert circle is None, "import circle in hub/: " + " -> ".join(m.removeprefix(PACKAGE + ".") for m in circle)


def test_the_parser_sees_function_level_and_relative_imports(tmp_path):
    code = ("from . import registry\nfrom .paths import x\n\ndef f():\n    from .source import y\n"
            "    import squeeze_studio.hub.verify\n    from ..models import z\n")
    (tmp_path / "probe.py").write_text(code)
    modules = {f"{PACKAGE}.{m}" for m in ("registry", "paths", "source", "verify")}
    assert imported_modules(tmp_path / "probe.py", modules, root=tmp_path) == modules
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
