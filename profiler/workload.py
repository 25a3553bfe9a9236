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

How the step runs, where torch's kernels differ (`Workload` fields, defaults as the zoo's own runs): `device` the
device type it runs on (dropout's fused CUDA kernel, the optimizer's default implementation `OPTIMIZER_PATHS`);
`dropout` whether the module is in training mode so that its dropouts run (at the probabilities of its config;
off by default, also for `train`: a run with dropout has to say so); `optimizer` the AdamW implementation (None:
the device's default); `master_weights` whether a 16-bit run keeps fp32 master weights and moments (the optimizer
then moves fp32 numbers; False: pure 16-bit training, torch's optimizer on 16-bit parameters); `matmul_precision`
torch's `set_float32_matmul_precision` for a float32 run: "highest" (the default: fp32 products) or "high" (CUDA
runs the float32 products and attention on TF32 Tensor Cores, priced at the profile's `tfloat32` rates; activations,
weights and every other op stay float32).
"""

from __future__ import annotations

from dataclasses import dataclass

from complexity.inputs import require_int
from profiler.formulas.memory import MEMORY_DEVICES, OPTIMIZER_IMPLEMENTATIONS, OPTIMIZER_PATHS, dtype_bytes

MODES = ("forward", "train", "prefill", "decode", "generate")
PREDICTED_MODES = ("forward", "train", "prefill", "decode")  # one step each, priced op by op
MEASURED_MODES = ("forward", "train", "generate")  # what the harness times end to end
# Both measured and predicted at the same shape; prefill and decode are timed within generate.
COMPARED_MODES = ("forward", "train", "prefill", "decode")
PHASES = ("forward", "backward", "optimizer")
MAX_TOKENS = 2**24  # per sequence and per batch: beyond any real workload, so larger values are typos
DECODE_TOKENS = 16  # decoding steps timed per decode point (after the prompt's own first token)
DROPOUT_MODES = ("forward", "train")  # a module in training mode: generation runs in eval mode
# torch.set_float32_matmul_precision values priced: "highest" fp32 products, "high" TF32 ones on CUDA ("medium",
# bf16 products of fp32 tensors, is not modelled).
MATMUL_PRECISIONS = ("highest", "high")


@dataclass(frozen=True)
class Workload:
    """B sequences of S tokens (forward/train/prefill), or one new token per sequence at context C = seq_len
    (decode); `device`, `dropout`, `optimizer` and `master_weights` as in the module docstring."""

    mode: str
    batch: int
    seq_len: int
    dtype: str = "float32"
    device: str = "cpu"
    dropout: bool = False
    # one of memory.OPTIMIZER_IMPLEMENTATIONS (foreach and fused priced as CUDA runs them: predict.ops.optimizer_ops)
    optimizer: str | None = None
    master_weights: bool = True
    matmul_precision: str = "highest"

    def __post_init__(self) -> None:
        if self.mode not in PREDICTED_MODES:
            raise ValueError(f"mode={self.mode!r} is not one of {PREDICTED_MODES}")
        for name in ("batch", "seq_len"):
            require_int(name, getattr(self, name), 1, MAX_TOKENS)
        dtype_bytes(self.dtype)
        if self.device not in MEMORY_DEVICES:
            raise ValueError(f"device={self.device!r} is not one of {MEMORY_DEVICES}")
        for name in ("dropout", "master_weights"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be true or false")
        if self.dropout and self.mode not in DROPOUT_MODES:
            raise ValueError(f"dropout=True needs mode in {DROPOUT_MODES} (a module in training mode), "
                             f"got mode={self.mode!r}")
        if self.optimizer is not None and self.optimizer not in OPTIMIZER_IMPLEMENTATIONS:
            raise ValueError(f"optimizer={self.optimizer!r} is not one of {OPTIMIZER_IMPLEMENTATIONS} (or None: "
                             "the device's default)")
        if self.optimizer in ("foreach", "fused") and self.device != "cuda":
            raise ValueError(f"optimizer={self.optimizer!r} is priced as CUDA's multi-tensor kernels run it and "
                             f"needs device='cuda', got device={self.device!r}")

        if self.matmul_precision not in MATMUL_PRECISIONS:
            raise ValueError(f"matmul_precision={self.matmul_precision!r} is not one of {MATMUL_PRECISIONS}")
        if self.matmul_precision == "high" and (self.dtype != "float32" or self.device != "cuda"):
            raise ValueError(f"matmul_precision='high' (TF32 products) needs dtype='float32' and device='cuda', got "
                             f"dtype={self.dtype!r}, device={self.device!r}")

    @property
    def matmul_dtype(self) -> str:
        """The precision the matrix products run in: "tfloat32" for a float32 run at matmul_precision "high", else
        the workload's dtype."""
        return "tfloat32" if self.matmul_precision == "high" else self.dtype

    @property
    def optimizer_implementation(self) -> str:
        """The AdamW implementation the step runs: `optimizer`, else the device's default (`OPTIMIZER_PATHS`)."""
        return self.optimizer or OPTIMIZER_PATHS[self.device]

    @property
    def tokens(self) -> int:
        """Tokens the step processes: B·S (prefill: the prompt's), or B for a decoding step."""
        return self.batch * (1 if self.mode == "decode" else self.seq_len)


def point_workloads(mode: str, batch: int, seq_len: int, dtype: str = "float32",
                    new_tokens: int = DECODE_TOKENS, device: str = "cpu") -> list[Workload]:
    """What one point's measurement covers: decode = its `new_tokens` steps after a prompt of `seq_len` tokens,
    at cached contexts seq_len .. seq_len + new_tokens − 1; any other mode its one workload."""
    if mode != "decode":
        return [Workload(mode, batch, seq_len, dtype, device=device)]
    return [Workload(mode, batch, context, dtype, device=device) for context in range(seq_len, seq_len + new_tokens)]
