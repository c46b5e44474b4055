"""Save and load an ERASE selection state folder (`state.npz` arrays + `state.json` metadata).

Both files are written to temporary names and renamed, so a killed `delete` leaves the previous
state intact.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np

from unlearn.erase.qkmeans import DeletionRecord, QKMeansConfig, QKMeansState

ARRAYS = ("x", "alive", "seeds", "assign", "sums", "sizes", "grids", "phases", "prompt")


def save_state(folder: str | Path, state: QKMeansState, meta: dict | None = None) -> Path:
    """Write the state; `meta` (task, model, embedding config...) is kept in state.json."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / ".state.tmp.npz"
    np.savez(tmp, **{name: getattr(state, name) for name in ARRAYS})
    doc = {"config": asdict(state.config), "ids": state.ids, "meta": meta or {},
           "prompt_ids": state.prompt_ids(), "n_alive": state.n,
           "log": [asdict(r) for r in state.log]}
    tmp_json = folder / ".state.tmp.json"
    tmp_json.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, folder / "state.npz")
    os.replace(tmp_json, folder / "state.json")
    return folder


def load_state(folder: str | Path) -> tuple[QKMeansState, dict]:
    """(state, meta) from a folder written by `save_state`."""
    folder = Path(folder)
    if not (folder / "state.json").is_file() or not (folder / "state.npz").is_file():
        raise FileNotFoundError(f"not an ERASE state folder (run `erase select` first): {folder}")
    doc = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    with np.load(folder / "state.npz") as arrays:
        values = {name: arrays[name] for name in ARRAYS}
    state = QKMeansState(QKMeansConfig(**doc["config"]), doc["ids"], values.pop("x"),
                         values.pop("alive"), values.pop("seeds"), values.pop("assign"),
                         values.pop("sums"), values.pop("sizes"), values.pop("grids"),
                         values.pop("phases"), values.pop("prompt"),
                         [DeletionRecord(**r) for r in doc["log"]])
    return state, doc["meta"]
