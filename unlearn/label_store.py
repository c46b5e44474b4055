"""The generic-label dataset on disk: its columns, the resumable shard store, the finished folder.

A finished label dataset is a `datasets.save_to_disk` folder with `whp_labels.json` (run facts)
and columns `input_ids`, `attention_mask`, one `labels_alpha_{a:g}` per alpha, and `block`.
`select_alpha` turns one alpha's column into the `labels` column a finetune trains on (the only
rename). While labels are computed, finished blocks live as shards in `<out>.partial/shards/`
(one folder per shard, named by its block range), so an interrupted run resumes where it stopped,
and the processes of a multi-process launch each write their own shards.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from unlearn.runtime import IGNORE_INDEX, publish_dir, temp_dir_next_to, write_json

__all__ = ["label_column", "select_alpha", "labels_complete", "load_labels", "ShardStore",
           "META_FILE"]

META_FILE = "whp_labels.json"
LABEL_PREFIX = "labels_alpha_"


def label_column(alpha: float) -> str:
    """Dataset column holding the labels for `alpha`: 5.0 -> "labels_alpha_5", 2.5 -> "..._2.5"."""
    return f"{LABEL_PREFIX}{alpha:g}"


def select_alpha(dataset, alpha: float | None = None):
    """The dataset with `alpha`'s labels (default: the first alpha computed) as `labels`."""
    have = [c for c in dataset.column_names if c.startswith(LABEL_PREFIX)]
    if not have:
        raise ValueError(f"not a label dataset (no {LABEL_PREFIX}* column)")
    col = have[0] if alpha is None else label_column(alpha)
    if col not in have:
        raise ValueError(f"labels for alpha={alpha:g} not computed (have: {have})")
    if "labels" in dataset.column_names:
        dataset = dataset.remove_columns("labels")
    return dataset.rename_column(col, "labels")


def labels_complete(out_dir: str | Path) -> bool:
    """True when `out_dir` holds a finished label dataset."""
    out_dir = Path(out_dir)
    return (out_dir / META_FILE).is_file() and (out_dir / "state.json").is_file()


def load_labels(out_dir: str | Path):
    """The finished label dataset at `out_dir` (`datasets.load_from_disk`)."""
    import datasets

    if not labels_complete(out_dir):
        raise FileNotFoundError(f"no finished label dataset at {out_dir}")
    return datasets.load_from_disk(str(out_dir))


def read_meta(out_dir: str | Path) -> dict:
    return json.loads((Path(out_dir) / META_FILE).read_text())


@contextmanager
def quiet_datasets():
    """No "Saving the dataset" bar per shard; restores the caller's setting afterwards."""
    from datasets.utils import (
        are_progress_bars_disabled,
        disable_progress_bars,
        enable_progress_bars,
    )

    was_disabled = are_progress_bars_disabled()
    disable_progress_bars()
    try:
        yield
    finally:
        if not was_disabled:
            enable_progress_bars()


def features(alphas: Sequence[float]):
    import datasets

    seq = datasets.Sequence(datasets.Value("int64"))
    cols = {"input_ids": seq, "attention_mask": seq}
    cols.update({label_column(a): seq for a in alphas})
    cols["block"] = datasets.Value("int64")
    return datasets.Features(cols)


SHARD_NAME = re.compile(r"^(\d{7})-(\d{7})$")  # blocks [lo, hi); temporary folders start with "."


class ShardStore:
    """Finished blocks of one labelling job (identified by `fingerprint`) in `<out>.partial/`.

    A shard is a folder `shards/<lo>-<hi>` (blocks `[lo, hi)`) that appears by a rename, so the
    folders on disk are the record of what is finished: several processes of one launch can
    write their own shards side by side without sharing a progress file. `progress.json` names
    the job; a `.partial` folder of another job is removed (by the process with `clean=True`).

    `done` is the set of finished block indices; `add(rows)` buffers rows (consecutive blocks)
    and writes a shard every `shard_size` blocks; `flush()` writes what is buffered;
    `publish(out_dir, meta)` assembles all shards into the finished dataset folder.
    """

    def __init__(self, out_dir: Path, fingerprint: str, total: int, alphas: Sequence[float],
                 shard_size: int, clean: bool = True):
        self.work = out_dir.with_name(out_dir.name + ".partial")
        self.features = features(alphas)
        self.shard_size = shard_size
        self.total = total
        self.pending: list[dict] = []
        progress_path = self.work / "progress.json"
        job = {"fingerprint": fingerprint, "total": total}
        if clean:
            old = json.loads(progress_path.read_text()) if progress_path.is_file() else None
            if self.work.exists() and (old is None or {k: old.get(k) for k in job} != job):
                shutil.rmtree(self.work)  # stale work from another text/config
            (self.work / "shards").mkdir(parents=True, exist_ok=True)
            write_json(progress_path, job)
        self.done = {k for lo, hi in self.shards() for k in range(lo, hi)}

    def shards(self) -> list[tuple[int, int]]:
        """The finished shards on disk, as sorted `(lo, hi)` block ranges."""
        folder = self.work / "shards"
        found = (SHARD_NAME.match(p.name) for p in folder.iterdir()) if folder.is_dir() else ()
        return sorted((int(m[1]), int(m[2])) for m in found if m)

    def _path(self, lo: int, hi: int) -> Path:
        return self.work / "shards" / f"{lo:07d}-{hi:07d}"

    def fits(self, block: int) -> bool:
        """Whether `block` can join the buffered rows (consecutive, within one shard)."""
        return not self.pending or (block == self.pending[-1]["block"] + 1
                                    and block - self.pending[0]["block"] < self.shard_size)

    def add(self, rows: list[dict]) -> None:
        if rows and not self.fits(rows[0]["block"]):
            self.flush()
        self.pending.extend(rows)
        if len(self.pending) >= self.shard_size:
            self.flush()

    def flush(self) -> None:
        import datasets

        if not self.pending:
            return
        lo, hi = self.pending[0]["block"], self.pending[-1]["block"] + 1
        tmp = temp_dir_next_to(self._path(lo, hi))
        with quiet_datasets():
            datasets.Dataset.from_list(self.pending, features=self.features).save_to_disk(str(tmp))
        publish_dir(tmp, self._path(lo, hi))
        self.done.update(range(lo, hi))
        self.pending = []

    def publish(self, out_dir: Path, meta: dict, keep_shards: bool = False):
        """Concatenate the shards into `out_dir` (a rename: never half-written); returns it.

        The shards must cover blocks `0 .. total-1` exactly once (all processes finished)."""
        import datasets

        self.flush()
        shards = self.shards()
        covered = [k for lo, hi in shards for k in range(lo, hi)]
        if covered != list(range(self.total)):
            raise RuntimeError(f"label shards in {self.work / 'shards'} do not cover blocks "
                               f"0..{self.total - 1} exactly once: {shards}")
        parts = [datasets.load_from_disk(str(self._path(lo, hi))) for lo, hi in shards]
        ds = datasets.concatenate_datasets(parts) if len(parts) > 1 else parts[0]
        first = next(c for c in ds.column_names if c.startswith(LABEL_PREFIX))
        trained = sum(sum(1 for v in row if v != IGNORE_INDEX) for row in ds[first])
        meta = {**meta, "trained_positions": trained, "columns": list(ds.column_names)}
        tmp = temp_dir_next_to(out_dir)
        with quiet_datasets():
            ds.save_to_disk(str(tmp))
        write_json(tmp / META_FILE, meta)
        publish_dir(tmp, out_dir)
        if not keep_shards:
            shutil.rmtree(self.work, ignore_errors=True)
        return datasets.load_from_disk(str(out_dir))
