"""The main job's document: the analytic numbers of a model, their check against FLOPs counted on its real module,
and its measured against predicted time on this device (`python -m profiler report MODEL`).

It joins what the other parts establish:

1. the analytic numbers (`profiler.analysis`): parameters, FLOPs per pass, memory;
2. their check against FLOPs counted on the real module (`profiler.checks.validate`: our counter, torch's
   FlopCounterMode, fvcore);
3. measured and predicted times on the current device (`profiler.checks.compare`: the device is calibrated in the
   same run, a forward pass, a training step, a prefill of seq_len prompt tokens and a decoding step after a
   context of seq_len tokens are timed with the `measure` harness and predicted op by op).
"""

from __future__ import annotations

from typing import Any

from profiler.analysis import analyze
from profiler.hardware import HardwareProfile
from profiler.source import ModelSource
from profiler.workload import COMPARED_MODES, DECODE_TOKENS

DTYPE = "float32"  # the timed runs are fp32, so the analytic numbers are too


def report(source: ModelSource, batch: int = 1, seq_len: int = 128, timing: bool = True, device: str = "cpu",
           repeats: int = 5) -> tuple[dict[str, Any], HardwareProfile | None, list]:
    """The report as plain data — `analysis` (analyze's document), `validation` (validate's summary) and, with
    `timing`, `timing` (compare's document for a forward pass, a training step, a prefill and a decoding step, each
    of COMPARED_MODES at this batch and length) —
    with the profile calibrated for the timing and its grid points (None and [] without `timing`)."""
    from profiler.checks import validate  # imports torch: only here, so `analyze` stays torch-free

    # The analysis's generation is the timing's (DECODE_TOKENS + 1 new tokens), after as much of the prompt as fits.
    new_tokens = DECODE_TOKENS + 1
    prompt = min(seq_len, source.arch.max_position_embeddings - new_tokens)
    analysis = analyze(source.arch, batch=batch, seq_len=seq_len, dtype=DTYPE, device=device.split(":")[0],
                       new_tokens=new_tokens, prompt=prompt)
    result: dict[str, Any] = {"model": analysis["model"], "analysis": analysis,
                              "validation": validate.summary(validate.validate(source, batch, seq_len))}
    if not timing:
        return result, None, []
    from profiler.checks.compare import calibrated_comparison

    points = [(source, mode, batch, seq_len) for mode in COMPARED_MODES]
    result["timing"], profile = calibrated_comparison(points, device, repeats=repeats)
    return result, profile, points
