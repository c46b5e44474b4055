"""Seeded generator of the demo's labelled tasks for in-context learning (ERASE).

Each task is associative recall in words: an input names one of 8 *keys* after filler words, and
the label is fixed by the key (two keys per label, the key -> label map drawn from the seed). A
model that learns in context answers a query right when the prompt holds an example with the same
key; zero-shot it can only guess. `python -m unlearn.demo.tasks --out assets/demo/tasks`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path

from unlearn.runtime import write_text


@dataclass(frozen=True)
class TaskSpec:
    name: str
    description: str
    prompt: str
    answer: str
    template: str  # filled with key and the filler slots
    keys: tuple[str, ...]
    labels: tuple[str, ...]
    slots: dict[str, tuple[str, ...]]


PLACES = ("garden", "kitchen", "market", "station", "park", "river", "school", "shop")
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
ADJECTIVES = ("old", "new", "small", "big", "little", "bright", "dusty", "quiet")
TIMES = ("morning", "evening", "night")

# The key is the last word of every input, right before the prompt's one-word suffix, so a
# query's label follows an earlier line that ends in the same two words (an induction pattern).
SPECS = (
    TaskSpec("colours", "the colour of an object is fixed by the object",
             "{input} is", " {output}", "in the {place} on {day}, the {adj} {key}",
             ("kettle", "lamp", "coat", "hat", "bell", "basket", "rabbit", "mirror"),
             ("red", "blue", "green", "yellow"),
             {"adj": ADJECTIVES, "place": PLACES, "day": DAYS}),
    TaskSpec("moods", "how a person felt is fixed by the person",
             "{input} felt", " {output}", "at the {adj} {place} on {day}, {key}",
             ("Tom", "Amy", "Luke", "Hannah", "Sam", "Kate", "Ben", "Lucy"),
             ("happy", "tired", "proud", "busy"),
             {"adj": ADJECTIVES, "place": PLACES, "day": DAYS}),
    TaskSpec("towns", "where a worker comes from is fixed by the trade",
             "{input} of", " {output}", "on {day} {time} at the {place}, the {adj} {key}",
             ("baker", "farmer", "nurse", "teacher", "doctor", "butcher", "cook", "clerk"),
             ("Leeds", "York", "Exeter", "Bath"),
             {"adj": ADJECTIVES, "day": DAYS, "time": TIMES, "place": PLACES}),
)


def key_to_label(spec: TaskSpec, rng: random.Random) -> dict[str, str]:
    """Each label gets len(keys) / len(labels) keys, in a seeded random order."""
    per = len(spec.keys) // len(spec.labels)
    labels = [label for label in spec.labels for _ in range(per)]
    rng.shuffle(labels)
    return dict(zip(spec.keys, labels, strict=True))


def make_task(spec: TaskSpec, n_train: int, n_test: int, seed: int) -> tuple[dict, list, list]:
    """Task metadata and disjoint train / test rows ({"id", "input", "output"})."""
    rng = random.Random(f"{spec.name}-{seed}")
    mapping = key_to_label(spec, rng)
    names = sorted(spec.slots)
    inputs = [spec.template.format(key=key, **dict(zip(names, fill, strict=True)))
              for key in spec.keys
              for fill in itertools.product(*(spec.slots[s] for s in names))]
    if n_train + n_test > len(inputs):
        raise ValueError(f"{spec.name}: only {len(inputs)} distinct inputs")
    chosen = rng.sample(inputs, n_train + n_test)
    key_of = {text: next(k for k in spec.keys if f" {k} " in f" {text} ") for text in chosen}

    def rows(split: str, texts: list[str]) -> list[dict]:
        return [{"id": f"{spec.name}-{split}-{i:05d}", "input": t, "output": mapping[key_of[t]]}
                for i, t in enumerate(texts)]

    meta = {"name": spec.name, "description": spec.description, "prompt": spec.prompt,
            "answer": spec.answer, "separator": "\n", "labels": list(spec.labels),
            "keys": mapping, "seed": seed}
    return meta, rows("train", chosen[:n_train]), rows("test", chosen[n_train:])


def write_tasks(out: Path, n_train: int = 1200, n_test: int = 240, seed: int = 0) -> list[Path]:
    folders = []
    for spec in SPECS:
        meta, train, test = make_task(spec, n_train, n_test, seed)
        folder = out / spec.name
        folder.mkdir(parents=True, exist_ok=True)
        write_text(folder / "task.json", json.dumps(meta, indent=2) + "\n")
        for split, rows in (("train", train), ("test", test)):
            write_text(folder / f"{split}.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
        folders.append(folder)
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="assets/demo/tasks")
    parser.add_argument("--train", type=int, default=1200)
    parser.add_argument("--test", type=int, default=240)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for folder in write_tasks(Path(args.out), args.train, args.test, args.seed):
        print(folder)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
