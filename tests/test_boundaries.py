"""`unlearn/` and `audits/` never import gradio, directly or through each other."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("unlearn", "audits")


def _imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            roots.add(str(node.args[0].value).split(".")[0])
    return roots


def test_no_library_module_imports_gradio_statically():
    files = [p for lib in LIBRARIES for p in (ROOT / lib).rglob("*.py")]
    assert len(files) >= 5, "library packages not found"
    offenders = [str(p.relative_to(ROOT)) for p in files
                 if {"gradio", "gradio_client", "spaces"} & _imported_roots(p)]
    assert offenders == [], f"these library modules import gradio: {offenders}"


def test_importing_every_library_module_leaves_gradio_unloaded():
    """Import every module for real (catches indirect imports through third parties too)."""
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for lib in LIBRARIES for p in (ROOT / lib).rglob("*.py")
        if p.name != "__main__.py")
    code = ("import importlib, sys\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] == 'gradio')\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, f"gradio got imported: {proc.stdout} {proc.stderr[-2000:]}"


def test_the_checker_detects_a_gradio_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom gradio import Blocks\n")
    assert "gradio" in _imported_roots(bad)
