"""Save and load a `ComplexityForCausalLM` as config.json + model.safetensors (HF's file names and layout).

Kept apart from `complexity.models.utils` so that the model's own `save_pretrained` / `from_pretrained` methods
and the functions of the same names share one implementation without an import cycle: this module needs the
model class only as an argument (and for annotations).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from complexity.atomic import current_files, write_files_together
from complexity.config import ComplexityConfig

if TYPE_CHECKING:
    from complexity.models.modeling import ComplexityForCausalLM

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TORCH_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16,
                "float64": torch.float64}
M = TypeVar("M", bound=torch.nn.Module)


def save_pretrained(model: ComplexityForCausalLM, directory: str | os.PathLike) -> None:
    """Write config.json and model.safetensors into `directory` as one unit (see `save_state_dict`)."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_state_dict(state, model.config, directory)


def save_state_dict(state: dict[str, torch.Tensor], config: ComplexityConfig, directory: str | os.PathLike) -> None:
    """Write a full (unsharded, CPU) state dict of a `ComplexityForCausalLM` and its config, as `save_pretrained`.

    The pair is replaced as one unit by `write_files_together`: both files are staged in a hidden directory inside
    `directory`, committed by one directory rename, then moved over the old names. A kill at any moment leaves
    either the old pair or the new pair for `from_pretrained` (which resolves an interrupted move read-only), never
    new weights beside an old config; the next save finishes or sweeps what a killed one left, so no staged
    copies accumulate. Chosen over a manifest of the weights' SHA-256, which only detects the mixed pair (the
    directory would then not load) and costs a re-read of the weights at every load; and over renaming a whole
    temp directory over the target, which POSIX cannot do atomically (no exchange of two names: renaming the old
    one away first leaves a moment with no directory) and which would drop other files in it (a tokenizer, ...),
    left alone here. Limits: one writer per directory at a time; a tool that reads the two top-level files
    itself (not through `from_pretrained`) sees a mixed pair only if a save died between its two final renames,
    until the next save. A tied LM head is stored once (as the embedding).
    """
    state = {k: v.detach().contiguous() for k, v in state.items()}
    if config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    dtypes = {str(v.dtype).removeprefix("torch.") for v in state.values()}
    if len(dtypes) != 1:
        raise ValueError(f"all weights must share one dtype to be saved, found {sorted(dtypes)}")
    config = ComplexityConfig.from_dict({**config.to_dict(), "torch_dtype": dtypes.pop()})
    write_files_together(directory, {
        WEIGHTS_NAME: lambda path: save_file(state, path, metadata={"format": "pt"}),
        CONFIG_NAME: lambda path: Path(path).write_text(config.to_json_string(), encoding="utf-8"),
    })


def _load_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device that exists on this machine (cpu, cuda[:N] or mps), else a ValueError."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} is not a device (allowed: 'cpu', 'cuda', 'cuda:N', 'mps')") from err
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"device={device!r}: CUDA is not available on this machine (use device='cpu')")
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(f"device={device!r}: this machine has {count} CUDA device(s), indices 0..{count - 1}")
    elif parsed.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"device={device!r}: MPS is not available on this machine (use device='cpu')")
    elif parsed.type != "cpu":
        raise ValueError(f"device={device!r} must be 'cpu', 'cuda', 'cuda:N' or 'mps'")
    return parsed


def load_pretrained(model_class: type[M], directory: str | os.PathLike, device: str | torch.device = "cpu") -> M:
    """Load what `save_pretrained` wrote into a `model_class` (ComplexityForCausalLM), checking every tensor's
    name, shape and dtype against the config.

    Raises ValueError on a missing, unreadable, truncated or mismatched file (the file named), on a config that
    lacks a field the logits depend on (`ComplexityConfig.from_json_file`), and on a device this machine lacks.
    Uses safetensors only: nothing is unpickled. Reads the pair the last completed save committed, also when that
    save was killed while moving its files into place (`current_files`); writes nothing.
    """
    directory = Path(directory)
    device = _load_device(device)
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise ValueError(f"{directory} {problem}: give the directory save_pretrained wrote ({CONFIG_NAME} and "
                         f"{WEIGHTS_NAME})")
    files = current_files(directory, (CONFIG_NAME, WEIGHTS_NAME))
    config_path, weights_path = files[CONFIG_NAME], files[WEIGHTS_NAME]
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ValueError(f"{path} does not exist")
    config = ComplexityConfig.from_json_file(config_path)
    dtype = TORCH_DTYPES[config.torch_dtype]
    with torch.device("meta"):
        model = model_class(config)
    expected = {k: v for k, v in model.state_dict().items() if not (config.tie_word_embeddings and k == "lm_head.weight")}
    try:
        with safe_open(weights_path, framework="pt", device=str(device)) as f:
            names = set(f.keys())
            missing, unexpected = sorted(expected.keys() - names), sorted(names - expected.keys())
            if missing or unexpected:
                raise ValueError(f"{weights_path} does not match {config_path}: missing {missing}, unexpected {unexpected}")
            state = {}
            for name, ref in expected.items():
                tensor = f.get_tensor(name)
                if tuple(tensor.shape) != tuple(ref.shape) or tensor.dtype != dtype:
                    raise ValueError(
                        f"{weights_path}: tensor {name} is {tuple(tensor.shape)} {tensor.dtype}, the config expects "
                        f"{tuple(ref.shape)} {dtype}"
                    )
                state[name] = tensor
    except (SafetensorError, OSError, json.JSONDecodeError) as err:  # truncated or garbled file
        raise ValueError(f"{weights_path} is not a readable safetensors file: {err}") from err
    if config.tie_word_embeddings:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model.load_state_dict(state, assign=True)
    model.tie_weights()
    return model
