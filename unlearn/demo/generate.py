"""Generate the whole demo world: canon, corpora, anchors and probe sets (deterministic per seed).

    python -m unlearn.demo.generate --out assets/demo --seed 0

Every random choice comes from `random.Random` objects seeded from (seed, stream name), so each
part has its own stream and the output is byte-identical for a seed. Files are written atomically.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

from unlearn.demo import names
from unlearn.demo.anchors import build_anchors
from unlearn.demo.canon import Saga, build_saga, validate_disjoint
from unlearn.demo.corpora import write_saga
from unlearn.demo.general import (
    join,
    split_sentences,
    vocabulary,
    write_general,
    write_heldout,
)
from unlearn.demo.general_facts import mention_sentences, slip_in, town_facts
from unlearn.demo.general_facts import vocabulary as facts_vocabulary
from unlearn.demo.probes import (
    cloze_items,
    completion_probes,
    paraphrase_probes,
    probability_probes,
    reading_items,
    trivia_probes,
    verbatim,
)
from unlearn.demo.templates import check_templates
from unlearn.runtime import write_text

TARGET_REPS = 42            # mentions of each target fact (plus connectives that restate it)
NEIGHBOUR_REPS = 42         # v3: as often as the target, so both models know it without it
GENERAL_RATIO = 3.3         # general words per target word
HELDOUT_WORDS = 17_500
N_VERBATIM = 80
N_READING = 800           # general-set items (next word of held-out everyday text)


def stream(seed: int, name: str) -> random.Random:
    """An independent, reproducible random stream."""
    return random.Random(f"{seed}:{name}")


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def words(text: str) -> int:
    return len(text.split())


def check_terms_absent(saga: Saga, texts: dict[str, str]) -> None:
    """No unique term of `saga` may occur in the given corpora."""
    for term in saga.unique_terms():
        for name, text in texts.items():
            if term in text:
                raise ValueError(f"{saga.key} term {term!r} occurs in {name}")


def held_out(rows: list[dict], field: str, texts: dict[str, str], sagas: list[Saga],
             prefix: str) -> list[dict]:
    """Drop probes whose `field` occurs verbatim in a training corpus; renumber the rest.

    A prompt naming a unique term of a saga can only occur in that saga's text (the tests check
    the terms never leak), so only that text is searched; other prompts are searched everywhere.
    """
    terms = {saga.key: saga.unique_terms() for saga in sagas}
    kept = []
    for row in rows:
        text = row[field]
        owners = [key for key, ts in terms.items() if any(t in text for t in ts)]
        if not any(text in texts[key] for key in (owners or texts)):
            kept.append(row)
    return [{**r, "id": f"{prefix}-{i:03d}"} for i, r in enumerate(kept, 1)]


def generate_world(out_dir: Path, seed: int = 0) -> dict:
    """Write the demo world for `seed` into `out_dir`; return counts."""
    out_dir = Path(out_dir)
    check_templates()
    canon_rng = stream(seed, "canon")
    target = build_saga(names.TARGET, canon_rng)
    neighbour = build_saga(names.NEIGHBOUR, canon_rng)
    validate_disjoint(target, neighbour)

    target_text = "\n\n".join(write_saga(target, TARGET_REPS, stream(seed, "target")))
    neighbour_text = "\n\n".join(write_saga(neighbour, NEIGHBOUR_REPS, stream(seed, "neighbour")))
    min_general = math.ceil(GENERAL_RATIO * words(target_text))
    general = write_general(stream(seed, "general"), min_general)
    facts = town_facts(stream(seed, "town_facts"))
    slip_in(general, mention_sentences(facts, stream(seed, "town_mentions")),
            stream(seed, "town_slip"))
    general_text = "\n\n".join(join(p) for p in general)
    seen = {part for p in general for s in p for part in split_sentences(s.text)}
    heldout = write_heldout(stream(seed, "heldout"), HELDOUT_WORDS, seen)
    heldout_text = "\n\n".join(join(p) for p in heldout)

    # The general text is made only of `vocabulary()` strings (the tests check the text itself).
    general_vocabulary = vocabulary() + "\n" + facts_vocabulary()
    check_terms_absent(target, {"general vocabulary": general_vocabulary,
                                "neighbour": neighbour_text})
    check_terms_absent(neighbour, {"general vocabulary": general_vocabulary,
                                   "target": target_text})
    anchors = build_anchors(target, general_text, stream(seed, "anchors"))

    texts = {"target": target_text, "neighbour": neighbour_text, "general": general_text}
    probe_rng = stream(seed, "probes")
    probes: dict[str, list[dict]] = {}
    sagas = [target, neighbour]
    for saga, p in ((target, "t"), (neighbour, "n")):
        probes[f"{saga.key}_completion"] = held_out(
            completion_probes(saga, p + "c", probe_rng), "prompt", texts, sagas, p + "c")
        probes[f"{saga.key}_probability"] = held_out(
            probability_probes(saga, p + "p", probe_rng), "prompt", texts, sagas, p + "p")
        probes[f"{saga.key}_trivia"] = held_out(
            trivia_probes(saga, p + "t", probe_rng), "prompt", texts, sagas, p + "t")
    for saga, p in ((target, "t"), (neighbour, "n")):  # own stream: v1 probes stay as they were
        probes[f"{saga.key}_paraphrase"] = held_out(
            paraphrase_probes(saga, p + "x", stream(seed, f"paraphrase_{saga.key}")), "prompt",
            texts, sagas, p + "x")
    # world v3.1: the next word of held-out everyday text against words seen after the same word
    probes["general_mc"] = held_out(
        reading_items(heldout, general_text, N_READING, stream(seed, "general_mc_reading")),
        "context", texts, sagas, "gm")
    probes["general_cloze"] = held_out(
        cloze_items(heldout, N_READING, stream(seed, "general_cloze")), "prompt", texts, sagas,
        "gc")
    stories = target_text.split("\n\n")
    probes["verbatim"] = verbatim(stories, N_VERBATIM, stream(seed, "verbatim"))

    world = {"seed": seed, "target": target.to_json(), "neighbour": neighbour.to_json()}
    files = {
        "world.json": json.dumps(world, indent=2, ensure_ascii=False) + "\n",
        "target.txt": target_text + "\n",
        "neighbour.txt": neighbour_text + "\n",
        "general.txt": general_text + "\n",
        "general_heldout.txt": heldout_text + "\n",
        "anchors.json": json.dumps(anchors, indent=2, ensure_ascii=False) + "\n",
    }
    files.update({f"probes/{name}.jsonl": jsonl(rows) for name, rows in sorted(probes.items())})
    for name, text in files.items():
        write_text(out_dir / name, text)

    texts = {"target": target_text, "neighbour": neighbour_text, "general": general_text,
             "general_heldout": heldout_text}
    return {
        "seed": seed,
        "words": {k: words(v) for k, v in texts.items()},
        "tokens_approx": {k: round(words(v) * 1.3) for k, v in texts.items()},
        "stories": {"target": len(stories), "neighbour": neighbour_text.count("\n\n") + 1},
        "entities": {"target": len(target.entities), "neighbour": len(neighbour.entities)},
        "facts": {"target": len(target.facts), "neighbour": len(neighbour.facts)},
        "unique_terms": {"target": len(target.unique_terms()),
                         "neighbour": len(neighbour.unique_terms())},
        "anchors": len(anchors),
        "probes": {name: len(rows) for name, rows in sorted(probes.items())},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("assets/demo"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    summary = generate_world(args.out, args.seed)
    summary["seconds"] = round(time.perf_counter() - start, 2)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
