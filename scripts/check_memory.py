"""Peak memory, predicted against measured twice: the analytic timelines (`profiler.formulas.memory`) against the
CPU tracker `measure` uses and against the CPU allocator's own record.

    python scripts/check_memory.py [--models tiny,20m,small] [--modes train,forward,generate]
                                   [--batches 1,4] [--seq-lens 128,512] [--new-tokens 16] [--extra tiny:1:2048]
modes: train (fp32), train_bf16 (fp32 weights, bf16 autocast), train_pure_bf16 (bf16 weights and AdamW state),
forward (no grad, every logit), generate

MODELs are zoo sizes, shipped config names or config.json paths, plus two transformers configs defined here:
`hf_llama` (Llama, untied head, vocab 32,000, hidden 512, 8 layers) and `hf_mixtral` (Mixtral, 4 experts, top 2).
`--extra MODEL:BATCH:SEQ` adds single points (repeatable, comma-separated).

Each point runs in a fresh process (the allocator keeps its table of block sizes from one profile to the next,
which would corrupt a second profile in the same process): inside a `torch.profiler` memory profile, build the
model (`ModelSource.build("cpu")`, fp32), make the step (`profiler.measuring.harness.make_step`: train =
zero_grad to None, forward with labels, backward, AdamW; forward = no-grad, every logit; generate = greedy, N new
tokens) and run it once, so gradients and AdamW's state exist; measure one call with `allocator_peak` and the next
with `CpuDevice.track_memory`. One torch thread.

Predicted: train = the largest phase of `training_timeline` (device cpu: single-tensor AdamW; train_bf16 with
`autocast="bfloat16"`); forward =
`forward_peak_bytes`; generate = the largest phase of `generate_timeline`. Prints a Markdown table: the three
peaks in MiB, the prediction's error against the tracker, and the tracker against the allocator (`unseen frees`:
the allocator logged a free of a block allocated before its profile began, so its figures would be too high).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from typing import Any

UNSEEN_FREE_WARNING = "Memory block of unknown size was allocated before the profiling started"
MIB = 2**20
# train_bf16: fp32 weights, the forward under bf16 autocast; train_pure_bf16: a bf16 model and bf16 AdamW state
MODES = ("train", "train_bf16", "train_pure_bf16", "forward", "generate")
HF_CONFIGS = {
    "hf_llama": dict(model_type="llama", vocab_size=32000, hidden_size=512, intermediate_size=1536,
                     num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=4096,
                     tie_word_embeddings=False),
    "hf_mixtral": dict(model_type="mixtral", vocab_size=32000, hidden_size=256, intermediate_size=512,
                       num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2, num_local_experts=4,
                       num_experts_per_tok=2, max_position_embeddings=4096, tie_word_embeddings=False),
}


def source_of(model: str) -> Any:
    from profiler.source import from_config_dict, resolve

    return from_config_dict(HF_CONFIGS[model], model) if model in HF_CONFIGS else resolve(model)


def predicted_bytes(model: str, mode: str, batch: int, seq_len: int, new_tokens: int) -> int:
    from profiler.formulas import memory as M

    arch = source_of(model).arch
    if mode == "train_pure_bf16":
        return max(M.training_timeline(arch, batch, seq_len, "bfloat16", device="cpu", master_weights=False).values())
    if mode.startswith("train"):
        autocast = "bfloat16" if mode == "train_bf16" else None
        return max(M.training_timeline(arch, batch, seq_len, "float32", device="cpu", autocast=autocast).values())
    if mode == "forward":
        return M.forward_peak_bytes(arch, batch, seq_len, "float32")
    return max(M.generate_timeline(arch, batch, seq_len, new_tokens, "float32").values())


def measure_point(model: str, mode: str, batch: int, seq_len: int, new_tokens: int) -> dict[str, Any]:
    """The tracker's and the allocator's MemoryStats (as dicts) of one warmed-up call."""
    import torch

    from profiler.measuring.device import CpuDevice
    from profiler.measuring.harness import make_step
    from profiler.measuring.memory_check import allocator_peak

    torch.set_num_threads(1)
    torch.manual_seed(0)
    source = source_of(model)
    state: dict[str, Any] = {}

    def setup() -> None:
        ids = torch.randint(source.arch.vocab_size, (batch, seq_len), generator=torch.Generator().manual_seed(0))
        module = source.build("cpu").to(torch.bfloat16 if mode == "train_pure_bf16" else torch.float32)
        call, _ = make_step(module, "train" if mode.startswith("train") else mode, ids, new_tokens,
                            zoo=source.is_zoo, autocast="bfloat16" if mode == "train_bf16" else None)
        state["call"] = call
        call()  # warm-up: gradients and AdamW's state exist from here on

    allocator = allocator_peak(lambda: state["call"](), setup)
    with CpuDevice(torch.device("cpu")).track_memory() as tracker:
        state["call"]()
    return {"tracker": tracker.to_dict(), "allocator": allocator.to_dict()}


def run_point(model: str, mode: str, batch: int, seq_len: int, new_tokens: int) -> tuple[dict[str, Any], bool]:
    """`measure_point` in a fresh Python process; also whether the allocator logged an unseen free."""
    done = subprocess.run([sys.executable, __file__, "--point", f"{model},{mode},{batch},{seq_len},{new_tokens}"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{model} {mode} batch {batch} seq {seq_len} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1]), UNSEEN_FREE_WARNING in done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,20m,small")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--seq-lens", default="128,512")
    parser.add_argument("--new-tokens", type=int, default=16)
    parser.add_argument("--extra", default="", help="more points, MODEL:BATCH:SEQ, comma-separated (every mode)")
    parser.add_argument("--point", help=argparse.SUPPRESS)  # the child process's job
    args = parser.parse_args()
    if args.point:
        model, mode, batch, seq_len, new_tokens = args.point.split(",")
        print(json.dumps(measure_point(model, mode, int(batch), int(seq_len), int(new_tokens))))
        return
    modes = args.modes.split(",")
    points = [(m, mode, int(b), int(s)) for m in args.models.split(",") for mode in modes
              for b in args.batches.split(",") for s in args.seq_lens.split(",")]
    points += [(m, mode, int(b), int(s)) for m, b, s in (p.split(":") for p in args.extra.split(",") if p)
               for mode in modes]
    print("| model | mode | batch | seq | predicted MiB | tracker MiB | allocator MiB | predicted vs tracker "
          "| tracker vs allocator | unseen frees |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    began, errors = time.perf_counter(), []
    for model, mode, batch, seq_len in points:
        limit = source_of(model).arch.max_position_embeddings
        if mode == "generate" and seq_len + args.new_tokens > limit:
            print(f"| {model} | {mode} | {batch} | {seq_len} | skipped: prompt + {args.new_tokens} new tokens is over "
                  f"max_position_embeddings={limit} | | | | | |", flush=True)
            continue
        measured, unseen = run_point(model, mode, batch, seq_len, args.new_tokens)
        tracker, allocator = measured["tracker"]["peak_bytes"], measured["allocator"]["peak_bytes"]
        predicted = predicted_bytes(model, mode, batch, seq_len, args.new_tokens)
        errors.append((predicted - tracker) / tracker)
        print(f"| {model} | {mode} | {batch} | {seq_len} | {predicted / MIB:,.1f} | {tracker / MIB:,.1f} "
              f"| {allocator / MIB:,.1f} | {errors[-1]:+.1%} | {(tracker - allocator) / allocator:+.3%} "
              f"| {'yes' if unseen else 'no'} |", flush=True)
    print(f"\n{len(errors)} points: median |error| {statistics.median(abs(e) for e in errors):.1%}, "
          f"max {max(abs(e) for e in errors):.1%}; {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
