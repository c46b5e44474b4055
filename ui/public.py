"""Public mode: what a visitor may do on a server that is not the operator's own machine.

On a Hugging Face Space or any non-loopback host (or `--public on`), actions that are expensive or
write to disk (finetune, full reports, loading other runs, reading run folders) are off until an
operator logs in: with the password in `WHP_OPERATOR_PASSWORD`, or on a Space with Hugging Face
OAuth as one of the users in `WHP_OPERATORS`. Model calls are rate-limited per user (OAuth name,
else client address). Run folders: only names under the runs directory are accepted; after a
successful run its `checkpoints/` and the other runs' `reinforced/` models are deleted, at most
`max_runs` runs are kept (oldest pruned), and a run needs `min_free_gb` free disk to start.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ui.limits import LimitError, RateLimiter

log = logging.getLogger("app.public")
PASSWORD_ENV = "WHP_OPERATOR_PASSWORD"
OPERATORS_ENV = "WHP_OPERATORS"  # comma-separated Hugging Face user names (OAuth on Spaces)
# endpoints a visitor may not call in public mode without an operator login
GATED = frozenset({"start_finetune", "cancel_finetune", "load_run", "load_final",
                   "build_report", "refresh_1", "run_adversarial"})
# endpoints that run a model (or check a password): counted by the per-user rate limit
LIMITED = frozenset({"generate", "sample_k", "flag", "run_probes", "token_probabilities",
                     "build_report", "suggest_anchors", "preview_translation", "start_finetune",
                     "operator_login", "erase_select", "erase_answer", "erase_accuracy"})
INTERMEDIATE = ("reinforced", "checkpoints", "labels.partial")
RUN_NAME_MAX = 200


def is_loopback(host: str | None) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def public_mode(setting: str, host: str | None, env: dict[str, str] | None = None) -> bool:
    """`on` / `off`, or `auto`: on for a Space (`SPACE_ID` set) or a non-loopback host."""
    env = os.environ if env is None else env
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"public must be auto, on or off, got {setting!r}")
    if setting != "auto":
        return setting == "on"
    return bool(env.get("SPACE_ID")) or not is_loopback(host)


@dataclass
class Policy:
    """The server's rules for visitors; `admit` is the guard's hook before every handler."""

    public: bool
    password: str = ""  # operator password ("" = no password login)
    operators: frozenset[str] = frozenset()  # HF user names allowed through OAuth
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(0))

    @classmethod
    def from_config(cls, config, env: dict[str, str] | None = None) -> Policy:
        env = os.environ if env is None else env
        public = public_mode(config.public, config.host, env)
        names = frozenset(n.strip() for n in env.get(OPERATORS_ENV, "").split(",") if n.strip())
        return cls(public=public, password=env.get(PASSWORD_ENV, ""), operators=names,
                   limiter=RateLimiter(config.rate_limit if public else 0))

    @property
    def oauth(self) -> bool:
        """Login with Hugging Face is offered on a Space when operators are named."""
        return bool(self.operators) and bool(os.environ.get("SPACE_ID"))

    def check_password(self, given: str | None) -> bool:
        return bool(self.password) and hmac.compare_digest(
            (given or "").encode("utf-8"), self.password.encode("utf-8"))

    def admit(self, endpoint: str, args: tuple, request: Any) -> None:
        """Raise `LimitError` when this visitor may not call `endpoint` now."""
        from ui.state import Session

        session = next((a for a in args if isinstance(a, Session)), None)
        if self.public and endpoint in GATED and not (session and session.operator):
            raise LimitError("This action is off on a public server: it needs an operator "
                             "login (see the Operator panel at the top).")
        if endpoint in LIMITED:
            wait = self.limiter.hit(user_key(request, session))
            if wait:
                raise LimitError(f"Too many requests: try again in {wait:.0f} s.")


def user_key(request: Any, session: Any = None) -> str:
    """Who is calling: the logged-in user, else the client address, else the session."""
    name = getattr(request, "username", None)
    if name:
        return f"user:{name}"
    client = getattr(request, "client", None)
    host = getattr(client, "host", None)
    if host:
        return f"ip:{host}"
    return f"session:{getattr(session, 'id', '?')}"


# ---------------------------------------------------------------- run folders

def resolve_run(runs_dir: Path, name: str | None) -> Path:
    """The run folder `name` (a folder name, or a path) inside `runs_dir`, resolved; refuses
    anything else, hub ids included. Messages name the run, never the server's paths."""
    text = (name or "").strip()
    if not text:
        raise LimitError("Pick a run first.")
    if len(text) > RUN_NAME_MAX or "\x00" in text:
        raise LimitError("Not a run name.")
    root = Path(runs_dir).resolve()
    candidate = Path(text)
    missing = None
    for path in {(candidate if candidate.is_absolute() else Path.cwd() / candidate).resolve(),
                 (root / candidate).resolve()}:
        if root in path.parents:
            if path.is_dir():
                return path
            missing = path.name
    if missing is not None:
        raise LimitError(f"No run named {missing!r}.")
    raise LimitError("Only run folders of this server's runs directory can be loaded.")


def check_free_disk(runs_dir: Path, min_free_gb: float) -> None:
    """Refuse a run when the runs directory's disk has less than `min_free_gb` free."""
    folder = Path(runs_dir)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free / 1024**3
    if free < min_free_gb:
        raise LimitError(f"Not enough free disk for a run: {free:.1f} GB free, "
                         f"{min_free_gb:g} GB needed.")


def finish_run(run_dir: Path, runs_dir: Path, max_runs: int) -> list[str]:
    """After a successful run: delete its `checkpoints/` (and partial labels) and the
    `reinforced/` model of every other run (the newest run keeps its own: the Anchored terms
    tab suggests terms with it), then prune the oldest runs beyond `max_runs` (only folders
    with a run.json, never `run_dir`). Returns the pruned run names."""
    run_dir = Path(run_dir)
    for name in INTERMEDIATE:
        if name != "reinforced":
            shutil.rmtree(run_dir / name, ignore_errors=True)
    for run_json in Path(runs_dir).glob("*/run.json"):
        if run_json.parent.resolve() != run_dir.resolve():
            shutil.rmtree(run_json.parent / "reinforced", ignore_errors=True)
    return prune_runs(runs_dir, max_runs, keep=run_dir)


def prune_runs(runs_dir: Path, max_runs: int, keep: Path | None = None) -> list[str]:
    """Delete the oldest run folders (those with a run.json) beyond `max_runs`."""
    if max_runs <= 0 or not Path(runs_dir).is_dir():
        return []
    runs = [p.parent for p in sorted(Path(runs_dir).glob("*/run.json"),
                                     key=lambda p: p.stat().st_mtime, reverse=True)]
    keep_resolved = Path(keep).resolve() if keep else None
    pruned = []
    for old in runs[max_runs:]:
        if keep_resolved is not None and old.resolve() == keep_resolved:
            continue
        shutil.rmtree(old, ignore_errors=True)
        pruned.append(old.name)
        log.info("pruned run %s (at most %d kept)", old.name, max_runs)
    return pruned
