"""Per-session state (a small dataclass kept in `gr.State`) and the server-wide app context."""

from __future__ import annotations

import atexit
import json
import shutil
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ui.config import AppConfig
from ui.store import SIDES, Loaded, ModelStore, Startup


def _temp_dir() -> Path:
    """A folder for per-session downloads, removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix="whp-app-"))
    atexit.register(shutil.rmtree, path, True)
    return path


@dataclass
class Session:
    """What one browser session owns. Models themselves live in the shared `ModelStore`."""

    sides: dict[str, str | None]  # side -> model name shown there
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    log: list[dict] = field(default_factory=list)  # Side by side runs, for the JSONL download
    cancel: threading.Event | None = None  # stop flag of the running side-by-side stream
    run_id: str | None = None  # id of that stream in ui.gpu_tasks (plain data for the GPU)
    run_over: threading.Event | None = None  # set when that run has written its final status
    run_status: str = ""  # that final status line (Stop returns it once the run is over)
    probe_rows: list[dict] = field(default_factory=list)  # last Completion probes results
    probe_scores: dict[str, Any] = field(default_factory=dict)
    operator: bool = False  # logged in as operator (public mode; ui/public.py)

    def __deepcopy__(self, memo):  # gr.State deep-copies the initial value; Events cannot be
        return Session(sides=dict(self.sides), log=list(self.log), probe_rows=[],
                       probe_scores={})


@dataclass
class AppContext:
    """Server-wide objects shared by every handler."""

    config: AppConfig
    store: ModelStore
    startup: Startup
    work_dir: Path = field(default_factory=lambda: _temp_dir())
    job: Any = None  # ui.jobs.FinetuneJob, set by build_ui
    store_key: str = ""  # how GPU calls find `store` (ui.gpu_tasks.STORES), set at start

    def __post_init__(self) -> None:
        if not self.store_key:
            from ui.gpu_tasks import register_store

            self.store_key = register_store(self.store)

    def new_session(self) -> Session:
        return Session(sides=dict(self.startup.sides))

    @property
    def demo_dir(self) -> Path:
        return Path(self.config.demo_dir)

    @property
    def runs_dir(self) -> Path:
        return Path(self.config.runs_dir)

    def session_file(self, session: Session, name: str) -> Path:
        """A per-session download path under the app's temporary folder."""
        folder = self.work_dir / session.id
        folder.mkdir(parents=True, exist_ok=True)
        return folder / name

    def side_models(self, session: Session) -> list[Loaded]:
        """The loaded model of each side (raises `ModelLoadError` when one is unavailable)."""
        from unlearn.models import ModelLoadError

        out = []
        for side in SIDES:
            name = session.sides.get(side)
            if not name:
                raise ModelLoadError(f"no {side} model is loaded (see the notice at the top)")
            out.append(self.store.get(name))
        return out

    def side_names(self, session: Session, with_reference: bool = True) -> dict[str, str]:
        """`{"original": name, "unlearned": name[, "reference": name]}`: plain data for GPU
        calls; raises `ModelLoadError` when a side has no model or its model cannot load."""
        return {role: m.name for role, m in self.named_models(session, with_reference).items()}

    def named_models(self, session: Session, with_reference: bool = True) -> dict[str, Loaded]:
        """`{"original": ..., "unlearned": ..., "reference": ...}` for audits and plots."""
        models = dict(zip(SIDES, self.side_models(session), strict=True))
        if with_reference and self.startup.reference:
            models["reference"] = self.store.get(self.startup.reference)
        return models


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                    encoding="utf-8")
    return path
