"""The benchmark harness behind `python -m profiler measure`: time a real model the way a benchmark should.

Warm-up calls, then N timed repeats that each end after the device has finished (`profiler.measuring`); mean ± std
and p50/p95/p99; tokens/s and sequences/s; an optional batch sweep (the latency-vs-throughput curve, where a batch
that runs out of memory is recorded, not fatal); peak memory in a separate untimed pass; model size; an energy
estimate (time × the hardware profile's power); and a per-module breakdown of one forward pass. The JSON output
(`--format json`) is a stable interface documented in docs/measuring.md.

Modes: `forward` (no autograd), `train` (forward with the next-token loss, backward, AdamW step), `generate`
(greedy: prefill latency and decode tokens/s).
"""

from __future__ import annotations

import logging
import os
import platform
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from complexity.inputs import require_int
from profiler.formulas.memory import predicted_peak_bytes, weight_bytes
from profiler.formulas.params import count_params
from profiler.hardware import HardwareProfile, load_profile
from profiler.measuring.device import TORCH_DTYPES, Device, get_device, is_out_of_memory, release_cached_memory
from profiler.measuring.timer import time_callable, tqdm_disable
from profiler.source import ModelSource
from profiler.workload import MEASURED_MODES

log = logging.getLogger(__name__)
# Bytes per parameter when the weights are stored in a dtype (int8: one byte, scales not counted).
SIZE_DTYPES = {"float32": 4, "bfloat16": 2, "int8": 1}
# Default profile per device for the energy estimate: the CPU example; GPUs matched by name.
# GPU names as torch reports them ("NVIDIA H100 PCIe", "NVIDIA H100 80GB HBM3", "NVIDIA A100-SXM4-40GB") -> the
# shipped profile: the first entry whose words all occur in the name (upper-cased), so the specific ones come first.
_GPU_PROFILES = ((("H200",), "nvidia_h200"), (("H100", "PCIE"), "nvidia_h100_pcie"), (("H100",), "nvidia_h100_sxm"),
                 (("A100", "PCIE", "40GB"), "nvidia_a100_pcie_40gb"), (("A100", "40GB"), "nvidia_a100_40gb"),
                 (("A100",), "nvidia_a100"))

ASSUMPTIONS = (
    "Each timing starts on an idle device and ends after it has finished (CUDA/MPS: device events, then a "
    "synchronize; CPU: perf_counter); warm-up calls are not timed.",
    "Percentiles interpolate linearly between closest ranks (numpy 'linear'); with few repeats p95/p99 approach "
    "the maximum.",
    "tokens/s = batch x seq_len / mean step time; generate: decode tokens/s = batch x new tokens / (mean generate "
    "time - mean prefill time), prefill = one forward over the prompt plus choosing the first token.",
    "Peak memory comes from one extra untimed call (the CPU tracker slows every op); see memory.method.",
    "Energy = mean time x the hardware profile's power_watts: an assumed sustained power, not a measurement.",
    "The module breakdown times one forward pass with a synchronize at every module boundary (which adds "
    "overhead); self time excludes child modules; time outside the forward (backward, optimizer) is one row.",
)


# ---------------------------------------------------------------------------------------------- the model
def available_memory_bytes(device: Device) -> int | None:
    """Memory this run can still take on `device`, in bytes: CUDA's free memory on the GPU
    (`torch.cuda.mem_get_info`); on the CPU Linux's MemAvailable (/proc/meminfo: free memory plus reclaimable
    caches), else the free physical pages (`os.sysconf`); MPS (unified memory): torch's recommended working set
    less what its driver holds. None when the platform does not say."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device.torch_device)[0]
    if device.type == "mps":
        return torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory()
    try:
        lines = Path("/proc/meminfo").read_text(encoding="ascii").splitlines()
        kib = next((int(line.split()[1]) for line in lines if line.startswith("MemAvailable:")), None)
        if kib is not None:
            return kib * 1024
    except (OSError, ValueError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError):  # a platform without these sysconf names
        return None


def require_memory(source: ModelSource, mode: str, batch: int, seq_len: int, dtype: str, device: Device,
                   new_tokens: int) -> int | None:
    """Refuse, before anything is built, a run whose predicted need is over the memory `device` has available:
    the larger of the call's predicted peak (`memory.predicted_peak_bytes`) and building the model (its float32
    weights, plus the copy in `dtype` that `load_model` converts them to). Returns the bytes available (None:
    unknown), against which the sweep refuses larger batches."""
    available = available_memory_bytes(device)
    if available is None:
        return None
    params = count_params(source.arch).total
    build = weight_bytes(params, "float32") + (weight_bytes(params, dtype) if dtype != "float32" else 0)
    need = max(predicted_peak_bytes(source.arch, mode, batch, seq_len, dtype, device.type, new_tokens), build)
    if need > available:
        raise ValueError(f"{source.arch.name} does not fit: {mode} at batch {batch} x seq_len {seq_len} in {dtype} "
                         f"needs {need:,} bytes ({need / 2**30:,.2f} GiB, predicted peak or float32 build) but "
                         f"{device.torch_device} has {available:,} bytes ({available / 2**30:,.2f} GiB) available; "
                         f"nothing was built")
    return available


def load_model(source: ModelSource, device: Device, dtype: str) -> nn.Module:
    """The real, randomly initialised module of `source` (`ModelSource.build`) on `device`, in `dtype`."""
    if dtype not in TORCH_DTYPES:
        raise ValueError(f"dtype={dtype!r} must be one of {sorted(TORCH_DTYPES)}")
    return source.build(str(device.torch_device)).to(TORCH_DTYPES[dtype])


def model_size(module: nn.Module) -> dict[str, Any]:
    """Distinct parameters (a tied matrix once) and their bytes if stored in fp32, bf16 or int8."""
    params = sum(p.numel() for p in module.parameters())
    return {"params": params, "bytes": {name: params * size for name, size in SIZE_DTYPES.items()}}


def make_step(module: nn.Module, mode: str, input_ids: torch.Tensor, new_tokens: int = 0,
              zoo: bool = True, autocast: str | None = None) -> tuple[Callable[[], Any], Callable[[], Any] | None]:
    """The call to time for `mode`, and for generate also the prefill-only call (`zoo`: the module is a zoo
    model, whose `generate` takes no HF generation arguments).

    forward: logits under torch.no_grad in eval mode. train: zero the gradients, loss = next-token cross-entropy
    with labels = input_ids, backward, AdamW step (lr 1e-4; the optimizer state is created by the first, warm-up
    call); with `autocast` (bfloat16 or float16) the forward runs under torch.autocast on the input's device.
    generate: greedy decoding of `new_tokens` tokens with a KV cache; prefill decodes one."""
    if mode == "train":
        module.train()
        optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4)
        if autocast is not None and autocast not in ("bfloat16", "float16"):
            raise ValueError(f"autocast={autocast!r} must be bfloat16, float16 or None")
        context = torch.autocast(input_ids.device.type, dtype=getattr(torch, autocast or "bfloat16"),
                                 enabled=autocast is not None)

        def train_step() -> None:
            optimizer.zero_grad(set_to_none=True)
            with context:
                loss = module(input_ids, labels=input_ids).loss
            loss.backward()
            optimizer.step()
        return train_step, None
    module.eval()
    if mode == "forward":
        return torch.no_grad()(lambda: module(input_ids)), None
    if mode != "generate":
        raise ValueError(f"mode={mode!r} must be one of {list(MEASURED_MODES)}")
    require_int("new_tokens", new_tokens, 1)

    def generate(n: int) -> Callable[[], Any]:
        if zoo:  # greedy, no eos: exactly n tokens
            return torch.no_grad()(lambda: module.generate(input_ids, max_new_tokens=n))
        return torch.no_grad()(lambda: module.generate(input_ids, max_new_tokens=n, min_new_tokens=n,
                                                       do_sample=False, pad_token_id=0))
    return generate(new_tokens), generate(1)


def decode_step_timing(generate: dict[str, float], prefill: dict[str, float], new_tokens: int,
                       keys: tuple[str, ...]) -> dict[str, float]:
    """Seconds per decoding step from timing dicts (TimingStats.to_dict keys, e.g. "min_s") of `generate` with
    new_tokens + 1 tokens and of the prefill-only call: (generate − prefill) ÷ new_tokens under each key. Raises
    when a difference is not positive (noise larger than the decoding: time more tokens or repeats)."""
    require_int("new_tokens", new_tokens, 1)
    decode = {key: (generate[key] - prefill[key]) / new_tokens for key in keys}
    bad = {key: value for key, value in decode.items() if value <= 0}
    if bad:
        raise ValueError(f"decode time per token {bad} is not positive: generate of {new_tokens + 1} tokens took "
                         f"no longer than the prefill alone; time more new tokens or repeats")
    return decode


# ---------------------------------------------------------------------------------------------- one batch
def measure_batch(module: nn.Module, source: ModelSource, mode: str, device: Device, batch: int, seq_len: int,
                  new_tokens: int, warmup: int, repeats: int, power_watts: float | None, seed: int = 0,
                  progress: bool | None = False) -> dict[str, Any]:
    """Timing, throughput, peak memory and energy of one batch size of `source`'s `module` (raises on
    out-of-memory)."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(source.arch.vocab_size, (batch, seq_len), generator=generator).to(device.torch_device)
    step, prefill = make_step(module, mode, input_ids, new_tokens, source.is_zoo)
    timing = time_callable(step, device, warmup, repeats, progress=progress, desc=f"{mode} batch {batch}")
    result: dict[str, Any] = {"batch": batch, "status": "ok", "error": None, "timing": timing.to_dict()}
    if mode == "generate":
        prefill_timing = time_callable(prefill, device, warmup, repeats, progress=progress, desc=f"prefill b{batch}")
        decode_s = max(timing.mean - prefill_timing.mean, 0.0)
        result["prefill"] = prefill_timing.to_dict()
        result["prefill_tokens_per_s"] = batch * seq_len / prefill_timing.mean
        result["decode_s_per_token"] = decode_s / new_tokens
        result["decode_tokens_per_s"] = batch * new_tokens / decode_s if decode_s > 0 else None
        result["tokens_per_s"] = result["decode_tokens_per_s"]
    else:
        result["tokens_per_s"] = batch * seq_len / timing.mean
    result["sequences_per_s"] = batch / timing.mean
    with device.track_memory() as memory:
        step()
    result["memory"] = memory.to_dict()
    tokens = batch * (new_tokens if mode == "generate" else seq_len)
    result["energy_j"] = None if power_watts is None else timing.mean * power_watts
    result["energy_j_per_token"] = None if power_watts is None else timing.mean * power_watts / tokens
    return result


def sweep(run_batch: Callable[[int], dict[str, Any]], batches: list[int], device: Device,
          progress: bool | None = False, refuse: Callable[[int], str | None] | None = None) -> list[dict[str, Any]]:
    """`run_batch` for each batch size in turn. A batch `refuse` gives a reason for is recorded as status
    "refused" and not run (the planner: its predicted peak is over the memory limit). An out-of-memory failure is
    recorded as status "oom" with its message, the allocator's cache is released, and larger batches are recorded
    as "skipped" (they would fail too); the sweep itself never fails on memory. Other errors propagate."""
    results: list[dict[str, Any]] = []
    failed_at: int | None = None
    for batch in tqdm(batches, desc="batch sweep", disable=tqdm_disable(progress if len(batches) > 1 else False)):
        reason = refuse(batch) if refuse is not None else None
        if reason is not None:
            results.append({"batch": batch, "status": "refused", "error": reason})
            continue
        if failed_at is not None and batch >= failed_at:
            results.append({"batch": batch, "status": "skipped", "error": f"batch {failed_at} ran out of memory"})
            continue
        try:
            results.append(run_batch(batch))
        except (RuntimeError, torch.OutOfMemoryError) as err:
            if not is_out_of_memory(err):
                raise
            log.warning("batch %d ran out of memory: %s", batch, str(err).splitlines()[0])
            release_cached_memory(device)
            failed_at = batch if failed_at is None else min(failed_at, batch)
            results.append({"batch": batch, "status": "oom", "error": str(err).splitlines()[0]})
    return results


# ---------------------------------------------------------------------------------------------- breakdown
_LAYER_INDEX = re.compile(r"\.\d+(?=\.|$)")


def module_breakdown(module: nn.Module, call: Callable[[], Any], device: Device, top: int = 10) -> dict[str, Any]:
    """Self time per module during one `call`, summed over modules that differ only in a layer index
    (`model.layers.*.mlp`), the `top` largest first.

    Hooks before and after every module's forward synchronise the device and read its clock, so a module's
    inclusive time covers exactly its own kernels; self time = inclusive - the inclusive time of the submodules
    that ran inside it (containers like nn.ModuleList, never called themselves, are looked through).
    The root's self time holds ops outside every child (e.g. the loss); `(outside forward)` is the rest of the
    call (backward and optimizer step in train mode, the decoding loop's glue in generate mode)."""
    names = {m: name for name, m in module.named_modules()}
    children = {name: [names[c] for c in m.children()] for m, name in names.items()}
    inclusive: dict[str, float] = defaultdict(float)
    calls: Counter[str] = Counter()
    starts: dict[str, list[float]] = defaultdict(list)

    def before(mod: nn.Module, *_: Any) -> None:
        device.synchronize()
        starts[names[mod]].append(device.clock())

    def after(mod: nn.Module, *_: Any) -> None:
        device.synchronize()
        name = names[mod]
        inclusive[name] += device.clock() - starts[name].pop()
        calls[name] += 1

    handles = [h for m in names for h in (m.register_forward_pre_hook(before), m.register_forward_hook(after))]
    try:
        total = device.time_call(call)
    finally:
        for handle in handles:
            handle.remove()

    def called_below(name: str) -> list[str]:
        """The nearest descendants that ran; containers never called (nn.ModuleList) are looked through."""
        return [d for c in children[name] for d in ([c] if c in inclusive else called_below(c))]

    self_time: dict[str, float] = defaultdict(float)
    group_calls: Counter[str] = Counter()
    for name, seconds in inclusive.items():
        group = _LAYER_INDEX.sub(".*", name) or "(model)"
        self_time[group] += seconds - sum(inclusive[c] for c in called_below(name))
        group_calls[group] += calls[name]
    self_time["(outside forward)"] = max(total - inclusive.get("", 0.0), 0.0)
    rows = sorted(self_time.items(), key=lambda item: -item[1])[:top]
    return {"total_s": total, "modules": [{"module": name, "self_s": s, "share": s / total if total else 0.0,
                                           "calls": group_calls.get(name, 0)} for name, s in rows]}


# ---------------------------------------------------------------------------------------------- the report
def environment(device: Device, dtype: str) -> dict[str, Any]:
    return {"torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(), "device": device.describe(),
            "threads": torch.get_num_threads(), "dtype": dtype}


def gpu_profile(gpu_name: str) -> str | None:
    """The shipped profile of a CUDA GPU by its name (`_GPU_PROFILES`), or None for a GPU without one."""
    name = gpu_name.upper()
    return next((profile for words, profile in _GPU_PROFILES if all(word in name for word in words)), None)


def default_profile(device: Device) -> str | None:
    """The shipped profile for this device's energy estimate: cpu_generic on CPU, by GPU name on CUDA, else None."""
    if device.type == "cpu":
        return "cpu_generic"
    if device.type == "cuda":
        return gpu_profile(torch.cuda.get_device_name(device.torch_device))
    return None


def measure(source: ModelSource, mode: str = "forward", batches: list[int] | None = None, seq_len: int = 128,
            new_tokens: int = 32, device: str = "auto", dtype: str = "float32", warmup: int = 2, repeats: int = 10,
            hardware: str | None = None, top: int = 10, seed: int = 0, progress: bool | None = False,
            memory_limit: int | None = None) -> dict[str, Any]:
    """The whole `measure` report as plain data (the `--format json` document), at torch's current thread
    count (the command sets it). A run that cannot fit in the memory available is refused before the model is
    built (`require_memory`); a larger batch of the sweep whose predicted peak (`memory.predicted_peak_bytes`) is
    over the memory available, or over `memory_limit` (bytes), is refused before it runs."""
    if mode not in MEASURED_MODES:
        raise ValueError(f"mode={mode!r} must be one of {list(MEASURED_MODES)}")
    require_int("seq_len", seq_len, 1)
    batches = batches or [1]
    dev = get_device(device)
    available = require_memory(source, mode, min(batches), seq_len, dtype, dev, new_tokens)
    torch.manual_seed(seed)
    module = load_model(source, dev, dtype)
    arch = source.arch
    profile_name = hardware or default_profile(dev)
    profile: HardwareProfile | None = load_profile(profile_name) if profile_name else None
    power = profile.power_watts if profile else None

    def predicted(batch: int) -> int:
        return predicted_peak_bytes(arch, mode, batch, seq_len, dtype, dev.type, new_tokens)

    def run_batch(batch: int) -> dict[str, Any]:
        result = measure_batch(module, source, mode, dev, batch, seq_len, new_tokens, warmup, repeats, power, seed,
                               progress)
        return {**result, "predicted_peak_bytes": predicted(batch)}

    def refuse(batch: int) -> str | None:
        peak = predicted(batch)
        if memory_limit is not None and peak > memory_limit:
            return f"predicted peak {peak:,} bytes is over the memory limit of {memory_limit:,} bytes"
        if available is not None and peak > available:  # checked once, before the model was built
            return f"predicted peak {peak:,} bytes is over the {available:,} bytes available on {dev.torch_device}"
        return None

    runs = sweep(run_batch, batches, dev, progress, refuse)
    report: dict[str, Any] = {
        "model": arch.name, "model_type": arch.model_type, "mode": mode,
        "workload": {"batches": batches, "seq_len": seq_len, "new_tokens": new_tokens if mode == "generate" else None,
                     "dtype": dtype, "warmup": warmup, "repeats": repeats, "seed": seed},
        "environment": environment(dev, dtype),
        "model_size": model_size(module),
        "hardware_profile": profile.name if profile else None, "power_watts": power,
        "runs": runs, "breakdown": None, "assumptions": list(ASSUMPTIONS),
    }
    last_ok = next((r["batch"] for r in reversed(runs) if r["status"] == "ok"), None)
    if top > 0 and last_ok is not None:
        ids = torch.randint(arch.vocab_size, (last_ok, seq_len), generator=torch.Generator().manual_seed(seed))
        step, _ = make_step(module, mode, ids.to(dev.torch_device), new_tokens, source.is_zoo)
        step()  # warm-up: a fresh optimizer allocates its state on the first step
        report["breakdown"] = {"batch": last_ok, **module_breakdown(module, step, dev, top)}
    return report
