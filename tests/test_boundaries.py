"""The layout's promises: web and worker never import each other; web and shared never load ML libraries."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


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
    ("web", ("worker", "tensorflow", "keras", "cv2", "cli")),
    ("worker", ("web", "cli")),
    ("shared", ("web", "worker", "cli", "tensorflow", "keras", "cv2")),
])
def test_no_forbidden_imports(package, forbidden):
    bad = sorted(m for m in imported_modules(package) if m.split(".")[0] in forbidden)
    assert bad == [], f"{package}/ imports {bad}"


def test_web_app_and_light_cli_commands_load_no_ml_library():
    code = (
        "import sys; from web.app import create_app; import cli.main, cli.up, cli.db, cli.accounts, cli.services, cli.classify;"
        "bad=[m for m in ('tensorflow','keras','cv2') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
