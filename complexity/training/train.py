"""The training loop: AdamW, warm-up + cosine, gradient accumulation and clipping, bf16 autocast, evaluation,
JSONL metrics, atomic checkpoints with exact resume, and DDP/FSDP through torchrun.

One optimizer step consumes a global batch of micro_batch_size × grad_accum × world_size sequences: process r
takes the r-th contiguous block of the global batch and splits it into grad_accum micro-batches. The loss of each
micro-batch is a mean over its tokens; gradients are averaged over micro-batches (loss / grad_accum) and over
processes (DDP/FSDP average), so every token weighs the same whatever the process count (every packed sequence has
the same number of predicted tokens, seq_len - 1).

Weight decay (decoupled, Loshchilov & Hutter 2019) applies to parameters with two or more dimensions: every
projection, the stacked expert matrices and the embedding (tied to the LM head, itself a projection; nanoGPT makes
the same choice). RMSNorm gains (1-D) are not decayed: pulling a gain towards 0 rescales activations rather than
regularising a map.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from tqdm import tqdm

from complexity.atomic import write_atomically
from complexity.config import SIZES, ComplexityConfig
from complexity.inputs import require_int, require_number
from complexity.models.matmul_flops import train_step_flops
from complexity.models.modeling import ComplexityForCausalLM
from complexity.training import checkpoint as ckpt
from complexity.training import rundir
from complexity.training.data import PackedData, build_token_file, open_token_file, resolve_text_files, train_indices
from complexity.training.tokenizer import (
    MIN_VOCAB_SIZE,
    TOKENIZER_NAME,
    load_tokenizer,
    save_tokenizer,
    special_token_ids,
    train_tokenizer,
)

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
DISTRIBUTED_MODES = ("none", "ddp", "fsdp")
METRICS_NAME = rundir.METRICS_NAME
MAX_INT = 2**62  # sample indices (step × global batch) stay far inside numpy's int64
ADAMW_BETAS = (0.9, 0.95)  # GPT-3 (Brown et al. 2020, appendix B) and Llama's choice
_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN or infinite loss or gradient; the weights were not updated."""


MAX_LR = 10.0  # see TrainConfig.validate


class SettingError(ValueError):
    """A TrainConfig field outside its allowed range; `field` names it (the command line turns it into its flag)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class TrainConfig:
    """Every setting of a training run (the command line maps onto these fields one to one)."""

    data: list[str]
    output_dir: str
    size: str = "tiny"
    config: str | None = None  # JSON file of ComplexityConfig fields applied over `size`
    tokenizer: str | None = None  # tokenizer.json; None: reuse <output_dir>/tokenizer.json or train one
    vocab_size: int = 8192  # of a tokenizer trained here
    seq_len: int = 256
    micro_batch_size: int = 8
    grad_accum: int = 1
    max_steps: int = 1000
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 100
    weight_decay: float = 0.1
    grad_clip: float = 1.0  # max global L2 norm of the gradient; 0 disables clipping
    eval_interval: int = 100
    eval_batches: int = 8
    eval_fraction: float = 0.02
    save_interval: int = 100
    seed: int = 0
    precision: str = "auto"  # auto: bf16 autocast on a GPU that supports it, fp32 elsewhere
    distributed: str = "none"
    resume: bool = False
    peak_tflops: float | None = None  # per device, for MFU; None: show achieved TFLOP/s only
    progress: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first field outside its allowed range."""
        if not self.data:
            raise SettingError("data", "data must name at least one file or directory")
        if not isinstance(self.output_dir, (str, os.PathLike)) or not str(self.output_dir):
            raise SettingError("output_dir", f"output_dir={self.output_dir!r} must name a directory")
        if self.size not in SIZES:
            raise SettingError("size", f"size={self.size!r} is not one of {sorted(SIZES)}")
        # Upper ends: vocab_size, a uint32 token file; seed, torch.manual_seed's range; seq_len and the batch sizes
        # are checked against the model and the data once those are known.
        limits = dict(vocab_size=(MIN_VOCAB_SIZE, 2**32), seq_len=(2, None), micro_batch_size=(1, None),
                      grad_accum=(1, None), max_steps=(1, None), warmup_steps=(0, None), eval_interval=(1, None),
                      eval_batches=(1, None), save_interval=(1, None), seed=(0, 2**64 - 1))
        # lr at most MAX_LR: AdamW's step lr / (1 - beta1^t) is a float32 scalar inside torch's kernels (3e38 lr
        # overflows it), and no AdamW schedule goes near 10.
        ranges = dict(lr=dict(low=0, high=MAX_LR, low_inclusive=False), min_lr_ratio=dict(low=0, high=1),
                      weight_decay=dict(low=0), grad_clip=dict(low=0),
                      eval_fraction=dict(low=0, high=0.5, low_inclusive=False))
        if self.peak_tflops is not None:
            ranges["peak_tflops"] = dict(low=0, low_inclusive=False)
        try:
            for name, (minimum, maximum) in limits.items():
                field = name
                require_int(name, getattr(self, name), minimum=minimum, maximum=maximum)
            for name, bounds in ranges.items():
                field = name
                require_number(name, getattr(self, name), **bounds)
        except ValueError as err:
            raise SettingError(field, str(err)) from None
        if self.lr * self.weight_decay >= 1:
            # Decoupled weight decay (Loshchilov & Hutter 2019) multiplies the weights by 1 - lr·weight_decay each
            # step: at 1 or more it zeroes or flips them.
            raise SettingError("weight_decay", f"lr·weight_decay = {self.lr:g}·{self.weight_decay:g} must be < 1 "
                                               "(AdamW multiplies the weights by 1 - lr·weight_decay each step)")
        if self.precision not in PRECISIONS:
            raise SettingError("precision", f"precision={self.precision!r} is not one of {PRECISIONS}")
        if self.distributed not in DISTRIBUTED_MODES:
            raise SettingError("distributed", f"distributed={self.distributed!r} is not one of {DISTRIBUTED_MODES}")

    def resume_settings(self, world_size: int) -> dict[str, Any]:
        """The settings a resumed run must share with the checkpoint for its losses to continue exactly."""
        same = ("seq_len", "micro_batch_size", "grad_accum", "max_steps", "lr", "min_lr_ratio", "warmup_steps",
                "weight_decay", "grad_clip", "eval_fraction", "seed", "precision")
        return {**{name: getattr(self, name) for name in same},
                "global_batch": self.micro_batch_size * self.grad_accum * world_size}


@dataclass
class TrainResult:
    losses: dict[int, float]  # optimizer step (1-based) -> training loss of that step's global batch
    eval_losses: dict[int, float]  # step -> held-out loss (nats per token)
    checkpoint: Path | None


@dataclass(frozen=True)
class _Runtime:
    rank: int
    world_size: int
    device: torch.device
    autocast_dtype: torch.dtype | None
    owns_process_group: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate of optimizer step `step` (0-based): linear warm-up lr·(step+1)/W for step < W, then a cosine
    from lr down to min_lr_ratio·lr at max_steps: lr·(r + (1-r)·(1 + cos(π·p))/2), p = (step-W)/(max_steps-W)
    (Loshchilov & Hutter 2017, SGDR, without restarts; warm-up as Goyal et al. 2017)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    r = cfg.min_lr_ratio
    return cfg.lr * (r + (1 - r) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on parameters with ndim >= 2, none on the rest (see the module docstring)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_model_config(cfg: TrainConfig, vocab_size: int, special_ids: dict[str, int]) -> ComplexityConfig:
    """The zoo size (with the --config file's fields over it), sized to the tokenizer's vocabulary."""
    overrides = _read_json_object(cfg.config) if cfg.config is not None else {}
    if overrides.get("vocab_size", vocab_size) != vocab_size:
        raise ValueError(f"config vocab_size={overrides['vocab_size']} differs from the tokenizer's {vocab_size}")
    config = ComplexityConfig.from_dict({**SIZES[cfg.size], **overrides, "vocab_size": vocab_size,
                                         "torch_dtype": "float32", **special_ids})
    if config.max_position_embeddings < cfg.seq_len:
        raise ValueError(f"seq_len={cfg.seq_len} must be at most the model's max_position_embeddings="
                         f"{config.max_position_embeddings}")
    return config


def train(cfg: TrainConfig) -> TrainResult:
    """Run (or resume) training as `cfg` says; returns the losses and the last checkpoint.

    Raises NonFiniteLossError when a loss or gradient is NaN/inf (weights not updated, last checkpoint kept) and
    ValueError for unusable settings, data or checkpoints.
    """
    rt = _start_runtime(cfg)
    try:
        lock = _open_output_dir(cfg, rt)
        try:
            return _train(cfg, rt)
        finally:
            if lock is not None:
                lock.release()
    finally:
        if rt.owns_process_group:
            dist.destroy_process_group()


def _open_output_dir(cfg: TrainConfig, rt: _Runtime) -> rundir.RunLock | None:
    """Create and lock the output directory (main process), check that this run may start or resume there and
    sweep what killed writers left; every process raises the same ValueError when not. Returns the lock."""
    output = Path(cfg.output_dir)
    error, lock = None, None
    if rt.is_main:
        try:
            if output.exists() and not output.is_dir():
                raise ValueError(f"output_dir={str(output)!r} exists and is not a directory")
            try:
                output.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise ValueError(f"output_dir={str(output)!r} cannot be created: {err.strerror or err}") from err
            lock = rundir.acquire_lock(output)
            rundir.check_start(output, cfg.resume)
            rundir.sweep(output)
        except BaseException as err:
            if lock is not None:
                lock.release()
            if rt.world_size == 1 or not isinstance(err, ValueError):
                raise
            error = str(err)
    if rt.world_size > 1:
        shared = [error]
        dist.broadcast_object_list(shared, src=0)
        if shared[0] is not None:
            raise ValueError(shared[0])
    return lock


def _train(cfg: TrainConfig, rt: _Runtime) -> TrainResult:
    output = Path(cfg.output_dir)
    overrides = _read_json_object(cfg.config) if cfg.config is not None else {}
    build_model_config(cfg, overrides.get("vocab_size", cfg.vocab_size), {})  # settings checked before long work
    tokenizer_path, meta = _prepare_data(cfg, rt)
    tokenizer = load_tokenizer(tokenizer_path)
    data = PackedData.split(open_token_file(output / rundir.DATA_DIR), cfg.seq_len, cfg.eval_fraction)
    config = build_model_config(cfg, tokenizer.get_vocab_size(), special_token_ids(tokenizer))
    global_batch = cfg.micro_batch_size * cfg.grad_accum * rt.world_size
    if global_batch > data.num_train or cfg.max_steps * global_batch > MAX_INT:
        raise ValueError(f"micro_batch_size × grad_accum × processes = {global_batch} sequences per step must be at "
                         f"most the {data.num_train} training sequences (and max_steps × that at most {MAX_INT})")
    run_settings = {**cfg.resume_settings(rt.world_size), "model": config.to_dict(), "data": meta["fingerprint"]}

    torch.manual_seed(cfg.seed)
    model = ComplexityForCausalLM(config)
    model.init_weights()
    model = _distribute(model.to(rt.device), cfg.distributed, rt)
    optimizer = torch.optim.AdamW(parameter_groups(model, cfg.weight_decay), lr=cfg.lr, betas=ADAMW_BETAS)

    start_step = 0
    ckpt.check_no_foreign_checkpoints(output, run_settings)  # never overwritten nor deleted: refused up front
    if rt.is_main and ckpt.latest_checkpoint(output) is not None:
        ckpt.remove_superseded(output, run_settings)  # older ones a crash left before deleting them
    if cfg.resume and ckpt.latest_checkpoint(output) is not None:
        start_step = _restore(model, optimizer, output, run_settings, rt)
    elif cfg.resume:
        logger.info("resume: %s holds no checkpoint yet; starting again from step 0", output)
    eval_batches = min(cfg.eval_batches, data.num_eval // (cfg.micro_batch_size * rt.world_size))
    if eval_batches < 1:
        raise ValueError(f"the held-out split has {data.num_eval} sequences, fewer than one evaluation batch of "
                         f"micro_batch_size × processes = {cfg.micro_batch_size * rt.world_size}; raise "
                         "eval_fraction or add data")

    metrics = _MetricsLog(output / METRICS_NAME, start_step, enabled=rt.is_main)
    result = TrainResult(losses={}, eval_losses={}, checkpoint=ckpt.latest_checkpoint(output))

    def evaluate(step: int) -> None:
        result.eval_losses[step] = loss = _evaluate(model, data, eval_batches, cfg, rt)
        if not math.isfinite(loss):
            raise NonFiniteLossError(f"step {step}: held-out loss {loss}; lower lr or use fp32 precision")
        metrics.write({"step": step, "eval_loss": loss, "eval_perplexity": math.exp(min(loss, 700.0))})

    if start_step == 0:
        metrics.write({"event": "start", "model": config.to_dict(), "train": asdict(cfg),
                       "world_size": rt.world_size, "train_sequences": data.num_train,
                       "eval_sequences": data.num_eval, "tokens": meta["num_tokens"]})
        evaluate(0)  # the initialised model: the baseline the run improves on
    step_flops = train_step_flops(config, cfg.micro_batch_size, cfg.seq_len) * cfg.grad_accum * rt.world_size
    bar = tqdm(total=cfg.max_steps, initial=start_step, disable=not (cfg.progress and rt.is_main), unit="step")
    with bar:
        for step in range(start_step, cfg.max_steps):
            start = time.perf_counter()
            lr = lr_at(step, cfg)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss, grad_norm = _optimizer_step(model, optimizer, data, step, cfg, rt, result.checkpoint)
            if rt.device.type == "cuda":
                torch.cuda.synchronize(rt.device)
            seconds = time.perf_counter() - start
            done = step + 1
            result.losses[done] = loss
            record = {"step": done, "loss": loss, "lr": lr, "grad_norm": grad_norm,
                      "tokens_per_s": global_batch * cfg.seq_len / seconds, "tflops": step_flops / seconds / 1e12}
            if cfg.peak_tflops is not None:
                record["mfu"] = record["tflops"] / (cfg.peak_tflops * rt.world_size)
            metrics.write(record)
            bar.set_postfix(_progress_fields(record), refresh=False)
            bar.update()
            if done % cfg.eval_interval == 0 or done == cfg.max_steps:
                evaluate(done)
            if done % cfg.save_interval == 0 or done == cfg.max_steps:
                result.checkpoint = _save(model, optimizer, config, output, done, done * global_batch,
                                          run_settings, rt)
    return result


def _optimizer_step(model, optimizer, data: PackedData, step: int, cfg: TrainConfig, rt: _Runtime,
                    last_checkpoint: Path | None) -> tuple[float, float]:
    """Forward/backward over this process's grad_accum micro-batches, then clip and step. Returns the global
    mean loss and the gradient norm before clipping; raises NonFiniteLossError before touching the weights."""
    global_batch = cfg.micro_batch_size * cfg.grad_accum * rt.world_size
    indices = train_indices(step, global_batch, data.num_train, cfg.seed)
    per_rank = cfg.micro_batch_size * cfg.grad_accum
    mine = indices[rt.rank * per_rank:(rt.rank + 1) * per_rank]
    loss_sum = torch.zeros((), device=rt.device)
    for micro in range(cfg.grad_accum):
        ids = data.sequences(mine[micro * cfg.micro_batch_size:(micro + 1) * cfg.micro_batch_size]).to(rt.device)
        last = micro == cfg.grad_accum - 1
        with _gradient_sync(model, cfg.distributed, enabled=last), _autocast(rt):
            loss = model(ids, labels=ids).loss
        (loss / cfg.grad_accum).backward()
        loss_sum += loss.detach().float()
    mean_loss = loss_sum / cfg.grad_accum
    if rt.world_size > 1:
        dist.all_reduce(mean_loss)  # a sum: gloo has no average
        mean_loss /= rt.world_size
    max_norm = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
    grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
    loss_value, norm_value = float(mean_loss), float(grad_norm)
    if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
        optimizer.zero_grad(set_to_none=True)
        kept = f"the last good checkpoint {last_checkpoint} is intact" if last_checkpoint else "no checkpoint yet"
        raise NonFiniteLossError(
            f"step {step + 1}: loss {loss_value}, gradient norm {norm_value} — training stopped before updating "
            f"the weights; {kept}. Lower lr, raise warmup_steps or use fp32 precision."
        )
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss_value, norm_value


@torch.no_grad()
def _evaluate(model, data: PackedData, batches: int, cfg: TrainConfig, rt: _Runtime) -> float:
    """Mean next-token loss over the first batches × micro_batch_size × world_size held-out sequences."""
    total = torch.zeros((), device=rt.device)
    rows = cfg.micro_batch_size * rt.world_size
    for b in range(batches):
        first = data.num_train + b * rows + rt.rank * cfg.micro_batch_size
        ids = data.sequences(np.arange(first, first + cfg.micro_batch_size)).to(rt.device)
        with _autocast(rt):
            total += model(ids, labels=ids).loss.float()
    if rt.world_size > 1:
        dist.all_reduce(total)
    return float(total) / (batches * rt.world_size)


def _save(model, optimizer, config, output: Path, step: int, samples_seen: int, run_settings, rt) -> Path:
    model_state = get_model_state_dict(model, options=_FULL)  # collective under FSDP: every rank calls it
    optimizer_state = get_optimizer_state_dict(model, optimizer, options=_FULL)
    path = ckpt.checkpoint_root(output) / ckpt.step_dir_name(step)
    if rt.is_main:
        rng = {"torch_cpu": torch.get_rng_state()}
        if rt.device.type == "cuda":
            rng["torch_cuda"] = torch.cuda.get_rng_state(rt.device)
        path = ckpt.save_checkpoint(output, step, samples_seen, config, model_state, optimizer_state, rng,
                                    run_settings)
    if rt.world_size > 1:
        dist.barrier()
    return path


def _restore(model, optimizer, output: Path, run_settings: dict[str, Any], rt: _Runtime) -> int:
    """Load the latest checkpoint into the (possibly wrapped) model and optimizer; returns its step."""
    state = ckpt.load_checkpoint(output)
    ckpt.check_same_run(state.run, run_settings, state.directory)
    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, state.model_state, options=options)
    hyper = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    if len(hyper) != len(state.optimizer_state["param_groups"]):
        raise ValueError(f"resume: {state.directory} has {len(state.optimizer_state['param_groups'])} optimizer "
                         f"parameter groups, this run {len(hyper)}")
    groups = [{**h, "params": names} for h, names in zip(hyper, state.optimizer_state["param_groups"])]
    set_optimizer_state_dict(model, optimizer, {"state": state.optimizer_state["state"], "param_groups": groups},
                             options=options)
    torch.set_rng_state(state.rng["torch_cpu"])
    if rt.device.type == "cuda" and "torch_cuda" in state.rng:
        torch.cuda.set_rng_state(state.rng["torch_cuda"], rt.device)
    logger.info("resumed from %s at step %d", state.directory, state.step)
    return state.step


def _prepare_data(cfg: TrainConfig, rt: _Runtime) -> tuple[Path, dict]:
    """Train or reuse the tokenizer and build or reuse the token file (main process; the others wait)."""
    output = Path(cfg.output_dir)
    tokenizer_path = Path(cfg.tokenizer) if cfg.tokenizer else output / TOKENIZER_NAME
    meta: dict = {}
    if rt.is_main:
        files = resolve_text_files(cfg.data)
        if cfg.tokenizer is None and not tokenizer_path.is_file():
            logger.info("training a %d-token tokenizer on %d files", cfg.vocab_size, len(files))
            save_tokenizer(train_tokenizer(files, cfg.vocab_size), tokenizer_path)
        meta = build_token_file(files, load_tokenizer(tokenizer_path), output / rundir.DATA_DIR)
    if rt.world_size > 1:
        shared = [meta]
        dist.broadcast_object_list(shared, src=0)  # a small JSON-able dict, sent by rank 0 to ranks it started with
        meta = shared[0]
    return tokenizer_path, meta


def _start_runtime(cfg: TrainConfig) -> _Runtime:
    use_cuda = torch.cuda.is_available()
    owns = False
    if cfg.distributed != "none" and not dist.is_initialized():
        if "WORLD_SIZE" not in os.environ:
            raise ValueError(f"distributed={cfg.distributed!r} needs torchrun (WORLD_SIZE is not set)")
        dist.init_process_group("nccl" if use_cuda else "gloo")
        owns = True
    rank = dist.get_rank() if cfg.distributed != "none" else 0
    world = dist.get_world_size() if cfg.distributed != "none" else 1
    if use_cuda:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) if world > 1 else torch.cuda.current_device())
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if cfg.precision == "bf16" or (cfg.precision == "auto" and use_cuda and torch.cuda.is_bf16_supported()):
        autocast = torch.bfloat16
    else:
        autocast = None
    return _Runtime(rank=rank, world_size=world, device=device, autocast_dtype=autocast, owns_process_group=owns)


def _distribute(model: ComplexityForCausalLM, mode: str, rt: _Runtime) -> torch.nn.Module:
    """DDP (Li et al. 2020) replicates and all-reduces gradients; FSDP2's fully_shard shards every decoder layer and
    then the rest (embedding/LM head, final norm) across processes (Zhao et al. 2023)."""
    if mode == "ddp":
        return torch.nn.parallel.DistributedDataParallel(model, device_ids=[rt.device] if rt.device.type == "cuda"
                                                         else None)
    if mode == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for layer in model.model.layers:
            fully_shard(layer)
        fully_shard(model)
    return model


@contextlib.contextmanager
def _gradient_sync(model: torch.nn.Module, mode: str, enabled: bool):
    """Skip the gradient all-reduce on all but the last micro-batch of an accumulation."""
    if enabled or mode == "none":
        yield
    elif mode == "ddp":
        with model.no_sync():
            yield
    else:
        model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            model.set_requires_gradient_sync(True)


def _autocast(rt: _Runtime):
    if rt.autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(rt.device.type, dtype=rt.autocast_dtype)


def _progress_fields(record: dict[str, float]) -> dict[str, str]:
    fields_ = {"loss": f"{record['loss']:.3f}", "tok/s": f"{record['tokens_per_s']:,.0f}"}
    if "mfu" in record:
        fields_["MFU"] = f"{100 * record['mfu']:.1f}%"
    else:
        fields_["TFLOP/s"] = f"{record['tflops']:.3g}"
    return fields_


class _MetricsLog:
    """metrics.jsonl, one JSON object per line, appended. On resume, lines of steps after the checkpoint (written
    by the interrupted run, and about to be redone) are dropped so every step appears once: the file is rewritten
    through a temp file renamed over it, so a crash leaves the old file or the new one, never a truncated one. A
    last line cut short by a kill mid-append is dropped; a garbled line elsewhere is a ValueError naming it."""

    def __init__(self, path: Path, start_step: int, enabled: bool) -> None:
        self.path, self.enabled = path, enabled
        if enabled and path.exists():
            kept = [line for line in self._read() if line[1].get("step", 0) <= start_step] if start_step else []
            text = "".join(raw + "\n" for raw, _ in kept)
            write_atomically(path, lambda tmp: Path(tmp).write_text(text))

    def _read(self) -> list[tuple[str, dict[str, Any]]]:
        try:
            text = self.path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ValueError(f"{self.path} is unreadable: {err}") from err
        lines = text.split("\n")
        records = []
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw)
                if not isinstance(record, dict) or not isinstance(record.get("step", 0), int):
                    raise ValueError("not an object with an integer step")
            except ValueError as err:
                if number == len(lines):  # no newline after it: an append cut short
                    logger.warning("%s: dropping the incomplete last line %d", self.path, number)
                    continue
                raise ValueError(f"{self.path}: line {number} is not a metrics record ({err}); repair or remove "
                                 "it") from None
            records.append((raw, record))
        return records

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps({"time": time.time(), **record}, allow_nan=False) + "\n")


def _read_json_object(path: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_bytes().decode("utf-8"))
    except FileNotFoundError as err:
        raise ValueError(f"config={path!r} does not exist") from err
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"config={path!r} is unreadable: {err}") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"config={path!r}: not valid JSON ({err})") from err
    if not isinstance(data, dict):
        raise ValueError(f"config={path!r} must hold a JSON object of ComplexityConfig fields")
    return data

