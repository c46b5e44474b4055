"""The labelled-task contract (docs/CONTRACTS.md, "Labelled tasks"): load a folder, build prompts.

A task folder holds `task.json` ({"name", "description", "prompt", "answer", "separator",
"labels"}), `train.jsonl` and `test.jsonl` (lines {"id", "input", "output"}). A k-shot prompt is
the k examples (prompt + answer filled in) joined by `separator`, then `separator` + the query's
prompt; the prediction is the label whose `answer` continuation scores highest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path


class TaskError(ValueError):
    """A task folder that does not follow the contract."""


@dataclass(frozen=True)
class Example:
    id: str
    input: str
    output: str


@dataclass
class Task:
    name: str
    description: str
    prompt: str  # contains "{input}"
    answer: str  # contains "{output}", usually " {output}"
    separator: str
    labels: list[str]
    train: list[Example]
    test: list[Example]
    keys: dict[str, str] | None = None  # demo tasks: key word -> label (optional in task.json)

    def shot(self, ex: Example) -> str:
        """One demonstration: the prompt and its answer filled in."""
        return self.query(ex.input) + self.answer.format(output=ex.output)

    def query(self, text: str) -> str:
        return self.prompt.format(input=text)

    def context(self, shots: list[Example], query: str) -> str:
        """The k-shot prompt text for a query input (k may be 0: zero-shot)."""
        parts = [self.shot(s) for s in shots]
        return self.separator.join([*parts, self.query(query)])

    def continuations(self) -> list[str]:
        return [self.answer.format(output=label) for label in self.labels]

    def key_of(self, text: str) -> str | None:
        """The demo-task key word in an input (the last one that occurs), if the task has keys."""
        found = [k for k in self.keys or {} if f" {k} " in f" {text} "]
        return found[-1] if found else None

    def recall_ceiling(self, shots: list[Example], queries: list[Example]) -> float | None:
        """Fraction of queries whose key occurs among the shots: the accuracy of a perfect copier
        that answers from a matching example (and nothing else). None without keys."""
        if not self.keys or not queries:
            return None
        seen = {self.key_of(s.input) for s in shots}
        return sum(self.key_of(q.input) in seen for q in queries) / len(queries)

    def fingerprint(self) -> str:
        """Hash of the training inputs and outputs (keys the embedding cache)."""
        h = hashlib.sha256()
        for ex in self.train:
            h.update(f"{ex.id}\t{ex.input}\t{ex.output}\n".encode())
        return h.hexdigest()[:16]


def _read_split(path: Path, labels: list[str]) -> list[Example]:
    if not path.is_file():
        raise TaskError(f"missing {path}")
    rows: list[Example] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            ex = Example(str(row["id"]), str(row["input"]), str(row["output"]))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise TaskError(f"{path}:{n}: need JSON with id, input, output ({exc})") from None
        if labels and ex.output not in labels:
            raise TaskError(f"{path}:{n}: output {ex.output!r} is not one of the task labels")
        rows.append(ex)
    if len({r.id for r in rows}) != len(rows):
        raise TaskError(f"{path}: example ids are not unique")
    return rows


def load_task(folder: str | Path) -> Task:
    folder = Path(folder)
    meta_path = folder / "task.json"
    if not meta_path.is_file():
        raise TaskError(f"not a task folder (no task.json): {folder}")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise TaskError(f"{meta_path}: invalid JSON ({exc})") from None
    required = ("name", "prompt", "answer", "separator", "labels")
    missing = [key for key in required if key not in meta]
    if missing:
        raise TaskError(f"{meta_path}: missing {missing}")
    if "{input}" not in meta["prompt"] or "{output}" not in meta["answer"]:
        raise TaskError(f"{meta_path}: prompt needs {{input}} and answer needs {{output}}")
    labels = [str(label) for label in meta["labels"]]
    if len(labels) < 2:
        raise TaskError(f"{meta_path}: need at least 2 labels")
    return Task(meta["name"], meta.get("description", ""), meta["prompt"], meta["answer"],
                meta["separator"], labels, _read_split(folder / "train.jsonl", labels),
                _read_split(folder / "test.jsonl", labels), meta.get("keys"))
