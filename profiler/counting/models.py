"""Real modules to count: zoo models on the meta device, and a training step (forward + backward) under the counter."""

from __future__ import annotations

import torch
from torch import nn

from complexity.config import ComplexityConfig
from complexity.models.modeling import ComplexityForCausalLM
from profiler.counting.counter import FlopCounter, FlopCounts


def zoo_model_for_counting(config: ComplexityConfig, device: str = "meta") -> ComplexityForCausalLM:
    """The zoo model of `config`, built without allocating weights on the meta device.

    A token-routed MLP cannot run on meta (routing reads the ids), so there it is replaced by a dense SwiGLU as
    wide as one expert. Its matmul FLOPs are exactly the routed MLP's: every token passes through exactly one
    expert, whatever the routing, so the MLP costs tokens · 3 · 2 · hidden · expert_width either way. (Parameter
    counts differ; count those on the real config.)
    """
    if device == "meta" and config.use_token_routed_mlp:
        config = ComplexityConfig.from_dict({
            **config.to_dict(), "use_token_routed_mlp": False, "intermediate_size": config.expert_intermediate_size,
        })
    with torch.device(device):
        return ComplexityForCausalLM(config)


def count_training_step(model: nn.Module, input_ids: torch.Tensor) -> FlopCounts:
    """Count forward (with the next-token loss, labels = input_ids) and backward of one step of `model`.

    Works for zoo models and HF causal LMs: both accept `labels` and return an object with `.loss`."""
    with FlopCounter() as counter:
        loss = model(input_ids, labels=input_ids).loss
        loss.backward()
    return counter.counts


def count_forward(model: nn.Module, input_ids: torch.Tensor) -> FlopCounts:
    """Count one forward pass (no loss, no autograd graph)."""
    with FlopCounter() as counter, torch.no_grad():
        model(input_ids)
    return counter.counts
