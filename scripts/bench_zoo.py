"""Benchmarks of the model zoo, each a ratio against a baseline timed in the same run (CPU, fp32 by default).

    python scripts/bench_zoo.py [mlp|train|decode|all] [--repeats N] [--threads T] [--clock wall|cpu]
                                [--layers L] [--new-tokens N] [--calibration PROFILE.json] [--no-compile]

mlp     TokenRoutedMLP vs SwiGLUMLP of the same total parameters, forward + backward, 8x512 tokens, hidden 512.
train   ComplexityForCausalLM vs transformers' LlamaForCausalLM with the same hidden size, layers, heads, KV
        heads and sequence; Llama's dense MLP is as wide as one of our experts, so both do the same matmul FLOPs
        per token. Achieved FLOP/s of a training step (forward + backward + fused AdamW), eager and under
        torch.compile (ours with fullgraph=True), every variant timed in turn (ABCD ABCD ...).
decode  greedy decoding tokens/s at batch 1 and 8 after a 32-token prompt: ours with the dynamic cache, the static
        cache and the static cache with a compiled decode step (`generate(compile=True)`), against transformers'
        `generate` with its dynamic cache, its static cache (`cache_implementation="static"`) and its static cache
        compiled (`CompileConfig`, the forward under torch.compile; transformers compiles on GPUs only unless told
        to). Each is also set against the bandwidth roofline: a decode step reads every weight it uses once, so
        tokens/s <= batch x bandwidth / (weight bytes read per step). Weight bytes count the attention, norms, LM head
        and min(batch, experts) experts of each MLP (one expert at batch 1), not the KV cache; the bandwidth is the
        element-wise bandwidth of a `profiler calibrate` profile given with --calibration, else a large copy
        measured here (bytes read + written per second).

Times are medians of `--repeats` runs after warm-up (which includes compilation). FLOPs: 2 per multiply-add, dense
attention convention. Compilation takes minutes on a CPU: `all` at the defaults runs in about ten.
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


def _shapes(layers: int) -> dict:
    return dict(vocab_size=32000, hidden_size=512, num_hidden_layers=layers, num_attention_heads=8,
                num_key_value_heads=2, max_position_embeddings=2048, rms_norm_eps=1e-6, rope_theta=10000.0,
                tie_word_embeddings=True)


def _models(layers: int) -> tuple[ComplexityForCausalLM, torch.nn.Module, ComplexityConfig]:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    ours_config = ComplexityConfig(**_shapes(layers), intermediate_size=2048, num_experts=4)
    ours = ComplexityForCausalLM(ours_config)
    ours.init_weights()
    llama = LlamaForCausalLM(LlamaConfig(**_shapes(layers), intermediate_size=ours_config.expert_intermediate_size,
                                         attn_implementation="sdpa"))
    return ours, llama, ours_config


def _interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int, device: Device) -> dict[str, float]:
    """Median seconds of each function, the functions called in turn (ABC ABC ...) so that load from other
    processes hits all alike; each is called twice first (warm-up, compilation)."""
    for fn in fns.values():
        fn(), fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            times[name].append(device.time_call(fn))
    return {name: statistics.median(t) for name, t in times.items()}


def bench_train(repeats: int, device: Device, layers: int, compile_models: bool, batch: int = 8,
                seq: int = 256) -> None:
    ours, llama, config = _models(layers)
    ids = torch.randint(0, config.vocab_size, (batch, seq))
    variants = {"llama eager": (llama, llama), "ours eager": (ours, ours)}
    if compile_models:
        # transformers' Llama is not promised to trace in one graph with labels; ours is (fullgraph=True).
        variants["llama compiled"] = (llama, torch.compile(llama))
        variants["ours compiled"] = (ours, torch.compile(ours, fullgraph=True))
    optimizers = {id(m): torch.optim.AdamW(m.parameters(), lr=1e-4, fused=True) for m in (ours, llama)}
    steps = {}
    for name, (model, forward) in variants.items():
        model.train()

        def step(forward=forward, optimizer=optimizers[id(model)]):
            loss = forward(input_ids=ids, labels=ids).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        steps[name] = step
    seconds = _interleaved_medians(steps, repeats, device)
    # forward + backward FLOPs (2 per multiply-add, dense attention), from the analytic profiler; the same for both
    # models (Llama's MLP is one expert wide)
    flops = train_step_flops(from_complexity_config(config), batch, seq, convention="dense")
    rate = {name: flops / t for name, t in seconds.items()}
    print(f"train  batch {batch} x seq {seq}, hidden 512, {layers} layers, fused AdamW, GFLOP/s (forward + backward "
          f"FLOPs / step time): " + " | ".join(f"{name} {r / 1e9:.1f}" for name, r in rate.items()))
    print(f"train  ours eager / llama eager {rate['ours eager'] / rate['llama eager']:.2f}x", end="")
    if compile_models:
        print(f" | ours compiled / ours eager {rate['ours compiled'] / rate['ours eager']:.2f}x | ours compiled / "
              f"llama compiled {rate['ours compiled'] / rate['llama compiled']:.2f}x", end="")
    print()


def copy_bandwidth(device: Device, size_bytes: int = 256 * 2**20, repeats: int = 5) -> float:
    """Bytes read + written per second by a copy of `size_bytes` (larger than the caches): 2 x size / time."""
    src = torch.ones(size_bytes // 4)
    dst = torch.empty_like(src)
    return 2 * size_bytes / median_s(lambda: dst.copy_(src), repeats, device)


def decode_weight_bytes(model: torch.nn.Module, batch: int, num_experts: int | None = None) -> int:
    """Bytes of the weights one greedy decode step reads: everything but the embedding table (one row per token;
    read in full as the tied LM head), and of a token-routed MLP with `num_experts` experts min(batch, experts)."""
    total = 0
    for name, p in model.named_parameters():  # a tied LM head is the embedding: named once
        share = min(batch, num_experts) / num_experts if num_experts and ".mlp." in name else 1
        total += int(p.numel() * p.element_size() * share)
    return total


@torch.no_grad()
def bench_decode(repeats: int, device: Device, layers: int, compile_models: bool, calibration: str | None,
                 new_tokens: int, prompt: int = 32) -> None:
    from transformers import CompileConfig

    ours, llama, config = _models(layers)
    ours.eval(), llama.eval()
    if calibration is not None:
        from profiler.hardware import load_profile

        bandwidth, source = load_profile(calibration).elementwise_bytes_per_s("likely"), f"calibration {calibration}"
    else:
        bandwidth, source = copy_bandwidth(device), "a 256 MiB copy measured now"
    print(f"decode bandwidth {bandwidth / 1e9:.1f} GB/s (read + written) from {source}")
    hf_compile = CompileConfig(fullgraph=True, mode="default")
    hf_compile._compile_all_devices = True  # transformers' own switch to compile on a CPU
    for batch in (1, 8):
        ids = torch.randint(0, config.vocab_size, (batch, prompt))

        def hf(**kwargs):
            return lambda: llama.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                          min_new_tokens=new_tokens, do_sample=False, pad_token_id=0, **kwargs)

        variants = {
            "transformers dynamic": hf(),
            "transformers static": hf(cache_implementation="static", disable_compile=True),
            "ours dynamic": lambda: ours.generate(ids, new_tokens),
            "ours static": lambda: ours.generate(ids, new_tokens, cache_implementation="static"),
        }
        if compile_models:
            variants["transformers static compiled"] = hf(cache_implementation="static", compile_config=hf_compile)
            variants["ours static compiled"] = lambda: ours.generate(ids, new_tokens, cache_implementation="static",
                                                                     compile=True)
        seconds = _interleaved_medians(variants, repeats, device)
        rate = {name: batch * new_tokens / t for name, t in seconds.items()}
        roofline = {"ours": batch * bandwidth / decode_weight_bytes(ours, batch, config.num_experts),
                    "transformers": batch * bandwidth / decode_weight_bytes(llama, batch)}
        print(f"decode batch {batch}, {new_tokens} new tokens after {prompt}, tokens/s (fraction of the bandwidth "
              "roofline): " + " | ".join(f"{name} {r:.0f} ({r / roofline[name.split()[0]]:.0%})"
                                         for name, r in rate.items()))
        line = (f"decode batch {batch} ratios: ours dynamic / transformers dynamic "
                f"{rate['ours dynamic'] / rate['transformers dynamic']:.2f}x | ours static / transformers static "
                f"{rate['ours static'] / rate['transformers static']:.2f}x")
        if compile_models:
            line += (f" | ours compiled / ours dynamic {rate['ours static compiled'] / rate['ours dynamic']:.2f}x | "
                     f"ours compiled / transformers compiled "
                     f"{rate['ours static compiled'] / rate['transformers static compiled']:.2f}x")
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", nargs="?", default="all", choices=["mlp", "train", "decode", "all"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--clock", choices=list(CLOCKS), default="wall",
                        help="wall: elapsed time; cpu: this process's CPU time, steadier on a shared machine "
                             "(use with --threads 1, where it equals compute time)")
    parser.add_argument("--layers", type=int, default=4, help="decoder layers of the train and decode models")
    parser.add_argument("--new-tokens", type=int, default=64, help="tokens generated per decode run")
    parser.add_argument("--calibration", default=None,
                        help="a hardware profile from `python -m profiler calibrate` (path or shipped name): its "
                             "element-wise bandwidth is the roofline's; default: a copy measured here")
    parser.add_argument("--no-compile", action="store_true", help="eager variants only (no torch.compile)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU fp32, {args.clock} clock")
    device = cpu_device(args.clock)
    if args.bench in ("mlp", "all"):
        bench_mlp(args.repeats, device)
    if args.bench in ("train", "all"):
        bench_train(args.repeats, device, args.layers, not args.no_compile)
    if args.bench in ("decode", "all"):
        bench_decode(args.repeats, device, args.layers, not args.no_compile, args.calibration, args.new_tokens)


if __name__ == "__main__":
    main()
