"""Benchmarks of the model zoo, each a ratio against a baseline timed in the same run (CPU, fp32 by default).

    python scripts/bench_zoo.py [mlp|train|decode|all] [--repeats N] [--threads T] [--clock wall|cpu]

mlp     TokenRoutedMLP vs SwiGLUMLP of the same total parameters, forward + backward, 8x512 tokens, hidden 512.
train   ComplexityForCausalLM vs transformers' LlamaForCausalLM with the same hidden size, layers, heads, KV
        heads and sequence; Llama's dense MLP is as wide as one of our experts, so both do the same matmul FLOPs
        per token. Achieved FLOP/s of a training step (forward + backward + AdamW) is compared.
decode  greedy decoding tokens/s with our KV cache vs transformers' generate on the same shape, and our cached
        vs uncached (full recomputation every step) decoding at 256 new tokens.

Times are medians of `--repeats` runs after warm-up. FLOPs: 2 per multiply-add, dense attention convention.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from complexity import ComplexityConfig, ComplexityForCausalLM
from complexity.core.mlp import SwiGLUMLP
from complexity.core.token_routed_mlp import TokenRoutedMLP
from profiler.arch import from_complexity_config
from profiler.formulas.flops import train_step_flops
from profiler.measuring.device import CpuDevice, Device
from profiler.measuring.timer import time_callable

CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "cpu": time.process_time}


def cpu_device(clock: str = "wall") -> Device:
    """The CPU as the profiler's timer sees it, reading `clock` (see --clock)."""
    return CpuDevice(torch.device("cpu"), clock=CLOCKS[clock])


def median_s(fn: Callable[[], object], repeats: int, device: Device, warmup: int = 2) -> float:
    """Median seconds of `repeats` calls after `warmup`, through the profiler's timer (`time_callable`)."""
    return time_callable(fn, device, warmup, repeats).p50


def bench_mlp(repeats: int, device: Device) -> None:
    config = ComplexityConfig(vocab_size=32000, hidden_size=512, intermediate_size=2048, num_attention_heads=8,
                              num_key_value_heads=2, num_experts=4)
    dense, routed = SwiGLUMLP(config), TokenRoutedMLP(config)
    for p in [*dense.parameters(), *routed.parameters()]:
        torch.nn.init.normal_(p, std=0.02)
    assert sum(p.numel() for p in dense.parameters()) == sum(p.numel() for p in routed.parameters())
    x = torch.randn(8, 512, 512, requires_grad=True)
    ids = torch.randint(0, config.vocab_size, (8, 512))
    t_dense = median_s(lambda: dense(x).sum().backward(), repeats, device)
    t_routed = median_s(lambda: routed(x, ids).sum().backward(), repeats, device)
    print(f"mlp    SwiGLUMLP {t_dense * 1e3:.1f} ms | TokenRoutedMLP (4 experts, routing included) "
          f"{t_routed * 1e3:.1f} ms | speed-up {t_dense / t_routed:.2f}x (ideal 4x)")


def _shapes() -> dict:
    return dict(vocab_size=32000, hidden_size=512, num_hidden_layers=8, num_attention_heads=8, num_key_value_heads=2,
                max_position_embeddings=2048, rms_norm_eps=1e-6, rope_theta=10000.0, tie_word_embeddings=True)


def _models() -> tuple[ComplexityForCausalLM, torch.nn.Module, ComplexityConfig]:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    ours_config = ComplexityConfig(**_shapes(), intermediate_size=2048, num_experts=4)
    ours = ComplexityForCausalLM(ours_config)
    ours.init_weights()
    llama = LlamaForCausalLM(LlamaConfig(**_shapes(), intermediate_size=ours_config.expert_intermediate_size,
                                         attn_implementation="sdpa"))
    return ours, llama, ours_config


def bench_train(repeats: int, device: Device, batch: int = 8, seq: int = 256) -> None:
    """Steps of the two models alternate (ABAB...) so that load from other processes hits both alike."""
    ours, llama, config = _models()
    ids = torch.randint(0, config.vocab_size, (batch, seq))
    steps = {}
    for name, model in (("llama", llama), ("complexity", ours)):
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=True)

        def step(model=model, optimizer=optimizer):
            loss = model(input_ids=ids, labels=ids).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        step(), step()  # warm-up
        steps[name] = step
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            times[name].append(device.time_call(step))
    # forward + backward FLOPs (2 per multiply-add, dense attention), from the analytic profiler
    flops = train_step_flops(from_complexity_config(config), batch, seq, convention="dense")
    rate = {name: flops / statistics.median(t) for name, t in times.items()}
    print(f"train  batch {batch} x seq {seq}, hidden 512, 8 layers, fused AdamW: LlamaForCausalLM "
          f"{rate['llama'] / 1e9:.1f} GFLOP/s | ComplexityForCausalLM {rate['complexity'] / 1e9:.1f} GFLOP/s | "
          f"ratio {rate['complexity'] / rate['llama']:.2f}x")


@torch.no_grad()
def bench_decode(repeats: int, device: Device, new_tokens: int = 256, prompt: int = 32) -> None:
    ours, llama, config = _models()
    ours.eval(), llama.eval()
    ids = torch.randint(0, config.vocab_size, (1, prompt))

    def hf_generate():
        return llama.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                              min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)

    def uncached():
        seq = ids
        for _ in range(new_tokens):
            seq = torch.cat([seq, ours(seq).logits[:, -1:].argmax(-1)], dim=-1)
        return seq

    t_hf = median_s(hf_generate, repeats, device, warmup=1)
    t_ours = median_s(lambda: ours.generate(ids, new_tokens), repeats, device, warmup=1)
    t_uncached = median_s(uncached, max(1, repeats // 2), device, warmup=0)
    print(f"decode {new_tokens} new tokens after a {prompt}-token prompt: transformers generate "
          f"{new_tokens / t_hf:.0f} tok/s | ours (KV cache) {new_tokens / t_ours:.0f} tok/s | ratio {t_hf / t_ours:.2f}x "
          f"| ours uncached {new_tokens / t_uncached:.0f} tok/s | cache speed-up {t_uncached / t_ours:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", nargs="?", default="all", choices=["mlp", "train", "decode", "all"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="wall: elapsed time; cpu: this process's CPU time, steadier on a shared machine "
                             "(use with --threads 1, where it equals compute time)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU fp32, {args.clock} clock")
    for name, fn in (("mlp", bench_mlp), ("train", bench_train), ("decode", bench_decode)):
        if args.bench in (name, "all"):
            fn(args.repeats, cpu_device(args.clock))


if __name__ == "__main__":
    main()
