"""Checks of a command's inputs before its first stage: fail in a second, not after minutes.

`preflight(args)` looks at the argparse namespace of any `python -m unlearn` command and checks
what it names: the device exists in this torch, the output folder can be written, the anchored
terms load and pass their checks, text and probe files are readable UTF-8. A problem raises
`PreflightError` (a `ValueError`: the CLI prints one line and exits with code 2). The single
checks are plain functions, used by `python -m audits` too.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import torch


class PreflightError(ValueError):
    """A user mistake found before any work started; the message says what and where."""


def check_device(device: str) -> None:
    """`cpu`, or an accelerator this torch build has (`cuda`, `cuda:N`, `mps`, `xpu`)."""
    kind, _, index = str(device).partition(":")
    if kind == "cpu" and not index:
        return
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise PreflightError(f"--device {device}: no CUDA device is available to this torch "
                                 f"({torch.__version__}); use --device cpu")
        count = torch.cuda.device_count()
        if index and (not index.isdigit() or int(index) >= count):
            raise PreflightError(f"--device {device}: this machine has {count} CUDA device(s)")
        return
    if kind == "mps" and not index:
        if not torch.backends.mps.is_available():
            raise PreflightError(f"--device {device}: MPS is not available here")
        return
    if kind == "xpu" and not index:
        if not (hasattr(torch, "xpu") and torch.xpu.is_available()):
            raise PreflightError(f"--device {device}: no XPU device is available")
        return
    raise PreflightError(f"--device {device!r}: expected cpu, cuda, cuda:N, mps or xpu")


def check_writable_dir(path: str | Path, flag: str = "--out") -> None:
    """The folder (or its nearest existing parent) exists as a folder and accepts a file."""
    folder = Path(path).expanduser()
    if folder.exists() and not folder.is_dir():
        raise PreflightError(f"{flag} {path}: exists and is not a folder")
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise PreflightError(f"{flag} {path}: {probe} is not writable")
    try:  # a read-only file system answers access() with yes for root: try a real file
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".whp-write-check-"):
            pass
    except OSError as exc:
        raise PreflightError(f"{flag} {path}: cannot write there ({exc.strerror})") from None


def check_text_file(path: str | Path, flag: str) -> None:
    """A readable, non-empty UTF-8 text file."""
    p = Path(path)
    if not p.is_file():
        raise PreflightError(f"{flag} {path}: file not found")
    try:
        with p.open(encoding="utf-8") as fh:
            head = fh.read(1 << 20)
    except UnicodeDecodeError:
        raise PreflightError(f"{flag} {path}: not UTF-8 text") from None
    except OSError as exc:
        raise PreflightError(f"{flag} {path}: cannot read ({exc.strerror})") from None
    if not head.strip():
        raise PreflightError(f"{flag} {path}: the file is empty")


def check_anchors(path: str | Path) -> None:
    """The anchored-terms file loads and passes the dictionary's checks."""
    from unlearn.anchors import AnchorError, load_anchors

    check_text_file(path, "--anchors")
    try:
        load_anchors(path).check()
    except AnchorError as exc:
        raise PreflightError(f"--anchors {path}: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise PreflightError(f"--anchors {path}: cannot be read ({type(exc).__name__})") from None


def check_eval_probes(path: str | Path) -> None:
    """Probability probes for checkpoint evaluations: JSONL lines with prompt and answer."""
    from unlearn.evaluate import load_probes

    check_text_file(path, "--eval-probes")
    try:
        if not load_probes(path):
            raise PreflightError(f"--eval-probes {path}: no probes in the file")
    except (json.JSONDecodeError, RecursionError) as exc:
        raise PreflightError(f"--eval-probes {path}: not JSONL ({type(exc).__name__})") from None
    except ValueError as exc:
        raise PreflightError(f"--eval-probes {exc}") from None


# argparse destination -> check; run for every attribute that is set
CHECKS = {
    "device": check_device,
    "out": check_writable_dir,
    "anchors": check_anchors,
    "target": lambda p: check_text_file(p, "--target"),
    "general": lambda p: check_text_file(p, "--general"),
    "retain": lambda p: check_text_file(p, "--retain"),
    "eval.probes": check_eval_probes,  # the CLI's dataclass-generated destinations
    "eval.text": lambda p: check_text_file(p, "--eval-text"),
}


def preflight(args) -> None:
    """Run every check whose argument the command has and the user set (see `CHECKS`)."""
    for name, check in CHECKS.items():
        value = getattr(args, name, None)
        if value in (None, ""):
            continue
        if name == "out" and getattr(args, "command", "") == "suggest":  # a file, not a folder
            check_writable_dir(Path(value).expanduser().parent)
        else:
            check(value)
