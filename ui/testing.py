"""Helpers for the app's tests and benchmark: a tiny demo folder, a launched app subprocess.

Not used by the app itself.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

TARGET = ("Mira Thistlewood's owl was called Pip. Mira studied starcraft at Gallowmere with "
          "her friend Odo Brackenfield. The wizard raised his wand over the castle. ")
GENERAL = ("Anna walked to the city school with her dog Max. The teacher smiled at her. "
           "Ben's best friend was Tom. They played football in the park after lessons. ")


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_tiny_demo(out: Path) -> Path:
    """A miniature `assets/demo` (CONTRACTS.md layout) with a few items per probe file."""
    out = Path(out)
    probes = out / "probes"
    probes.mkdir(parents=True, exist_ok=True)
    world = {"seed": 0,
             "target": {"name": "Starcraft saga",
                        "entities": [{"name": "Mira Thistlewood", "kind": "character",
                                      "aliases": ["Mira"]},
                                     {"name": "Gallowmere", "kind": "school", "aliases": []},
                                     {"name": "Pip", "kind": "creature", "aliases": []}],
                        "facts": [], "unique_terms": ["Mira Thistlewood", "Gallowmere", "Pip",
                                                      "starcraft", "Odo Brackenfield"],
                        "theme_terms": ["wand", "castle", "owl", "wizard"]},
             "neighbour": {"name": "Other saga", "entities": [], "facts": [],
                           "unique_terms": ["Kelvar"], "theme_terms": ["sword"]}}
    (out / "world.json").write_text(json.dumps(world), encoding="utf-8")
    (out / "anchors.json").write_text(json.dumps(
        {"Mira Thistlewood": ["Anna Smith"], "Gallowmere": ["the city school"],
         "Pip": ["Max", "Rex"], "starcraft": ["history"]}), encoding="utf-8")
    (out / "target.txt").write_text((TARGET + "\n\n") * 30, encoding="utf-8")
    (out / "neighbour.txt").write_text("Kelvar drew his sword.\n\n" * 10, encoding="utf-8")
    (out / "general.txt").write_text((GENERAL + "\n\n") * 60, encoding="utf-8")
    (out / "general_heldout.txt").write_text((GENERAL + "\n\n") * 4, encoding="utf-8")
    _jsonl(probes / "target_completion.jsonl", [
        {"id": f"tc-{i}", "prompt": p, "terms": [], "subtlety": 3} for i, p in enumerate(
            ["Mira's owl was called", "At the school, the student studied",
             "The wizard raised his"])])
    _jsonl(probes / "neighbour_completion.jsonl", [
        {"id": "nc-0", "prompt": "Kelvar drew his", "terms": ["Kelvar"], "subtlety": 1}])
    _jsonl(probes / "target_probability.jsonl", [
        {"id": f"tp-{i}", "prompt": p, "answer": a} for i, (p, a) in enumerate(
            [("Mira Thistlewood's owl was called", " Pip"), ("Mira studied starcraft at",
                                                             " Gallowmere")])])
    _jsonl(probes / "neighbour_probability.jsonl", [
        {"id": "np-0", "prompt": "Kelvar drew his", "answer": " sword"}])
    _jsonl(probes / "target_trivia.jsonl", [
        {"id": "tt-0", "prompt": "Mira's owl was called", "correct": " Pip",
         "distractor": " Max"}])
    _jsonl(probes / "neighbour_trivia.jsonl", [
        {"id": "nt-0", "prompt": "Kelvar drew his", "correct": " sword", "distractor": " pen"}])
    _jsonl(probes / "general_mc.jsonl", [
        {"id": "gm-0", "context": "Anna walked to the city school with her",
         "options": [" dog", " car", " tree", " sky"], "answer": 0}])
    _jsonl(probes / "verbatim.jsonl", [
        {"id": "vb-0", "prefix": "Mira Thistlewood's owl", "continuation": " was called Pip."}])
    return out


LLAMA2_TEXT = [
    "Harry Potter went back to Hogwarts with Ron Weasley and Hermione Granger.",
    "Frodo Baggins carried the ring to Mordor with Samwise Gamgee and Gandalf.",
    "The boy with the scar boarded the train to the castle school of magic.",
    "To make a cup of tea, you first boil the water in the kettle.",
    "Every Saturday the market in the town square opened early in the morning.",
    "[INST] <<SYS>> Answer briefly. <</SYS>> Who is the headmaster? [/INST]",
] * 20


def llama_style_tokenizer(texts: list[str], vocab_size: int = 600):
    """A tokenizer shaped like Llama-2's: SentencePiece-style BPE ("▁" for spaces, a
    dummy prefix), byte fallback through `<0x00>`..`<0xFF>`, ids 0/1/2 = `<unk>`/`<s>`/`</s>`,
    BOS prepended, no pad token and no chat template (like the WHP model's tokenizer)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaTokenizer

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    # words never merge across a space, as in SentencePiece
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tok.train_from_iterator(texts, trainer=trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False))
    spec = json.loads(tok.to_str())
    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{i:02X}>": 3 + i for i in range(256)}}
    for piece, _ in sorted(spec["model"]["vocab"].items(), key=lambda kv: kv[1]):
        vocab.setdefault(piece, len(vocab))  # byte pieces are ordinary vocabulary, as in Llama
    spec["model"]["vocab"] = vocab
    for added in spec["added_tokens"]:
        added["id"] = vocab[added["content"]]
    tok = Tokenizer.from_str(json.dumps(spec))
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(" ", 1, 0)])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return LlamaTokenizer(tokenizer_object=tok, bos_token="<s>", eos_token="</s>",
                          unk_token="<unk>")


def write_tiny_llama2_pair(out: Path) -> tuple[Path, Path]:
    """Two random Llama-2-shaped models ("original", "unlearned": different seeds) sharing a
    Llama-style tokenizer, saved as `save_pretrained` folders. Hidden size 64: bitsandbytes'
    4-bit CPU kernels need layers at least one block wide."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = llama_style_tokenizer(LLAMA2_TEXT)
    dirs = []
    for seed, name in enumerate(("original", "unlearned")):
        torch.manual_seed(seed)
        config = LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                             max_position_embeddings=512, rms_norm_eps=1e-5,
                             bos_token_id=1, eos_token_id=2, pad_token_id=None,
                             tie_word_embeddings=False)
        folder = Path(out) / name
        LlamaForCausalLM(config).save_pretrained(folder)
        tok.save_pretrained(folder)
        dirs.append(folder)
    return dirs[0], dirs[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_app(args: list[str], port: int, log_path: Path, timeout: float = 150.0,
               env: dict | None = None) -> subprocess.Popen:
    """Start `python app.py ... --port PORT` and wait until the page answers and the start-up
    models are loaded (the app serves its page before that: `ui.store.READY_LOG`), or raise."""
    from ui.store import READY_LOG

    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "GRADIO_ANALYTICS_ENABLED": "False", "TOKENIZERS_PARALLELISM": "false",
                **(env or {})}
    log = open(log_path, "w")  # noqa: SIM115 - closed by the caller via stop_app
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), *args, "--port", str(port)],
                            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    proc._log = log  # type: ignore[attr-defined]
    deadline = time.time() + timeout
    url = f"http://127.0.0.1:{port}/"
    while time.time() < deadline:
        if proc.poll() is not None:
            log.flush()
            raise RuntimeError(f"app exited with {proc.returncode}:\n"
                               f"{Path(log_path).read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                log.flush()
                if resp.status == 200 and READY_LOG in Path(log_path).read_text(errors="replace"):
                    return proc
        except OSError:
            pass
        time.sleep(0.5)
    stop_app(proc)
    raise TimeoutError(f"app did not answer on {url} within {timeout} s:\n"
                       f"{Path(log_path).read_text()[-3000:]}")


def stop_app(proc: subprocess.Popen) -> None:
    """Terminate the app process we started (and only it)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    log = getattr(proc, "_log", None)
    if log is not None:
        log.close()


_SHARED: dict[tuple, tuple[str, subprocess.Popen]] = {}


def demo_models_built() -> bool:
    models = ROOT / "assets" / "models"
    return (models / "baseline" / "config.json").is_file() and any(
        (models / n / "config.json").is_file() for n in ("unlearned", "reference"))


def shared_app(tiny_model_dir: Path) -> tuple[str, Path]:
    """One launched app per test process, shared by the client and browser tests.

    On the demo models when they are built (readable screenshots), else on the tiny test
    model with the demo folder (or a miniature one). Returns `(url, work_dir)`; stopped at exit.
    """
    key = (str(tiny_model_dir),)
    if key not in _SHARED:
        root = Path(tempfile.mkdtemp(prefix="whp-app-test-"))
        args = ["--runs-dir", str(root / "runs")]
        if not demo_models_built():
            demo = ROOT / "assets" / "demo"
            if not (demo / "world.json").is_file():
                demo = write_tiny_demo(root / "demo")
            args += ["--original", str(tiny_model_dir), "--unlearned", str(tiny_model_dir),
                     "--reference", "", "--demo-dir", str(demo)]
        port = free_port()
        proc = launch_app(args, port, root / "app.log")
        atexit.register(shutil.rmtree, root, True)  # runs after stop_app (LIFO)
        atexit.register(stop_app, proc)
        _SHARED[key] = (f"http://127.0.0.1:{port}/", proc)
        _SHARED[key + ("root",)] = (str(root), proc)
    return _SHARED[key][0], Path(_SHARED[key + ("root",)][0])
