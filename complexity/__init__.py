"""Complexity: decoder-only language models with GQA, QK-norm, sliding windows and a token-routed MLP.

Names are imported on first use (PEP 562), so `complexity.config` — all the analytic profiler reads —
loads without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SIZES": "complexity.config",
    "ComplexityConfig": "complexity.config",
    "config_for_size": "complexity.config",
    "KVCache": "complexity.core.cache",
    "CausalLMOutput": "complexity.models.modeling",
    "ComplexityForCausalLM": "complexity.models.modeling",
    "ComplexityModel": "complexity.models.modeling",
    "count_parameters": "complexity.models.utils",
    "create_complexity_model": "complexity.models.utils",
    "from_pretrained": "complexity.models.utils",
    "save_pretrained": "complexity.models.utils",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'complexity' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
