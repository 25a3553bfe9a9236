"""Build models by size name, count their parameters, and save/load them as config.json + model.safetensors
(the saving and loading live in `complexity.models.pretrained`, shared with the model's own methods)."""

from __future__ import annotations

import os
from typing import Any

import torch

from complexity.config import config_for_size
from complexity.models.modeling import ComplexityForCausalLM
from complexity.models.pretrained import (
    CONFIG_NAME,
    TORCH_DTYPES,
    WEIGHTS_NAME,
    load_pretrained,
    save_pretrained,
    save_state_dict,
)

__all__ = ["CONFIG_NAME", "WEIGHTS_NAME", "count_parameters", "create_complexity_model", "from_pretrained",
           "save_pretrained", "save_state_dict"]


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
    return model.to(TORCH_DTYPES[config.torch_dtype])


def count_parameters(model: torch.nn.Module) -> int:
    """Distinct parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters())


def from_pretrained(directory: str | os.PathLike, device: str | torch.device = "cpu") -> ComplexityForCausalLM:
    """The `ComplexityForCausalLM` `save_pretrained` wrote into `directory` (see `load_pretrained`)."""
    return load_pretrained(ComplexityForCausalLM, directory, device)
