"""Build models by size name, count their parameters, and save/load them as config.json + model.safetensors."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from complexity.atomic import write_atomically
from complexity.config import ComplexityConfig, config_for_size
from complexity.models.modeling import ComplexityForCausalLM

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "float64": torch.float64}


def create_complexity_model(
    size: str = "tiny", device: str | torch.device | None = None, **overrides: Any
) -> ComplexityForCausalLM:
    """A `ComplexityForCausalLM` of a named size (see `SIZES`), any config field overridden.

    On the meta device the weights are left unallocated and uninitialised; elsewhere they are initialised.
    """
    config = config_for_size(size, **overrides)
    with torch.device(device if device is not None else "cpu"):
        model = ComplexityForCausalLM(config)
    if model.lm_head.weight.device.type != "meta":
        model.init_weights()
    return model.to(_DTYPES[config.torch_dtype])


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters())


def save_pretrained(model: ComplexityForCausalLM, directory: str | os.PathLike) -> None:
    """Write config.json and model.safetensors into `directory`, each atomically (see `save_state_dict`)."""
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_state_dict(state, model.config, directory)


def save_state_dict(state: dict[str, torch.Tensor], config: ComplexityConfig, directory: str | os.PathLike) -> None:
    """Write a full (unsharded, CPU) state dict of a `ComplexityForCausalLM` and its config, as `save_pretrained`.

    Each file is written atomically (`write_atomically`). A tied LM head is stored once (as the embedding). The
    weights are written before the config, so a crash in between leaves either the old pair or new weights that
    `from_pretrained` checks against the old config.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in state.items()}
    if config.tie_word_embeddings:
        state.pop("lm_head.weight", None)
    dtypes = {str(v.dtype).removeprefix("torch.") for v in state.values()}
    if len(dtypes) != 1:
        raise ValueError(f"all weights must share one dtype to be saved, found {sorted(dtypes)}")
    config = ComplexityConfig.from_dict({**config.to_dict(), "torch_dtype": dtypes.pop()})
    write_atomically(directory / WEIGHTS_NAME, lambda path: save_file(state, path, metadata={"format": "pt"}))
    write_atomically(directory / CONFIG_NAME, lambda path: Path(path).write_text(config.to_json_string()))


def from_pretrained(directory: str | os.PathLike, device: str | torch.device = "cpu") -> ComplexityForCausalLM:
    """Load what `save_pretrained` wrote, checking every tensor's name, shape and dtype against the config.

    Raises ValueError on a missing, truncated or mismatched file. Uses safetensors only: nothing is unpickled.
    """
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_NAME, directory / WEIGHTS_NAME
    for path in (config_path, weights_path):
        if not path.is_file():
            raise ValueError(f"{path} does not exist")
    config = ComplexityConfig.from_json_file(config_path)
    dtype = _DTYPES[config.torch_dtype]
    with torch.device("meta"):
        model = ComplexityForCausalLM(config)
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
