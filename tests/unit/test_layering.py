"""Layers import only downward: scripts -> bench -> exporters -> runtimes. A served bundle
ships ``runtimes`` alone (exporters.bundle), so nothing in it may reach up."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {"runtimes": ("exporters", "bench"), "exporters": ("bench",)}


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
