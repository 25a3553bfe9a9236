"""Complexity: decoder-only language models with GQA, QK-norm, sliding windows and a token-routed MLP."""

from complexity.core.cache import KVCache
from complexity.models.config import SIZES, ComplexityConfig, config_for_size
from complexity.models.modeling import CausalLMOutput, ComplexityForCausalLM, ComplexityModel
from complexity.models.utils import count_parameters, create_complexity_model, from_pretrained, save_pretrained

__all__ = [
    "SIZES",
    "CausalLMOutput",
    "ComplexityConfig",
    "ComplexityForCausalLM",
    "ComplexityModel",
    "KVCache",
    "config_for_size",
    "count_parameters",
    "create_complexity_model",
    "from_pretrained",
    "save_pretrained",
]
