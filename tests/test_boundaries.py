"""The layout's promises, one rule per package, so they hold from now on:

web -> shared; worker -> ml, shared; training -> ml, shared; ml -> nothing of ours but shared.files.
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


def test_ml_uses_no_shared_module_but_files():
    """ml runs anywhere a model runs: of our shared code it may only hash and download files."""
    bad = sorted(m for m in imported_modules("ml") if m.split(".")[0] == "shared" and m != "shared.files")
    assert bad == [], f"ml/ imports {bad}"


def test_shared_files_needs_nothing_of_ours():
    """...so that ml, which may use it, still imports nothing of ours through it."""
    tree = ast.parse((ROOT / "shared" / "files.py").read_text())
    ours = [n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module
            and n.module.split(".")[0] in ("shared", "web", "worker", "ml", "training", "cli")]
    assert ours == [], f"shared/files.py imports {ours}"


def test_web_app_and_light_cli_commands_load_no_ml_library():
    code = (
        "import sys; from web.app import create_app; import cli.main, cli.up, cli.db, cli.accounts, cli.services,"
        " cli.models, cli.classify; bad=[m for m in ('tensorflow','keras','cv2') if m in sys.modules]; print(bad);"
        " sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
