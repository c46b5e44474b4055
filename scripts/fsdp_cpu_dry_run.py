"""Dry run of an FSDP accelerate config on CPU: its plugin, its wrapping, two sharded steps.

    accelerate launch --config_file configs/accelerate/fsdp_llama2_7b.yaml --num_processes 2 \
        --mixed_precision no scripts/fsdp_cpu_dry_run.py --labels runs/whp/labels

accelerate 1.x turns FSDP on only for GPU-type process groups (on CPU `Trainer` falls back to
DDP), so the finetune itself cannot run sharded here. This script checks what CPU allows:

1. the config file as `accelerate launch` passes it on: `FullyShardedDataParallelPlugin()` built
   from the environment (it validates the FSDP-version-specific fields);
2. the wrapping it asks for: the `fsdp_transformer_layer_cls_to_wrap` classes exist in the model;
3. FSDP2 (`torch.distributed.fsdp.fully_shard`, what accelerate applies for `fsdp_version: 2`)
   on those layers with the config's `reshard_after_forward`, over gloo: each process holds a
   1/N shard of every parameter, two optimizer steps on the generic labels (each process a
   different half of the batch), then the full weights gathered as the finetune gathers them;
4. the result against one unsharded process taking the same two steps on the whole batch
   (mean of the halves' losses): the loss and the weights must agree to float rounding.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _batch(dataset, rows: list[int]) -> dict:
    from unlearn.training import collate

    return collate([dataset[i] for i in rows], pad_id=0)


def _steps(model, batches: list[list[dict]], lr: float) -> list[float]:
    """Plain SGD steps; each step's loss is the mean over its half-batches."""
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    losses = []
    for halves in batches:
        opt.zero_grad()
        loss = sum(model(**h).loss for h in halves) / len(halves)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default=str(ROOT / "assets" / "models" / "baseline"))
    p.add_argument("--labels", required=True, help="a label dataset (python -m unlearn labels)")
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--lr", type=float, default=1e-2)
    args = p.parse_args(argv)

    from accelerate import FullyShardedDataParallelPlugin, PartialState
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import DTensor

    from unlearn.label_store import load_labels, select_alpha
    from unlearn.models import load_model

    state = PartialState(cpu=True)
    rank, world = state.process_index, state.num_processes
    if world < 2:
        p.error("run it under accelerate launch --num_processes 2 (or more)")
    plugin = FullyShardedDataParallelPlugin()  # from the ACCELERATE_/FSDP_ variables of the config
    if plugin.fsdp_version != 2:
        p.error(f"this dry run applies FSDP2; the config has fsdp_version {plugin.fsdp_version}")
    names = plugin.transformer_cls_names_to_wrap or []
    names = [names] if isinstance(names, str) else list(names)
    say = print if rank == 0 else (lambda *a, **k: None)
    say(f"plugin: fsdp_version={plugin.fsdp_version} auto_wrap={plugin.auto_wrap_policy} "
        f"layers={names} reshard_after_forward={plugin.reshard_after_forward} "
        f"state_dict_type={plugin.state_dict_type} cpu_ram_efficient_loading="
        f"{plugin.cpu_ram_efficient_loading} offload={type(plugin.cpu_offload).__name__}")

    dataset = select_alpha(load_labels(args.labels))
    per_rank = 2
    need = args.steps * per_rank * world
    if len(dataset) < need:
        p.error(f"{args.labels} has {len(dataset)} blocks; {need} needed")
    rows = [[list(range((s * world + r) * per_rank, (s * world + r + 1) * per_rank))
             for r in range(world)] for s in range(args.steps)]

    torch.manual_seed(0)
    model, _ = load_model(args.baseline)
    model.train()
    reference, _ = load_model(args.baseline)
    reference.train()
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise SystemExit(f"no module of class {names} in {args.baseline}: the config's "
                         "fsdp_transformer_layer_cls_to_wrap does not fit this model")
    fsdp_kwargs = {"reshard_after_forward": plugin.reshard_after_forward,
                   "offload_policy": plugin.cpu_offload}  # as accelerate's fsdp2_prepare_model
    for layer in layers:
        fully_shard(layer, **fsdp_kwargs)
    fully_shard(model, **fsdp_kwargs)
    sharded = [p for p in model.parameters() if isinstance(p, DTensor)]
    local = sum(p.to_local().numel() for p in sharded)
    full = sum(p.numel() for p in sharded)
    say(f"wrapped {len(layers)} {names[0]} + root; {len(sharded)} sharded parameters; "
        f"this process holds {local:,} of {full:,} values ({local / full:.2f})")

    mine = [[_batch(dataset, rows[s][rank])] for s in range(args.steps)]
    losses = _steps(model, mine, args.lr)
    from accelerate.utils import gather_object

    flat = gather_object(losses)  # every process's losses, in rank order
    losses = [sum(flat[r * args.steps + s] for r in range(world)) / world
              for s in range(args.steps)]
    weights = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True,
                                                                   cpu_offload=True))
    if rank == 0:
        whole = [[_batch(dataset, rows[s][r]) for r in range(world)] for s in range(args.steps)]
        ref_losses = _steps(reference, whole, args.lr)
        ref = reference.state_dict()
        diff = max(float((weights[k].float() - ref[k].float()).abs().max()) for k in weights)
        moved = max(float((ref[k] - load_model(args.baseline)[0].state_dict()[k]).abs().max())
                    for k in ("model.layers.0.mlp.up_proj.weight",))
        print(f"losses sharded {[round(x, 6) for x in losses]} vs one process "
              f"{[round(x, 6) for x in ref_losses]}")
        print(f"full weights gathered: {len(weights)} tensors; max |sharded - one process| "
              f"{diff:.2e} (a layer moved by up to {moved:.2e} in {args.steps} steps)")
        ok = moved > 0 and diff <= 1e-3 * moved and all(
            abs(a - b) < 1e-4 for a, b in zip(losses, ref_losses, strict=True))
        print("DRY RUN OK" if ok else "DRY RUN MISMATCH")
        state.wait_for_everyone()
        return 0 if ok else 1
    state.wait_for_everyone()
    return 0


if __name__ == "__main__":
    sys.exit(main())
