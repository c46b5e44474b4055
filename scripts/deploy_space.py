"""Upload the app to a Hugging Face Space with `huggingface_hub.upload_folder`.

    python scripts/deploy_space.py USER/SPACE --dry-run              # list what would be pushed
    python scripts/deploy_space.py USER/SPACE --target gpu           # the published pair
    python scripts/deploy_space.py USER/SPACE --target cpu           # the embedded demo

A plain `git push` of this repository to a Space is rejected: the demo models are committed as
plain git objects (the Hub wants files over 10 MB and binary files in LFS/Xet storage) and the
history holds older copies. `upload_folder` sends the current files only, and the Hub stores each
large or binary file in LFS/Xet storage itself. The dry run works offline: it lists every file
that `upload_folder` would send (the same allow/ignore patterns), its size, and how the Hub will
store it (`lfs` when it is 10 MB or more or binary - what the Hub decides from the size and a
512-byte sample - else `regular`), and checks the README front matter.

Targets: `gpu` (and `zerogpu`) push the README as it is (GPU hardware suggested, both models
preloaded at build time) and set the Space variable WHP_PRESET=llama2-whp; `cpu` pushes a README
whose front matter suggests cpu-basic and preloads nothing (the embedded demo needs no download).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# What the Space needs to run app.py: code, assets, requirements and the README (front matter).
ALLOW = ["README.md", "app.py", "requirements.txt", "ui/**", "unlearn/**", "audits/**",
         "assets/**"]
IGNORE = ["**/__pycache__/**", "**/*.pyc", "**/.ipynb_checkpoints/**", "**/.DS_Store",
          # an operator's own book text next to the Harry Potter suite is never published
          "assets/hp/target.txt", "assets/hp/verbatim.jsonl"]
LFS_BYTES = 10 * 1000 * 1000  # the Hub refuses plain (non-LFS) files from 10 MB on
SAMPLE = 512  # bytes of each file the Hub looks at to tell binary from text
HARDWARE = {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "l4x4", "a10g-small",
            "a10g-large", "a10g-largex2", "a10g-largex4", "a100-large"}
REQUIRED_KEYS = ("title", "sdk", "sdk_version", "app_file", "python_version")


@dataclass
class SpaceFile:
    path: str  # relative to the folder, as in the Space
    size: int  # bytes
    storage: str  # "lfs" (LFS/Xet storage) or "regular" (a plain git object)


def is_binary(sample: bytes) -> bool:
    """Binary as git and the Hub tell it: a NUL byte, or not decodable as UTF-8."""
    if b"\0" in sample:
        return True
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start < len(sample) - 3  # a multi-byte character cut at the sample's end
    return False


def space_files(root: Path = ROOT) -> list[SpaceFile]:
    """The files `upload_folder(root, allow_patterns=ALLOW, ignore_patterns=IGNORE)` sends."""
    from huggingface_hub.utils import filter_repo_objects

    root = Path(root)
    rel = {p.relative_to(root).as_posix(): p for p in sorted(root.glob("**/*")) if p.is_file()}
    out = []
    for name in filter_repo_objects(rel, allow_patterns=ALLOW, ignore_patterns=IGNORE):
        path = rel[name]
        size = path.stat().st_size
        with path.open("rb") as fh:
            sample = fh.read(SAMPLE)
        lfs = size >= LFS_BYTES or is_binary(sample)
        out.append(SpaceFile(name, size, "lfs" if lfs else "regular"))
    return out


def front_matter_of(text: str) -> dict:
    """The YAML block at the top of a README's text (`{}` when there is none)."""
    import yaml

    if not text.startswith("---\n"):
        return {}
    end = text.index("\n---", 4)
    return yaml.safe_load(text[4:end]) or {}


def check_front_matter(meta: dict, root: Path = ROOT) -> list[str]:
    """Problems of the Space configuration (empty when it is fine)."""
    problems = [f"README front matter lacks {k!r}" for k in REQUIRED_KEYS if k not in meta]
    if meta.get("sdk") != "gradio":
        problems.append(f"sdk must be gradio, got {meta.get('sdk')!r}")
    if meta.get("app_file") and not (Path(root) / meta["app_file"]).is_file():
        problems.append(f"app_file {meta['app_file']!r} does not exist")
    version = meta.get("python_version", "")
    if not isinstance(version, str):  # YAML reads an unquoted 3.10 as the number 3.1
        problems.append(f"python_version must be a quoted string, got {version!r}")
    elif not version.startswith("3.") or not all(p.isdigit() for p in version.split(".")):
        problems.append(f"python_version must look like 3.x or 3.x.y, got {version!r}")
    hardware = meta.get("suggested_hardware")
    if hardware is not None and hardware not in HARDWARE:
        problems.append(f"suggested_hardware {hardware!r} is not a Spaces hardware flavour")
    for entry in meta.get("preload_from_hub", []) or []:
        if not isinstance(entry, str) or "/" not in entry.split()[0]:
            problems.append(f"preload_from_hub entry {entry!r} must start with a repo id")
    return problems


TARGETS = {"cpu": ("cpu-basic", "demo"), "gpu": ("a10g-large", "llama2-whp"),
           "zerogpu": (None, "llama2-whp")}


def readme_for(text: str, target: str) -> str:
    """README.md as pushed for `target`: for `cpu`, no preload and cpu-basic suggested."""
    import yaml

    meta = front_matter_of(text)
    if target != "cpu" or not meta:
        return text
    meta.pop("preload_from_hub", None)
    meta["suggested_hardware"] = TARGETS["cpu"][0]
    body = text[text.index("\n---", 4) + len("\n---"):]
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---" + body


def human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return ""


def report(files: list[SpaceFile]) -> str:
    width = max(len(f.path) for f in files)
    lines = [f"{f.path:<{width}}  {human(f.size):>9}  {f.storage}" for f in files]
    lfs = [f for f in files if f.storage == "lfs"]
    lines.append(f"{len(files)} files, {human(sum(f.size for f in files))}; {len(lfs)} in "
                 f"LFS/Xet storage ({human(sum(f.size for f in lfs))}), "
                 f"{len(files) - len(lfs)} regular")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deploy_space.py", description=__doc__.split("\n\n")[0])
    p.add_argument("space", help="the Space's id, USER/NAME")
    p.add_argument("--dry-run", action="store_true", help="list the files, push nothing")
    p.add_argument("--target", choices=sorted(TARGETS), default="gpu",
                   help="cpu: embedded demo; gpu / zerogpu: the published pair (default gpu)")
    p.add_argument("--private", action="store_true", help="create the Space as private")
    p.add_argument("--message", default="Deploy whp-unlearn", help="commit message")
    p.add_argument("--folder", default=str(ROOT), help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = Path(args.folder)
    if args.space.count("/") != 1:
        print(f"deploy_space.py: the Space id must be USER/NAME, got {args.space!r}",
              file=sys.stderr)
        return 2
    readme = readme_for((root / "README.md").read_text(encoding="utf-8"), args.target)
    meta = front_matter_of(readme)
    problems = check_front_matter(meta, root)
    files = space_files(root)
    print(report(files))
    print(f"target {args.target}: suggested_hardware {meta.get('suggested_hardware')}, "
          f"preload_from_hub {meta.get('preload_from_hub') or 'none'}, "
          f"WHP_PRESET={TARGETS[args.target][1]}")
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    if problems:
        return 1
    if args.dry_run:
        print(f"dry run: nothing pushed to spaces/{args.space}")
        return 0
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(args.space, repo_type="space", space_sdk="gradio", private=args.private,
                    exist_ok=True)
    commit = api.upload_folder(repo_id=args.space, repo_type="space", folder_path=root,
                               allow_patterns=ALLOW, ignore_patterns=[*IGNORE, "README.md"],
                               commit_message=args.message)
    api.upload_file(path_or_fileobj=readme.encode("utf-8"), path_in_repo="README.md",
                    repo_id=args.space, repo_type="space", commit_message=args.message)
    api.add_space_variable(args.space, "WHP_PRESET", TARGETS[args.target][1])
    print(f"pushed: {commit.commit_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
