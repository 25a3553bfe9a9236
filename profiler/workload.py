"""What a model is asked to do: the modes, the phases a step runs through, and a `Workload` to predict.

One list of modes (`MODES`); each command takes the ones it can do:

* `forward`  — one forward pass over B sequences of S tokens (no autograd);
* `train`    — forward with the next-token loss, backward, one AdamW step;
* `prefill`  — generation's first forward: B prompts of P = S tokens filling the KV cache, logits of the last
  position only (the zoo's `generate` passes logits_to_keep=1);
* `decode`   — one decoding step: B new tokens, each attending a cache of C = S earlier tokens;
* `generate` — greedy generation, a prefill then decoding steps: measured as a whole (`measure`), predicted as
  its decoding steps.

`compare` measures prefill and decode inside a `generate` call (`profiler.checks.compare`).

Phases: the parts of a step that time is split into (`forward`, `backward`, `optimizer`); the FLOP counter sees
the first two.
"""

from __future__ import annotations

from dataclasses import dataclass

from complexity.inputs import require_int
from profiler.formulas.memory import dtype_bytes

MODES = ("forward", "train", "prefill", "decode", "generate")
PREDICTED_MODES = ("forward", "train", "prefill", "decode")  # one step each, priced op by op
MEASURED_MODES = ("forward", "train", "generate")  # what the harness times end to end
# Both measured and predicted at the same shape; prefill and decode are timed within generate.
COMPARED_MODES = ("forward", "train", "prefill", "decode")
PHASES = ("forward", "backward", "optimizer")
MAX_TOKENS = 2**24  # per sequence and per batch: beyond any real workload, so larger values are typos
DECODE_TOKENS = 16  # decoding steps timed per decode point (after the prompt's own first token)


@dataclass(frozen=True)
class Workload:
    """B sequences of S tokens (forward/train/prefill), or one new token per sequence at context C = seq_len
    (decode)."""

    mode: str
    batch: int
    seq_len: int
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.mode not in PREDICTED_MODES:
            raise ValueError(f"mode={self.mode!r} is not one of {PREDICTED_MODES}")
        for name in ("batch", "seq_len"):
            require_int(name, getattr(self, name), 1, MAX_TOKENS)
        dtype_bytes(self.dtype)

    @property
    def tokens(self) -> int:
        """Tokens the step processes: B·S (prefill: the prompt's), or B for a decoding step."""
        return self.batch * (1 if self.mode == "decode" else self.seq_len)


def point_workloads(mode: str, batch: int, seq_len: int, dtype: str = "float32",
                    new_tokens: int = DECODE_TOKENS) -> list[Workload]:
    """What one point's measurement covers: decode = its `new_tokens` steps after a prompt of `seq_len` tokens,
    at cached contexts seq_len .. seq_len + new_tokens − 1; any other mode its one workload."""
    if mode != "decode":
        return [Workload(mode, batch, seq_len, dtype)]
    return [Workload(mode, batch, context, dtype) for context in range(seq_len, seq_len + new_tokens)]
