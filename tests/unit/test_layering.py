"""Layers import only downward: scripts -> bench -> exporters -> runtimes. A served bundle
ships ``runtimes`` alone (exporters.bundle), so nothing in it may reach up."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"runtimes": ("exporters", "bench", "scripts"), "exporters": ("bench", "scripts"),
             "bench": ("scripts",)}
PACKAGES = ("runtimes", "exporters", "bench")


def _imports(path: Path) -> set[str]:
    """Top-level package of every import in a module, wherever it sits (lazy ones too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_import_runs_back_up(package):
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & set(FORBIDDEN[package]))
        for path in sorted((ROOT / package).rglob("*.py"))
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_check_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from bench.datasets import Clip\n    import exporters.api\n")
    assert _imports(module) == {"bench", "exporters"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """Module -> the project's modules it imports, wherever the import sits (an import
    inside a function still makes a circle: it only hides it until the call)."""
    modules = {_module(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}

    def known(name: str) -> str | None:  # the module an import names (a package's names too)
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {known(alias.name) for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = package[:len(package) - node.level + 1] if node.level else []
                module = ".".join(base + ([node.module] if node.module else []))
                found |= {known(f"{module}.{a.name}") if f"{module}.{a.name}" in modules
                          else known(module) for a in node.names}
        # A module's own packages are imported before it in any case, and a package that
        # re-exports its modules lazily (``exporters.export``) is not a circle: not edges.
        ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        graph[name] = found - {None, name} - ancestors
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while (w := stack.pop()) != v:
                component.append(w)
            if component:
                found.append(sorted([v, *component]))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_among_the_projects_modules():
    assert _cycles(_graph()) == []


def test_the_cycle_check_finds_a_circle_through_a_lazy_import():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert "exporters.options" in _graph()["exporters.targets.base"]


#: Inside ``runtimes``, lowest first: a module imports only from its own layer and below
#: (the README's architecture section says what each holds). ``runtimes`` itself (``load``)
#: sits above the transcript layer; the command lines, the batch job and the server on top.
RUNTIMES_LAYERS = (("errors", "precision"), ("options", "base", "cpu"), ("artifacts",),
                   ("audio",), ("decode",), ("engines",), ("transcript",),
                   ("loading", "model_options"), ("model_types",), ("model",), ("__init__",),
                   ("cli", "cluster"), ("batch", "serve"), ("__main__",))


def _runtimes_layer(module: str) -> int:
    parts = module.split(".")
    part = parts[1] if len(parts) > 1 else "__init__"
    return next(i for i, layer in enumerate(RUNTIMES_LAYERS) if part in layer)


def test_runtimes_layers_import_only_downward():
    graph = _graph()
    upward = sorted((module, target) for module, targets in graph.items()
                    if module.split(".")[0] == "runtimes"
                    for target in targets if target.split(".")[0] == "runtimes"
                    and _runtimes_layer(target) > _runtimes_layer(module))
    assert upward == []
