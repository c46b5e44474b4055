"""scripts/deploy_space.py: the offline dry run lists what upload_folder would push, and how."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("deploy_space", ROOT / "scripts" / "deploy_space.py")
deploy = importlib.util.module_from_spec(spec)
sys.modules["deploy_space"] = deploy  # dataclasses look their module up there
spec.loader.exec_module(deploy)

README = """---
title: Test space
sdk: gradio
sdk_version: 6.31.0
app_file: app.py
python_version: "3.11"
suggested_hardware: a10g-large
preload_from_hub:
  - org/model a.safetensors,config.json
---

# Body
"""


@pytest.fixture()
def folder(tmp_path):
    files = {"README.md": README, "app.py": "print('hi')\n", "ui/tab.py": "x = 1\n",
             "ui/__pycache__/tab.cpython-311.pyc": "junk", "assets/hp/target.txt": "book",
             "assets/notes.txt": "caf\u00e9 " * 200, "tests/test_x.py": "", "runs/x/run.json": "{}"}
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "assets" / "big.txt").write_bytes(b"a" * deploy.LFS_BYTES)  # text, but 10 MB
    (tmp_path / "assets" / "icon.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR")
    return tmp_path


def test_selection_and_storage_of_a_folder(folder):
    files = {f.path: f for f in deploy.space_files(folder)}
    assert set(files) == {"README.md", "app.py", "ui/tab.py", "assets/notes.txt",
                          "assets/big.txt", "assets/icon.png"}  # no tests, runs, caches, book
    assert files["assets/big.txt"].storage == "lfs" and files["assets/big.txt"].size == 10 ** 7
    assert files["assets/icon.png"].storage == "lfs"  # binary, however small
    assert files["assets/notes.txt"].storage == "regular"  # UTF-8 text cut mid-character
    assert files["app.py"].storage == "regular"


def test_the_selection_is_the_one_upload_folder_makes(folder):
    from huggingface_hub import HfApi

    ops = HfApi()._prepare_upload_folder_additions(  # README.md left out: it is checked online
        folder, "", allow_patterns=deploy.ALLOW, ignore_patterns=[*deploy.IGNORE, "README.md"],
        repo_type="space")
    ours = [f.path for f in deploy.space_files(folder) if f.path != "README.md"]
    assert sorted(op.path_in_repo for op in ops) == sorted(ours)


def test_dry_run_of_this_repository_is_a_push_the_hub_accepts(capsys):
    assert deploy.main(["someone/whp", "--dry-run"]) == 0
    out = capsys.readouterr().out
    files = deploy.space_files(ROOT)
    for f in files:
        assert f"{f.path} " in out
        if f.size >= deploy.LFS_BYTES:
            assert f.storage == "lfs", f.path
    listed = {f.path for f in files}
    assert "app.py" in listed and "assets/hp/world.json" in listed
    assert not any(p.startswith(("tests/", "docs/", "runs/", ".git")) for p in listed)
    assert all(f.size < 25 * 1000 * 1000 for f in files)  # the repository's own size rule
    assert "dry run: nothing pushed" in out and "WHP_PRESET=llama2-whp" in out


def test_cpu_target_readme_preloads_nothing():
    cpu = deploy.front_matter_of(deploy.readme_for(README, "cpu"))
    assert cpu["suggested_hardware"] == "cpu-basic" and "preload_from_hub" not in cpu
    assert cpu["title"] == "Test space" and cpu["python_version"] == "3.11"
    assert deploy.readme_for(README, "cpu").endswith("\n# Body\n")
    assert deploy.readme_for(README, "gpu") == README


def test_front_matter_problems_are_named(tmp_path, folder):
    meta = deploy.front_matter_of(README)
    assert deploy.check_front_matter(meta, folder) == []
    bad = {**meta, "python_version": 3.1, "suggested_hardware": "gpu-huge",
           "app_file": "main.py", "preload_from_hub": ["model-without-org"]}
    problems = " | ".join(deploy.check_front_matter(bad, folder))
    for word in ("python_version", "gpu-huge", "main.py", "model-without-org"):
        assert word in problems
    assert "lacks 'title'" in deploy.check_front_matter({}, folder)[0]
    readme = deploy.front_matter_of((ROOT / "README.md").read_text(encoding="utf-8"))
    assert deploy.check_front_matter(readme, ROOT) == []
    assert len(readme["preload_from_hub"]) == 2


def test_bad_space_id_and_bad_front_matter_fail(folder, capsys):
    assert deploy.main(["no-slash", "--dry-run", "--folder", str(folder)]) == 2
    (folder / "README.md").write_text(README.replace('"3.11"', '"three"'), encoding="utf-8")
    assert deploy.main(["me/x", "--dry-run", "--folder", str(folder)]) == 1
    assert "python_version" in capsys.readouterr().err
