"""App configuration: one dataclass, filled from flags, environment variables and presets."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from dataclasses import dataclass, field, fields
from pathlib import Path

from unlearn.models import DTYPES, QUANTIZATIONS

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
CHAT_TEMPLATES = ("auto", "llama2", "plain", "none")
# GPUs with less memory than this get both 7B models in 4-bit (two fp16 7B models need ~27 GB).
SMALL_GPU_GB = 40.0

PRESETS: dict[str, dict[str, str]] = {
    "demo": {"original": str(ASSETS / "models" / "baseline"),
             "unlearned": str(ASSETS / "models" / "unlearned"),
             "reference": str(ASSETS / "models" / "reference"),
             "chat_template": "plain", "demo_dir": str(ASSETS / "demo")},
    "llama2-whp": {"original": "meta-llama/Llama-2-7b-chat-hf",
                   "unlearned": "microsoft/Llama2-7b-WhoIsHarryPotter",
                   "reference": "", "device": "cuda", "dtype": "float16",
                   "chat_template": "llama2", "demo_dir": str(ASSETS / "hp")},
}
ENV_PREFIX = "WHP_"


@dataclass
class AppConfig:
    """Everything `python app.py` can be told; each field also reads env var WHP_<FIELD>."""

    preset: str = "demo"  # "demo" (embedded models, CPU) or "llama2-whp" (the published pair)
    # None = take it from the preset; "" for `reference` = no reference model
    original: str | None = None  # left model: local folder or hub id
    unlearned: str | None = None  # right model: local folder or hub id
    reference: str | None = None  # optional never-saw-it model (forget quality in the report)
    device: str | None = None  # "cpu", "cuda", "cuda:1"... (preset, else cpu); never guessed
    dtype: str | None = None  # auto / float32 / bfloat16 / float16 (preset, else auto)
    quantization: str | None = None  # none / 8bit / 4bit (4bit for llama2 on a small GPU)
    chat_template: str | None = None  # auto / llama2 / plain / none, for chat mode
    demo_dir: str | None = None  # probes/, anchors.json, world.json (target.txt): the suite
    # of the tabs; from the preset: assets/demo, or assets/hp for llama2-whp
    runs_dir: str = "runs"  # where finetune runs and reports are written
    port: int | None = None  # default: GRADIO_SERVER_PORT, else 7860
    host: str | None = None  # default: GRADIO_SERVER_NAME, else 127.0.0.1
    max_new_tokens: int = 48  # default generation length in the Side by side tab
    finetune_steps_max: int = 200  # upper bound of the steps slider
    notices: list[str] = field(default_factory=list)  # filled while resolving

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        if self.dtype and self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.quantization and self.quantization not in QUANTIZATIONS:
            raise ValueError(f"quantization must be one of {QUANTIZATIONS}, "
                             f"got {self.quantization!r}")
        if self.chat_template and self.chat_template not in CHAT_TEMPLATES:
            raise ValueError(f"chat_template must be one of {CHAT_TEMPLATES}, "
                             f"got {self.chat_template!r}")
        if self.port is not None and not 0 < int(self.port) < 65536:
            raise ValueError(f"port out of range: {self.port}")

    def resolved(self) -> AppConfig:
        """A copy with every empty field filled from the preset and defaults."""
        preset = PRESETS[self.preset]
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["notices"] = list(self.notices)
        for key in ("original", "unlearned", "reference", "device", "dtype", "chat_template",
                    "demo_dir"):
            if values[key] is None:
                values[key] = preset.get(key, "")
        values["device"] = values["device"] or "cpu"
        values["dtype"] = values["dtype"] or "auto"
        values["chat_template"] = values["chat_template"] or "auto"
        if not values["quantization"]:
            values["quantization"] = "none"
            if self.preset == "llama2-whp" and values["device"].startswith("cuda"):
                gb = gpu_memory_gb()
                if gb is None or gb < SMALL_GPU_GB:
                    values["quantization"] = "4bit"
                    values["notices"].append(
                        f"4-bit quantization chosen (GPU memory: "
                        f"{'unknown' if gb is None else f'{gb:.0f} GB'}); "
                        f"pass --quantization none to load in {values['dtype']}")
        if values["port"] is None and os.environ.get("GRADIO_SERVER_PORT"):
            values["port"] = int(os.environ["GRADIO_SERVER_PORT"])
        if values["host"] is None:
            values["host"] = os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
        return AppConfig(**values)

    def load_kwargs(self) -> dict[str, str]:
        """device / dtype / quantization for `unlearn.models.load_model`."""
        return {"device": self.device or "cpu", "dtype": self.dtype or "auto",
                "quantization": self.quantization or "none"}


def gpu_memory_gb() -> float | None:
    """Total memory of the first GPU in GB, or None when unknown.

    `WHP_GPU_MEMORY_GB` wins; then the CUDA runtime, read inside the GPU context
    (`ui.gpu.cuda_memory_gb`, a ZeroGPU call on Spaces, where the main process sees no GPU);
    then `nvidia-smi`.
    """
    if env := os.environ.get(ENV_PREFIX + "GPU_MEMORY_GB"):
        return float(env)
    from ui.gpu import cuda_memory_gb

    try:
        gb = cuda_memory_gb()
    except Exception:  # noqa: BLE001 - a failed probe means "unknown", never a crash at start
        gb = None
    return gb if gb is not None else nvidia_smi_memory_gb()


def nvidia_smi_memory_gb() -> float | None:
    """Total memory of the first GPU from nvidia-smi (None without it or on error)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=memory.total", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return float(out.split()[0]) / 1024
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="app.py", description="Side-by-side demo and audit app for WHP unlearning.",
        epilog="Every flag can also be set as an environment variable WHP_<FLAG> "
               "(e.g. WHP_DEVICE=cuda); GRADIO_SERVER_PORT / GRADIO_SERVER_NAME are honoured.")
    p.add_argument("--preset", choices=sorted(PRESETS), help="model pair (default: demo)")
    p.add_argument("--original", help="left model: local folder or hub id")
    p.add_argument("--unlearned", help="right model: local folder or hub id")
    p.add_argument("--reference", help="never-saw-it model for the report ('' for none)")
    p.add_argument("--device", help="cpu, cuda, cuda:1... (default from preset, else cpu)")
    p.add_argument("--dtype", choices=sorted(DTYPES))
    p.add_argument("--quantization", choices=QUANTIZATIONS)
    p.add_argument("--chat-template", choices=CHAT_TEMPLATES, help="prompt format in chat mode")
    p.add_argument("--demo-dir", help="folder with probes/, anchors.json, target.txt")
    p.add_argument("--runs-dir", help="where finetune runs and reports go (default runs/)")
    p.add_argument("--port", type=int, help="server port (default GRADIO_SERVER_PORT or 7860)")
    p.add_argument("--host", help="server name (default GRADIO_SERVER_NAME or 127.0.0.1)")
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--finetune-steps-max", type=int)
    return p


def parse_config(argv: list[str] | None = None, env: dict[str, str] | None = None) -> AppConfig:
    """Flags win over WHP_* environment variables, which win over the preset."""
    env = dict(os.environ if env is None else env)
    args = vars(build_parser().parse_args(argv))
    values: dict = {}
    for f in fields(AppConfig):
        if f.name == "notices":
            continue
        value = args.get(f.name)
        if value is None and (ENV_PREFIX + f.name.upper()) in env:
            value = env[ENV_PREFIX + f.name.upper()]
            if f.name in ("port", "max_new_tokens", "finetune_steps_max"):
                value = int(value)
        if value is not None:
            values[f.name] = value
    return AppConfig(**values).resolved()
