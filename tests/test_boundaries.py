"""Import boundaries: `unlearn/` and `audits/` never import gradio; `unlearn/` never imports
`audits/`, not even in its `__main__.py` (checkpoint evaluation is a plug-in named on the command
line: `--evaluator audits.checkpoint:checkpoint_evaluator`); `audits/`
uses from `unlearn/` only the loader, text encoding, runtime and the checkpoint-eval contract."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARIES = ("unlearn", "audits")


# what audits/ may use from unlearn/: the loader, text encoding, the shared runtime, and the
# checkpoint-evaluation contract it implements (audits.checkpoint)
AUDITS_MAY_USE = {"unlearn.models", "unlearn.data", "unlearn.runtime", "unlearn.evaluate"}


def _imported_modules(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (lazy ones inside functions too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "import_module"
              and node.args and isinstance(node.args[0], ast.Constant)):
            names.add(str(node.args[0].value))
    return names


def _imported_roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _imported_modules(path)}


def _library_files(lib: str) -> list[Path]:
    return sorted((ROOT / lib).rglob("*.py"))


def test_no_library_module_imports_gradio_statically():
    files = [p for lib in LIBRARIES for p in (ROOT / lib).rglob("*.py")]
    assert len(files) >= 5, "library packages not found"
    offenders = [str(p.relative_to(ROOT)) for p in files
                 if {"gradio", "gradio_client", "spaces"} & _imported_roots(p)]
    assert offenders == [], f"these library modules import gradio: {offenders}"


def _loaded_roots_after_importing(libs: tuple[str, ...], root: str) -> list[str]:
    """Import every module of `libs` for real in a fresh interpreter (catches indirect imports
    through third parties too); the loaded modules under package `root`."""
    modules = sorted(".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
                     for lib in libs for p in _library_files(lib) if p.name != "__main__.py")
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}:\n    importlib.import_module(m)\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == {root!r})))\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_importing_every_library_module_leaves_gradio_unloaded():
    assert _loaded_roots_after_importing(LIBRARIES, "gradio") == []


def test_unlearn_never_imports_audits():
    files = list(_library_files("unlearn"))
    assert len(files) >= 10 and any(p.name == "__main__.py" for p in files)
    offenders = [str(p.relative_to(ROOT)) for p in files if "audits" in _imported_roots(p)]
    assert offenders == [], f"these unlearn modules import audits: {offenders}"


def test_audits_use_only_the_allowed_parts_of_unlearn():
    used = {}
    for p in _library_files("audits"):
        for name in _imported_modules(p):
            if name.split(".")[0] == "unlearn" and name not in AUDITS_MAY_USE:
                used.setdefault(name, []).append(p.name)
    assert used == {}, f"audits import these unlearn modules: {used}"


def test_importing_unlearn_leaves_audits_unloaded():
    assert _loaded_roots_after_importing(("unlearn",), "audits") == []


def test_the_checker_detects_a_gradio_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom gradio import Blocks\n\ndef f():\n    import audits.scoring\n")
    assert {"gradio", "audits"} <= _imported_roots(bad)
