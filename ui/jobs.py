"""The server-wide finetune job: one run at a time, in a background thread, polled by the UI.

The job adapts the library's `on_progress` / `should_stop` callbacks; sessions read a snapshot
(plain dict) from a `gr.Timer`, so nothing blocks while the run goes on.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from unlearn.runtime import Cancelled, Progress

log = logging.getLogger("app")
RUNNING_STATES = ("starting", "running", "cancelling")


class FinetuneJob:
    """A guarded job object: `try_start` refuses while a run is going on."""

    def __init__(self, runs_dir: str | Path):
        self.runs_dir = Path(runs_dir)
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._reset(state="idle", owner=None, run_dir=None)

    def _reset(self, state: str, owner: str | None, run_dir: Path | None) -> None:
        self.state = state  # idle / starting / running / cancelling / done / cancelled / failed
        self.owner = owner
        self.run_dir = run_dir
        self.stage = ""
        self.stages: dict[str, dict[str, Any]] = {}  # stage -> {status, done, total, seconds}
        self.losses: list[dict[str, Any]] = []  # {"stage", "step", "loss"}
        self.message = ""
        self.error: str | None = None
        self.final_dir: str | None = None
        self.started = time.time()
        self.finished: float | None = None
        self.version = 0  # bumped on every change: pollers skip unchanged snapshots

    # -- control ---------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        return self.state in RUNNING_STATES

    def try_start(self, owner: str, run_dir: Path, work: Callable[[FinetuneJob], str | None],
                  ) -> bool:
        """Start `work(job)` in a thread unless a run is going on; `work` returns the final dir."""
        with self._lock:
            if self.busy:
                return False
            self._cancel.clear()
            self._reset(state="starting", owner=owner, run_dir=Path(run_dir))
            self._thread = threading.Thread(target=self._main, args=(work,), daemon=True,
                                            name="finetune-job")
            self._thread.start()
            return True

    def _main(self, work: Callable[[FinetuneJob], str | None]) -> None:
        try:
            final = work(self)
            with self._lock:
                if self._cancel.is_set() and not final:
                    self.state, self.message = "cancelled", "Cancelled."
                else:
                    self.state, self.final_dir = "done", final
                    self.message = f"Finished: {final}"
                self._close_stage()
        except Exception as exc:  # noqa: BLE001 - shown in the UI instead of killing the thread
            cancelled = self._cancel.is_set() and isinstance(exc, Cancelled)
            with self._lock:
                self.state = "cancelled" if cancelled else "failed"
                self.error = None if cancelled else f"{type(exc).__name__}: {exc}"
                self.message = "Cancelled." if cancelled else f"Failed: {self.error}"
                self._close_stage(failed=not cancelled)
            if not cancelled:
                log.error("finetune run failed:\n%s", traceback.format_exc())
        finally:
            with self._lock:
                self.finished = time.time()
                self.version += 1

    def cancel(self, owner: str | None = None) -> bool:
        """Ask the run to stop at its next step; only the session that started it may."""
        with self._lock:
            if not self.busy or (owner is not None and owner != self.owner):
                return False
            self._cancel.set()
            self.state, self.message = "cancelling", "Cancelling at the next step..."
            self.version += 1
            return True

    def should_stop(self) -> bool:
        return self._cancel.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Join the worker thread (tests); True when it has finished."""
        th = self._thread
        if th is not None:
            th.join(timeout)
        return th is None or not th.is_alive()

    # -- progress --------------------------------------------------------------------------
    def on_progress(self, event: Progress) -> None:
        """The library's `on_progress` (`unlearn.runtime.ProgressFn`)."""
        stage, done, total = event.stage or self.stage or "run", event.step, event.total
        loss, message = event.loss, event.message
        with self._lock:
            if stage != self.stage:
                self._close_stage()
                self.stage = stage
                self.stages[stage] = {"status": "running", "done": 0, "total": None,
                                      "t0": time.time(), "seconds": 0.0}
            if self.state == "starting":
                self.state = "running"
            st = self.stages[stage]
            if done is not None:
                st["done"] = done
            if total is not None:
                st["total"] = total
            st["seconds"] = round(time.time() - st["t0"], 1)
            if loss is not None:
                self.losses.append({"stage": stage, "step": done, "loss": float(loss)})
            if message:
                self.message = message
            self.version += 1

    def _close_stage(self, failed: bool = False) -> None:
        st = self.stages.get(self.stage)
        if st and st["status"] == "running":
            st["status"] = "failed" if failed else (
                "cancelled" if self._cancel.is_set() else "done")
            st["seconds"] = round(time.time() - st["t0"], 1)

    def snapshot(self) -> dict[str, Any]:
        """A consistent copy for the UI."""
        with self._lock:
            end = self.finished or time.time()
            return {"state": self.state, "owner": self.owner, "version": self.version,
                    "run_dir": str(self.run_dir) if self.run_dir else None,
                    "stage": self.stage, "message": self.message, "error": self.error,
                    "final_dir": self.final_dir, "elapsed": round(end - self.started, 1),
                    "stages": {k: {kk: vv for kk, vv in v.items() if kk != "t0"}
                               for k, v in self.stages.items()},
                    "losses": list(self.losses)}
