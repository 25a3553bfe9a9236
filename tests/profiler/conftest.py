"""Fixtures of the profiler tests; shared helpers live in profiler_testing.py."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def hf_meta_count():
    """Parameters of the transformers model built on the meta device from a config.json dict."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")

    def count(config: dict) -> int:
        cfg = transformers.AutoConfig.for_model(**config)
        with torch.device("meta"):
            model = transformers.AutoModelForCausalLM.from_config(cfg)
        return sum(p.numel() for p in model.parameters())

    return count
