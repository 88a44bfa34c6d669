"""The layout's promises, one rule per package, so they hold from now on:

web -> shared; worker -> ml, shared; training -> ml, shared; ml -> nothing of ours but shared.files,
shared.errors and shared.breed_names.
web and worker never import each other, worker and training never import each other, and web and
shared never load ML libraries. ml is the pure models and pipeline: no Celery, database or web.
"""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ML_LIBRARIES = ("tensorflow", "keras", "cv2")
SERVICES = ("celery", "kombu", "sqlalchemy", "alembic", "flask", "redis", "gunicorn", "flower")


def imported_modules(package: str) -> set[str]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module)
    return found


@pytest.mark.parametrize("package, forbidden", [
    ("web", ("worker", "ml", "training", "cli", *ML_LIBRARIES)),
    ("shared", ("web", "worker", "ml", "training", "cli", *ML_LIBRARIES)),
    ("ml", ("web", "worker", "training", "cli", *SERVICES)),
    ("worker", ("web", "training", "cli")),
    ("training", ("web", "worker", "cli", "celery", "flask")),
])
def test_no_forbidden_imports(package, forbidden):
    bad = sorted(m for m in imported_modules(package) if m.split(".")[0] in forbidden)
    assert bad == [], f"{package}/ imports {bad}"


# ml runs anywhere a model runs: of our shared code it may only hash and download files, base its
# errors on the project's one error class, and spell breed names as the web does.
ML_MAY_USE = ("shared.files", "shared.errors", "shared.breed_names")


def test_ml_uses_no_shared_module_but_files_and_errors():
    bad = sorted(m for m in imported_modules("ml") if m.split(".")[0] == "shared" and m not in ML_MAY_USE)
    assert bad == [], f"ml/ imports {bad}"


@pytest.mark.parametrize("module", ML_MAY_USE)
def test_what_ml_may_use_needs_nothing_else_of_ours(module):
    """...so that ml, which may use them, still imports nothing else of ours through them."""
    tree = ast.parse((ROOT / f"{module.replace('.', '/')}.py").read_text())
    ours = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
            and n.module.split(".")[0] in ("shared", "web", "worker", "ml", "training", "cli")
            and n.module not in ML_MAY_USE]
    assert ours == [], f"{module} imports {ours}"


def test_web_app_and_light_cli_commands_load_no_ml_library():
    code = (
        "import sys; from web.app import create_app; import cli.main, cli.up, cli.db, cli.accounts, cli.services,"
        " cli.models, cli.classify; bad=[m for m in ('tensorflow','keras','cv2') if m in sys.modules]; print(bad);"
        " sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


OUR_PACKAGES = ("shared", "web", "worker", "ml", "training", "cli")


def module_graph() -> dict[str, set[str]]:
    """Each of our modules -> ours that it imports anywhere, at the top or inside a function."""
    modules = {}
    for package in OUR_PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                # `from pkg import mod` imports the module pkg.mod; `from mod import name` imports mod
                targets |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                            for a in node.names}
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles_between_our_modules():
    """A function-level import hides a cycle from Python, not from this test."""
    assert cycles(module_graph()) == []


def test_cycle_finder_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
