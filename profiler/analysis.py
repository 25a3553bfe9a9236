"""The analytic report of a model: exact parameters, FLOPs and memory from its `ArchSpec` alone, as plain data.

`analyze` is the document behind `python -m profiler analyze` (`--format json`, a stable interface documented in
docs/profiler.md); FLOPs and bytes are plain numbers. It allocates no tensor and imports no torch.
"""

from __future__ import annotations

from typing import Any

from complexity.inputs import require_int
from profiler.arch import ArchSpec
from profiler.formulas import flops as F
from profiler.formulas import memory as M
from profiler.formulas import quantization as Q
from profiler.formulas import scaling
from profiler.formulas.params import ParamCounts, count_params, router_bias_params

SCALING_SEQ_LENS = (512, 2048, 8192, 32768, 131072)

ASSUMPTIONS = (
    "FLOPs: 2 per multiply-add, matrix products only (norms, softmax, activations, RoPE not counted).",
    "Attention FLOPs in two conventions: dense = all S x S query-key pairs; causal = unmasked pairs only "
    "(triangle, cut to a band by a sliding window).",
    "Backward = 2 x forward for every weight matmul (input and weight gradients, the first layer's input gradient "
    "included); attention core 3 x scores + 2 x values with a fused kernel (it recomputes the scores), 2 x with "
    "the math path (--attention-kernel); as counted on the real modules by `profiler validate`.",
    "forward/backward/train_step cover the whole batch (--batch sequences); activations are for one micro-batch "
    "(--batch / --grad-accum sequences); gradient accumulation reuses one gradient buffer.",
    "Mixed precision when --dtype is 16-bit: 16-bit weights and gradients, fp32 master weights and optimizer moments.",
    "train_peak is the largest phase of memory.timeline (live tensors of one optimizer step, an implementation like "
    "the zoo's, --device's default optimizer: single-tensor on cpu/mps, foreach on cuda); forward_peak a no-grad "
    "forward returning every logit; generate_peak prefill then --new-tokens decoding steps, logits of the last "
    "position only. Allocator slack (CUDA's reserved pool) is not included.",
    "6N uses N = active non-embedding parameters (Kaplan et al. 2020); detailed counts add the LM head and attention.",
    "Prefill runs the LM head on the last position only; decode attends min(C + 1, window) keys per layer.",
)


def params_section(arch: ArchSpec, counts: ParamCounts) -> dict[str, Any]:
    return {
        "total": counts.total, "active": counts.active, "embedding": counts.embedding,
        "non_embedding": counts.non_embedding, "active_non_embedding": counts.active_non_embedding,
        "active_compute": counts.active_compute, "components": counts.components,
        "active_components": counts.active_components,
        "router_bias_buffers": router_bias_params(arch),
    }


def analyze(arch: ArchSpec, batch: int = 1, seq_len: int = 2048, context: int | None = None,
            dtype: str = "bfloat16", optimizer: str = "adamw", grad_accum: int = 1,
            recompute: str = "none", attention_kernel: str = "fused", device: str = "cuda",
            new_tokens: int = 32, kv_dtype: str | None = None, autocast: str | None = None,
            master_weights: bool = True, prompt: int | None = None,
            optimizer_implementation: str | None = None) -> dict[str, Any]:
    """The whole report as plain data (the `--format json` document). `device` picks the optimizer
    implementation the training timeline assumes (`memory.OPTIMIZER_PATHS`) unless `optimizer_implementation`
    names one (`memory.OPTIMIZER_IMPLEMENTATIONS`); `new_tokens` the length of the generation whose peak is
    reported, after a prompt of `prompt` tokens (default `seq_len`); `kv_dtype` the KV cache's storage (default
    `dtype`); `autocast` a 16-bit dtype the training timeline's forward runs under (fp32 weights: `dtype`
    float32); `master_weights=False` makes a 16-bit `dtype` pure 16-bit training in the timeline (16-bit moments, no
    fp32 master)."""
    context = seq_len if context is None else context
    prompt = seq_len if prompt is None else prompt
    kv_dtype = dtype if kv_dtype is None else kv_dtype
    require_int("batch", batch)
    require_int("grad_accum", grad_accum)
    if batch % grad_accum:
        raise ValueError(f"grad_accum={grad_accum!r} must be an integer >= 1 that divides batch={batch}")
    micro_batch = batch // grad_accum
    counts = count_params(arch)
    by_convention = {conv: F.forward_flops(arch, batch, seq_len, conv) for conv in F.CONVENTIONS}
    forward = {conv: sum(parts.values()) for conv, parts in by_convention.items()}
    backward = {conv: sum(F.backward_flops(parts, attention_kernel).values()) for conv, parts in by_convention.items()}
    recomputed = {conv: F.recompute_flops(parts, recompute) for conv, parts in by_convention.items()}
    prefill, decode = F.prefill_flops(arch, batch, seq_len), F.decode_flops(arch, batch, context)
    tokens = batch * seq_len

    training = M.training_bytes(arch, counts.total, micro_batch, seq_len, dtype, optimizer, recompute)
    weights = training["weights"]
    timeline = M.training_timeline(arch, micro_batch, seq_len, dtype, optimizer, recompute, grad_accum, device,
                                   autocast, master_weights, optimizer_implementation)
    generation = M.generate_timeline(arch, batch, prompt, new_tokens, dtype, kv_dtype)
    kv_cache = M.kv_cache_bytes(arch, batch, context, kv_dtype)
    prefill_working = M.prefill_working_bytes(arch, batch, seq_len, dtype)
    return {
        "model": arch.name, "model_type": arch.model_type,
        "architecture": {
            "layers": arch.num_layers, "hidden_size": arch.hidden_size, "vocab_size": arch.vocab_size,
            "attention": sorted({g.attention.kind for g in arch.layer_groups}),
            "mlp": sorted({g.mlp.kind for g in arch.layer_groups}),
            "sliding_window": sorted({g.attention.sliding_window or 0 for g in arch.layer_groups}),
            "tie_word_embeddings": arch.tie_word_embeddings,
        },
        "workload": {"batch": batch, "micro_batch": micro_batch, "grad_accum": grad_accum, "seq_len": seq_len,
                     "context": context, "dtype": dtype, "optimizer": optimizer, "recompute": recompute,
                     "attention_kernel": attention_kernel, "device": device,
                     "optimizer_implementation": optimizer_implementation or M.OPTIMIZER_PATHS[device],
                     "prompt": prompt, "new_tokens": new_tokens,
                     "kv_dtype": kv_dtype, "autocast": autocast, "master_weights": master_weights},
        "params": params_section(arch, counts),
        "flops": {
            "forward": forward["dense"], "forward_causal": forward["causal"],
            "backward": backward["dense"], "backward_causal": backward["causal"],
            "recompute": recomputed["dense"], "recompute_causal": recomputed["causal"],
            "train_step": forward["dense"] + backward["dense"] + recomputed["dense"],
            "train_step_causal": forward["causal"] + backward["causal"] + recomputed["causal"],
            "six_nd": F.six_n(counts.active_non_embedding, tokens),
            "palm": F.palm_flops_per_token(arch, counts.active_non_embedding, seq_len) * tokens,
            "prefill": sum(prefill.values()), "decode_per_token": sum(decode.values()),
            "components": {"dense": by_convention["dense"], "causal": by_convention["causal"],
                           "prefill": prefill, "decode_per_token": decode},
        },
        "six_n_vs_detailed": six_n_table(arch, counts, seq_len, attention_kernel),
        "memory": {
            "weights": weights, "gradients": training["gradients"],
            "optimizer": M.optimizer_state_bytes(counts.total, optimizer, dtype, master_weights),
            "master_weights": M.master_weight_bytes(counts.total, dtype) if master_weights else 0,
            "activations": training["activations"],
            "activations_korthikanti": M.korthikanti_activation_bytes(arch, micro_batch, seq_len, recompute),
            "kv_cache": kv_cache, "prefill_working": prefill_working,
            "train_peak": max(timeline.values()),
            "forward_peak": M.forward_peak_bytes(arch, batch, seq_len, dtype),
            "generate_peak": max(generation.values()),
            "inference_peak": weights + kv_cache + prefill_working,
            "timeline": timeline, "generate_timeline": generation,
            "weights_by_format": Q.weight_bytes_by_format(arch, "float16" if dtype == "float16" else "bfloat16"),
        },
        "assumptions": list(ASSUMPTIONS),
    }


def six_n_table(arch: ArchSpec, counts: ParamCounts, seq_len: int,
                attention_kernel: str = "fused") -> list[dict[str, Any]]:
    """Training FLOPs per token, detailed ((forward + backward) / S, both conventions) against 6N and PaLM, as S
    grows."""
    rows = []
    n = counts.active_non_embedding
    for s in sorted({*SCALING_SEQ_LENS, seq_len}):
        detailed = {conv: F.train_step_flops(arch, 1, s, conv, attention_kernel=attention_kernel) / s
                    for conv in F.CONVENTIONS}
        rows.append({"seq_len": s, "six_n": F.six_n(n), "palm": F.palm_flops_per_token(arch, n, s),
                     "detailed_dense": detailed["dense"], "detailed_causal": detailed["causal"],
                     "dense_over_six_n": detailed["dense"] / F.six_n(n),
                     "causal_over_six_n": detailed["causal"] / F.six_n(n)})
    return rows


def training_budget(budget_usd: float, usd_per_hour: float, peak_flops: float, mfu: float) -> dict[str, Any]:
    flops = scaling.budget_flops(budget_usd, usd_per_hour, peak_flops, mfu)
    ratio_n, ratio_d = scaling.optimal_by_ratio(flops)
    fit_n, fit_d = scaling.optimal_by_fit(flops)
    return {
        "budget_usd": budget_usd, "usd_per_device_hour": usd_per_hour, "peak_flops_per_s": peak_flops, "mfu": mfu,
        "device_hours": budget_usd / usd_per_hour, "flops": flops,
        "tokens_per_param_rule": {"params": ratio_n, "tokens": ratio_d, "tokens_per_param": scaling.TOKENS_PER_PARAM},
        "parametric_fit": {"params": fit_n, "tokens": fit_d, **scaling.CHINCHILLA_FIT},
        "assumptions": [
            "C = budget / price x 3600 s x peak FLOP/s x MFU; training compute C = 6 N D.",
            "Hoffmann et al. 2022 (arXiv:2203.15556): ~20 tokens per parameter (Approaches 1-2, Table 3); the "
            "parametric fit (Approach 3, eq. 10) with its published rounded constants gives a smaller N.",
            "Single-epoch training on fresh tokens; no allowance for failed runs, evaluation or inference cost.",
        ],
    }


