"""How long a training run takes on a device, and whether it fits (`python -m profiler estimate-training`).

The arithmetic (every figure is in the JSON output):

* steps per epoch = ⌈sequences ÷ (micro_batch × grad_accum)⌉ (a last, partial step is counted as a full one);
  steps = steps per epoch × epochs; micro-batches = steps × grad_accum.
* time per micro-batch = the predicted forward + backward of one micro-batch (`profiler.predict`, mode train,
  optimizer excluded) + the extra parameters' share (below); its bound is the predictor's.
* time per step = grad_accum × micro-batch + (grad_accum − 1) gradient additions (each later micro-batch adds
  into .grad: 3 passes over the parameters) + one AdamW step over all parameters (model + extra).
* training = steps × step time. Data preparation = sequences ÷ `--prep-rate` (tokenising once, before the first
  epoch). Evaluation = epochs × `--eval-sequences` ÷ micro_batch forward passes at the micro-batch shape.
  total = data preparation + training + evaluation.
* extra parameters (e.g. a small policy network trained alongside): P weights applied to every token as dense
  matmuls — 2·P FLOPs per token forward and 4·P backward, priced at the achievable FLOP/s of a
  [tokens, √P] @ [√P, √P] product — plus their gradients and AdamW state in memory and in the optimizer step.
* memory = `profiler.formulas.memory.training_bytes`: weights + gradients + AdamW state (model + extra
  parameters) + activations of one micro-batch, against each memory size the profile lists.
* range: the same computation at the optimistic / likely / conservative end of the profile's calibrated spreads.
* sensitivity: total time and memory with the sequence length halved and doubled, and the micro-batch halved and
  doubled at a constant effective batch (grad_accum scaled the other way, where it stays a whole number).
"""

from __future__ import annotations

import math
from typing import Any

from complexity.inputs import require_int, require_number
from profiler.arch import ArchSpec
from profiler.formulas.memory import training_bytes
from profiler.formulas.params import count_params
from profiler.hardware import ESTIMATES, HardwareProfile
from profiler.predict.ops import gradient_accumulation_op, optimizer_ops
from profiler.predict.roofline import op_time, predict
from profiler.workload import Workload


def extra_params_seconds(profile: HardwareProfile, params: int, tokens: int, dtype: str, estimate: str) -> float:
    """Forward + backward of P extra weights over `tokens` tokens: 6·P·tokens FLOPs at the achievable rate of a
    [tokens, √P] @ [√P, √P] product (see the module docstring)."""
    if params == 0:
        return 0.0
    width = max(math.isqrt(params), 1)
    return 6 * params * tokens / profile.matmul_flops_per_s(dtype, tokens, width, width, estimate)


def step_seconds(arch: ArchSpec, profile: HardwareProfile, seq_len: int, micro_batch: int, grad_accum: int,
                 extra_params: int, dtype: str, estimate: str) -> dict[str, Any]:
    """Seconds of one micro-batch and one optimizer step (module docstring)."""
    result = predict(arch, profile, Workload("train", micro_batch, seq_len, dtype, device=profile.device_type), estimate)
    phases = result["seconds_by_phase"]
    micro = phases["forward"] + phases["backward"] + extra_params_seconds(profile, extra_params,
                                                                          micro_batch * seq_len, dtype, estimate)
    params = count_params(arch).total + extra_params
    optimizer = phases["optimizer"] + (sum(op_time(op, profile, dtype, estimate).seconds
                                           for op in optimizer_ops([extra_params])) if extra_params else 0.0)
    accumulate = op_time(gradient_accumulation_op(params, dtype), profile, dtype, estimate).seconds
    step = grad_accum * micro + (grad_accum - 1) * accumulate + optimizer
    return {"micro_batch_s": micro, "gradient_add_s": accumulate, "optimizer_s": optimizer, "step_s": step,
            "bound": result["bound"], "mfu": result["mfu"]}


def memory_fit(arch: ArchSpec, profile: HardwareProfile, seq_len: int, micro_batch: int, extra_params: int,
               dtype: str) -> dict[str, Any]:
    """Bytes of training state and one micro-batch's activations, against each memory size of the device."""
    parts = training_bytes(arch, count_params(arch).total + extra_params, micro_batch, seq_len, dtype)
    total = parts["total"]
    return {**parts,
            "fits": {str(size): total <= size for size in profile.memory_bytes},
            "fraction_of_largest": total / profile.max_memory_bytes}


def estimate_training(arch: ArchSpec, profile: HardwareProfile, sequences: int, epochs: int, seq_len: int,
                      micro_batch: int, grad_accum: int, extra_params: int = 0, dtype: str = "float32",
                      prep_sequences_per_s: float = 1000.0, eval_sequences: int = 0,
                      with_sensitivity: bool = True) -> dict[str, Any]:
    """The whole estimate as plain data (the `--format json` document)."""
    for name, value, minimum in (("sequences", sequences, 1), ("epochs", epochs, 1), ("seq_len", seq_len, 1),
                                 ("micro_batch", micro_batch, 1), ("grad_accum", grad_accum, 1),
                                 ("extra_params", extra_params, 0), ("eval_sequences", eval_sequences, 0)):
        require_int(name, value, minimum)
    require_number("prep_sequences_per_s", prep_sequences_per_s, 0, low_inclusive=False)
    steps_per_epoch = -(-sequences // (micro_batch * grad_accum))
    steps = steps_per_epoch * epochs
    prep_s = sequences / prep_sequences_per_s
    eval_passes = epochs * -(-eval_sequences // micro_batch)
    scenarios = {}
    for estimate in ESTIMATES:
        timing = step_seconds(arch, profile, seq_len, micro_batch, grad_accum, extra_params, dtype, estimate)
        forward = predict(arch, profile, Workload("forward", micro_batch, seq_len, dtype, device=profile.device_type), estimate)["seconds"]
        training_s, eval_s = steps * timing["step_s"], eval_passes * forward
        scenarios[estimate] = {**timing, "training_s": training_s, "data_preparation_s": prep_s,
                               "evaluation_s": eval_s, "total_s": prep_s + training_s + eval_s,
                               "total_hours": (prep_s + training_s + eval_s) / 3600}
    report = {
        "model": arch.name, "hardware": profile.name,
        "inputs": {"sequences": sequences, "epochs": epochs, "seq_len": seq_len, "micro_batch": micro_batch,
                   "grad_accum": grad_accum, "effective_batch": micro_batch * grad_accum,
                   "extra_params": extra_params, "dtype": dtype, "prep_sequences_per_s": prep_sequences_per_s,
                   "eval_sequences": eval_sequences},
        "params": count_params(arch).total + extra_params,
        "tokens": sequences * epochs * seq_len,
        "steps_per_epoch": steps_per_epoch, "steps": steps, "micro_batches": steps * grad_accum,
        "estimates": scenarios,
        "memory": memory_fit(arch, profile, seq_len, micro_batch, extra_params, dtype),
    }
    if with_sensitivity:
        report["sensitivity"] = sensitivity(arch, profile, sequences, epochs, seq_len, micro_batch, grad_accum,
                                            extra_params, dtype, prep_sequences_per_s, eval_sequences)
    return report


def sensitivity(arch: ArchSpec, profile: HardwareProfile, sequences: int, epochs: int, seq_len: int,
                micro_batch: int, grad_accum: int, extra_params: int, dtype: str, prep: float,
                eval_sequences: int) -> list[dict[str, Any]]:
    """Likely total hours and peak memory when one input changes (module docstring)."""
    variants = [("baseline", seq_len, micro_batch, grad_accum),
                ("seq_len / 2", max(seq_len // 2, 1), micro_batch, grad_accum),
                ("seq_len x 2", seq_len * 2, micro_batch, grad_accum)]
    if grad_accum % 2 == 0:
        variants.append(("micro_batch x 2", seq_len, micro_batch * 2, grad_accum // 2))
    if micro_batch % 2 == 0:
        variants.append(("micro_batch / 2", seq_len, micro_batch // 2, grad_accum * 2))
    rows = []
    for label, seq, micro, accum in variants:
        result = estimate_training(arch, profile, sequences, epochs, seq, micro, accum, extra_params, dtype, prep,
                                   eval_sequences, with_sensitivity=False)
        rows.append({"change": label, "seq_len": seq, "micro_batch": micro, "grad_accum": accum,
                     "total_hours": result["estimates"]["likely"]["total_hours"],
                     "memory_bytes": result["memory"]["total"],
                     "fits_largest": result["memory"]["total"] <= profile.max_memory_bytes})
    return rows
