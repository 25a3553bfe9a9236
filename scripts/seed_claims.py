"""Seed 001's four claims, measured on this machine (CPU, fp32). Results and their reading: docs/training.md.

    python scripts/seed_claims.py [attention|mlp|qk-norm|routed-vs-dense|all] [--data FILES...] [--work-dir DIR]

attention        F.scaled_dot_product_attention vs an explicit softmax(QKᵀ/√d + mask)·V, causal, forward + backward:
                 median time and peak resident memory of a fresh process (seed: "2-4x faster", "O(n) memory").
mlp              token-routed MLP (4 experts) vs the dense SwiGLU of the same total width: matmul FLOPs per token
                 counted by profiler.counting.FlopCounter (2 per multiply-add, forward + backward) and time
                 (seed: "~25% compute per token").
qk-norm          the same small model trained with and without QK-norm at a normal and a high learning rate:
                 largest pre-softmax attention logit, loss spikes, final held-out loss (seed: "stabilizes training").
routed-vs-dense  held-out perplexity after the same token budget: token-routed (range and modulo routing) vs a
                 dense MLP as wide as one expert (equal active compute) and as wide as all four (equal parameters)
                 (seed: "better PPL (specialization)").

The training claims run `complexity.training.train` on local text (default: the standard library's top-level
*.py files) with one tokenizer trained once in --work-dir.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import shutil
import statistics
import sysconfig
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from bench_zoo import cpu_device, median_s  # scripts/ is on sys.path when this file is run as a script

from complexity import ComplexityConfig
from complexity.core.mlp import SwiGLUMLP
from complexity.core.token_routed_mlp import TokenRoutedMLP
from complexity.training.data import build_token_file, resolve_text_files
from complexity.training.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer
from complexity.training.train import NonFiniteLossError, TrainConfig, train
from profiler.counting import FlopCounter

SMALL_MODEL = dict(hidden_size=128, num_hidden_layers=4, num_attention_heads=2, num_key_value_heads=1,
                   max_position_embeddings=128, num_experts=4)


# ---------------------------------------------------------------- attention
def explicit_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(QKᵀ/√d with future keys at -inf)·V, materialising the [B, H, S, S] scores and probabilities."""
    seq = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    future = torch.ones(seq, seq, dtype=torch.bool, device=q.device).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(-1) @ v


def sdpa_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return F.scaled_dot_product_attention(q, k, v, is_causal=True)


ATTENTION = {"sdpa": sdpa_attention, "explicit": explicit_attention}


def _qkv(batch: int, heads: int, seq: int, head_dim: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return [torch.randn(batch, heads, seq, head_dim, generator=gen, requires_grad=True) for _ in range(3)]


def _attention_step(kind: str, shape: tuple[int, int, int, int]) -> None:
    ATTENTION[kind](*_qkv(*shape)).sum().backward()


def _peak_rss_child(kind: str, shape: tuple[int, int, int, int], out) -> None:
    """In a fresh process: resident memory high-water mark minus the resident memory before the step, in bytes
    (Linux /proc/self/status VmHWM, VmRSS)."""
    torch.set_num_threads(1)
    _attention_step(kind, (1, 1, 8, 8))  # load the kernels before the baseline
    before = _proc_status_bytes("VmRSS")
    _attention_step(kind, shape)
    out.put(_proc_status_bytes("VmHWM") - before)


def _proc_status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_memory(kind: str, shape: tuple[int, int, int, int]) -> int:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_peak_rss_child, args=(kind, shape, out))
    proc.start()
    value = out.get()
    proc.join()
    return value


def claim_attention(args: argparse.Namespace) -> None:
    batch, heads, head_dim = 4, 8, 64
    print("| seq | SDPA ms | explicit ms | speed-up | SDPA peak MiB | explicit peak MiB | scores B·H·S²·4 B (MiB) |")
    print("|----:|--------:|------------:|---------:|--------------:|------------------:|------------------------:|")
    for seq in (256, 512, 1024, 2048):
        shape = (batch, heads, seq, head_dim)
        q, k, v = _qkv(*shape)
        torch.testing.assert_close(sdpa_attention(q, k, v), explicit_attention(q, k, v), rtol=1e-4, atol=1e-5)
        times = {kind: median_s(lambda kind=kind: _attention_step(kind, shape), args.repeats, cpu_device())
                 for kind in ATTENTION}
        memory = {kind: peak_memory(kind, shape) for kind in ATTENTION}
        print(f"| {seq} | {times['sdpa'] * 1e3:.1f} | {times['explicit'] * 1e3:.1f} | "
              f"{times['explicit'] / times['sdpa']:.2f}x | {memory['sdpa'] / 2**20:.0f} | "
              f"{memory['explicit'] / 2**20:.0f} | {batch * heads * seq * seq * 4 / 2**20:.0f} |")


# ---------------------------------------------------------------- MLP compute
def claim_mlp(args: argparse.Namespace) -> None:
    config = ComplexityConfig(vocab_size=32000, hidden_size=512, intermediate_size=2048, num_attention_heads=8,
                              num_key_value_heads=2, num_experts=4)
    dense, routed = SwiGLUMLP(config), TokenRoutedMLP(config)
    for p in [*dense.parameters(), *routed.parameters()]:
        torch.nn.init.normal_(p, std=0.02)
    tokens = 8 * 512
    x = torch.randn(8, 512, 512, requires_grad=True)
    ids = torch.randint(0, config.vocab_size, (8, 512), generator=torch.Generator().manual_seed(0))
    runs = {"dense SwiGLU (width 2048)": lambda: dense(x).sum().backward(),
            "token-routed (4 experts x 512)": lambda: routed(x, ids).sum().backward()}
    print("| MLP | params | fwd FLOPs/token | fwd+bwd FLOPs/token | share of dense | ms fwd+bwd (8x512 tokens) |")
    print("|-----|-------:|----------------:|--------------------:|---------------:|--------------------------:|")
    dense_flops = None
    for (name, run), module in zip(runs.items(), (dense, routed)):
        with FlopCounter() as counter:
            run()
        counts = counter.counts
        total = counts.matmul()
        dense_flops = dense_flops or total
        seconds = median_s(run, args.repeats, cpu_device())
        print(f"| {name} | {sum(p.numel() for p in module.parameters()):,} | "
              f"{counts.matmul('forward') // tokens:,} | {total // tokens:,} | {total / dense_flops:.0%} | "
              f"{seconds * 1e3:.1f} |")


# ---------------------------------------------------------------- training claims
def _prepare(args: argparse.Namespace) -> tuple[Path, Path]:
    """Train the tokenizer and build the token file once; each run copies the token file."""
    work = Path(args.work_dir)
    work.mkdir(parents=True, exist_ok=True)
    tokenizer_path = work / "tokenizer.json"
    files = resolve_text_files(args.data)
    if not tokenizer_path.is_file():
        save_tokenizer(train_tokenizer(files, args.vocab_size), tokenizer_path)
    build_token_file(files, load_tokenizer(tokenizer_path), work / "data")
    return work, tokenizer_path


def _run(args, work: Path, tokenizer: Path, name: str, model: dict, **overrides) -> dict:
    """Train one model from scratch (a fresh run directory); returns its losses, or where it diverged."""
    out = work / name
    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(work / "data", out / "data")
    config = out / "model.json"
    config.write_text(json.dumps(model))
    settings = dict(data=args.data, output_dir=str(out), config=str(config), tokenizer=str(tokenizer),
                    seq_len=128, micro_batch_size=8, max_steps=args.steps, warmup_steps=args.steps // 10,
                    eval_interval=args.steps, save_interval=args.steps, eval_batches=8, precision="fp32",
                    seed=args.seed, progress=False)
    try:
        result = train(TrainConfig(**{**settings, **overrides}))
    except NonFiniteLossError as err:
        return {"losses": {}, "eval": math.nan, "diverged": str(err).split(" — ")[0]}
    return {"losses": result.losses, "eval": result.eval_losses[args.steps], "diverged": None}


def loss_spikes(losses: list[float], window: int = 10, ratio: float = 1.2) -> int:
    """Steps whose loss exceeds `ratio` × the median of the `window` steps before them."""
    return sum(losses[t] > ratio * statistics.median(losses[t - window:t]) for t in range(window, len(losses)))


class MaxLogitRecorder:
    """While active, wraps F.scaled_dot_product_attention and records, for every call made with autograd on
    (training, not evaluation), the largest pre-softmax logit q·k/√d over heads and causal pairs."""

    def __init__(self) -> None:
        self.per_call: list[float] = []
        self._original: Callable | None = None

    def per_step(self, layers: int) -> list[float]:
        """Maxima over each training forward (one forward of `layers` attention calls per step)."""
        return [max(self.per_call[i:i + layers]) for i in range(0, len(self.per_call), layers)]

    def __enter__(self) -> MaxLogitRecorder:
        original = self._original = F.scaled_dot_product_attention

        def recording(q, k, v, *args, enable_gqa=False, **kwargs):
            if torch.is_grad_enabled():
                with torch.no_grad():
                    keys = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1) if enable_gqa else k
                    logits = q @ keys.transpose(-2, -1) / math.sqrt(q.shape[-1])
                    future = torch.ones(logits.shape[-2:], dtype=torch.bool).triu(1)
                    self.per_call.append(float(logits.masked_fill(future, -math.inf).max()))
            return original(q, k, v, *args, enable_gqa=enable_gqa, **kwargs)

        F.scaled_dot_product_attention = recording
        return self

    def __exit__(self, *exc) -> None:
        F.scaled_dot_product_attention = self._original


def claim_qk_norm(args: argparse.Namespace) -> None:
    work, tokenizer = _prepare(args)
    print("| QK-norm | peak lr | max attention logit: step 1 → largest in run | loss spikes (> 1.2 × median of "
          "the previous 10 steps) | final train loss | held-out loss |")
    print("|---|---:|---|---:|---:|---:|")
    for lr in args.qk_lrs:
        for qk_norm in (True, False):
            with MaxLogitRecorder() as recorder:
                run = _run(args, work, tokenizer, f"qk{int(qk_norm)}-lr{lr:g}",
                           {**SMALL_MODEL, "intermediate_size": 1536, "use_qk_norm": qk_norm}, lr=lr)
            losses = list(run["losses"].values())
            logits = recorder.per_step(SMALL_MODEL["num_hidden_layers"])
            final = run["diverged"] or f"{losses[-1]:.3f}"
            print(f"| {'on' if qk_norm else 'off'} | {lr:g} | {logits[0]:.1f} → {max(logits):.1f} | "
                  f"{loss_spikes(losses)} | {final} | {run['eval']:.3f} |")


def claim_routed_vs_dense(args: argparse.Namespace) -> None:
    work, tokenizer = _prepare(args)
    width = 384  # one expert; 4 experts = 1536
    variants = {
        "token-routed, range (4 x 384)": dict(intermediate_size=4 * width, routing="range"),
        "token-routed, modulo (4 x 384)": dict(intermediate_size=4 * width, routing="modulo"),
        "dense 384 (equal active compute)": dict(intermediate_size=width, use_token_routed_mlp=False),
        "dense 1536 (equal parameters)": dict(intermediate_size=4 * width, use_token_routed_mlp=False),
    }
    tokens = args.steps * 8 * 128
    print(f"| MLP | held-out loss | perplexity | after {tokens:,} tokens |")
    print("|---|---:|---:|---|")
    for name, mlp in variants.items():
        run = _run(args, work, tokenizer, name.split(" (")[0].replace(", ", "-").replace(" ", "-"),
                   {**SMALL_MODEL, **mlp}, lr=args.lr)
        print(f"| {name} | {run['eval']:.3f} | {math.exp(run['eval']):.1f} | {run['diverged'] or ''} |")


CLAIMS = {"attention": claim_attention, "mlp": claim_mlp, "qk-norm": claim_qk_norm,
          "routed-vs-dense": claim_routed_vs_dense}


def main() -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("claim", choices=[*CLAIMS, "all"], nargs="?", default="all")
    p.add_argument("--data", nargs="+", default=[str(f) for f in sorted(stdlib.glob("*.py"))])
    p.add_argument("--work-dir", default="seed_claims_runs")
    p.add_argument("--vocab-size", type=int, default=4096)
    p.add_argument("--steps", type=int, default=300, help="optimizer steps of each training run (8 x 128 tokens)")
    p.add_argument("--lr", type=float, default=2e-3, help="peak lr of the routed-vs-dense runs")
    p.add_argument("--qk-lrs", type=float, nargs="+", default=[2e-3, 3e-2], help="peak lrs of the QK-norm runs")
    p.add_argument("--seed", type=int, default=0, help="seed of the training runs (initialisation, data order)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for name, claim in CLAIMS.items():
        if args.claim in (name, "all"):
            print(f"\n## {name}\n")
            claim(args)


if __name__ == "__main__":
    main()
