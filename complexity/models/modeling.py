"""`ComplexityModel` (the decoder stack) and `ComplexityForCausalLM` (plus the LM head, loss and `generate`).

Construction allocates parameters but does not initialise them; `init_weights()` does. So a model can be built on
the meta device (no memory, instant even at 1B) and later materialised with `to_empty(device=...)` followed by
`init_weights()` or a checkpoint load.

With the token-routed MLP off, a zoo model is transformers' Qwen3ForCausalLM (QK-norm on; a sliding window maps to
Qwen3's `layer_types = ["sliding_attention"] * layers`) or LlamaForCausalLM (QK-norm off): the parameter names are
the same, so the state dict loads strictly, and the logits agree to a few float32 ulps
(tests/complexity/models/test_hf_parity.py). The one numerical difference: our RoPE table is computed in float64
and rounded once, transformers' in float32. `rope_theta` maps to `rope_parameters={"rope_type": "default",
"rope_theta": ...}`; there is no RoPE scaling, no attention bias and no dropout.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from complexity.config import ComplexityConfig
from complexity.core.attention import build_attention_mask, slot_attention_mask
from complexity.core.cache import KVCache, StaticKVCache
from complexity.core.layer import ComplexityDecoderLayer
from complexity.core.mlp import SwiGLUMLP
from complexity.core.normalization import RMSNorm
from complexity.core.rotary import RotaryEmbedding
from complexity.core.token_routed_mlp import TokenRoutedMLP, route_tokens
from complexity.inputs import require_int
from complexity.models import pretrained
from complexity.models.validation import check_generate_inputs, check_model_inputs


@dataclass
class CausalLMOutput:
    loss: torch.Tensor | None
    logits: torch.Tensor
    past_key_values: KVCache | StaticKVCache | None


class ComplexityModel(nn.Module):
    def __init__(self, config: ComplexityConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(ComplexityDecoderLayer(config, i) for i in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.rotary_emb = RotaryEmbedding(config)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        past_key_values: KVCache | StaticKVCache | None = None,
        use_cache: bool = False,
    ) -> tuple[torch.Tensor, KVCache | StaticKVCache | None]:
        """Final hidden states [batch, seq, hidden] and the cache (None unless use_cache or one was passed).

        attention_mask: [batch, past + seq], 1 for tokens and 0 for padding, covering cached slots too (as in HF).
        With a `StaticKVCache` it may be None after the first forward: the cache remembers earlier pads, and None
        means the new tokens are all real (what a compiled decode step passes).
        """
        config = self.config
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must be [batch, seq], got shape {tuple(input_ids.shape)}")
        batch, seq = input_ids.shape
        cache = past_key_values if past_key_values is not None else (
            KVCache(config.num_hidden_layers, config.sliding_window) if use_cache else None
        )
        if isinstance(cache, StaticKVCache):
            position_ids, attn_mask = self._static_cache_positions_and_mask(input_ids, attention_mask, cache)
        else:
            position_ids, attn_mask = self._positions_and_mask(input_ids, attention_mask, cache)
        # Routing depends only on the ids: compute it once for all layers. The ids' range is checked where they
        # enter the model (ComplexityForCausalLM), outside any compiled graph.
        routing = route_tokens(input_ids, config) if config.use_token_routed_mlp else None
        cos, sin = self.rotary_emb(position_ids)

        hidden_states = self.embed_tokens(input_ids)
        for layer in self.layers:
            hidden_states = layer(hidden_states, cos, sin, attn_mask, cache, routing)
        if cache is not None:
            cache.advance(seq)
        return self.norm(hidden_states), cache

    def _positions_and_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                            cache: KVCache | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Positions [batch, seq] and the attention mask without a cache or with a growing `KVCache`."""
        config = self.config
        batch, seq = input_ids.shape
        past = cache.seen_tokens if cache is not None else 0
        _check_length_and_mask(config, batch, past, seq, attention_mask)
        if attention_mask is None:
            position_ids = torch.arange(past, past + seq, device=input_ids.device).expand(batch, seq)
        else:
            # Positions count real tokens only, so a left-padded row gets the same positions as when alone.
            position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, past:]
        num_keys = seq + (cache.num_cached if cache is not None else 0)
        attn_mask = build_attention_mask(past, seq, num_keys, attention_mask, config.sliding_window, input_ids.device)
        return position_ids, attn_mask

    def _static_cache_positions_and_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                                         cache: StaticKVCache) -> tuple[torch.Tensor, torch.Tensor]:
        """Positions [batch, seq] and the mask over all of a `StaticKVCache`'s slots, from device tensors only."""
        batch, seq = input_ids.shape
        if not torch.compiler.is_compiling():  # reads the slot counter on the host: eager calls only
            if batch != cache.batch_size:
                raise ValueError(f"input_ids has batch {batch} but the StaticKVCache was made for "
                                 f"batch_size={cache.batch_size}")
            past = cache.seen_tokens
            if past + seq > cache.max_length:
                raise ValueError(f"sequence length {past + seq} (cached {past} + new {seq}) exceeds the "
                                 f"StaticKVCache's max_length={cache.max_length}")
            _check_length_and_mask(self.config, batch, past, seq, attention_mask)
        if attention_mask is None:
            is_token = torch.ones(batch, seq, dtype=torch.bool, device=input_ids.device)
        else:
            is_token = attention_mask[:, -seq:].bool()
        position_ids, query_slots, key_slots, key_is_token = cache.begin(is_token)
        attn_mask = slot_attention_mask(query_slots, key_slots, key_is_token, self.config.sliding_window)
        return position_ids, attn_mask


def _check_length_and_mask(config: ComplexityConfig, batch: int, past: int, seq: int,
                           attention_mask: torch.Tensor | None) -> None:
    if past + seq > config.max_position_embeddings:
        raise ValueError(
            f"sequence length {past + seq} (cached {past} + new {seq}) exceeds max_position_embeddings="
            f"{config.max_position_embeddings}"
        )
    if attention_mask is not None and tuple(attention_mask.shape) != (batch, past + seq):
        raise ValueError(
            f"attention_mask must have shape (batch, cached + new) = {(batch, past + seq)}, "
            f"got {tuple(attention_mask.shape)}"
        )


class ComplexityForCausalLM(nn.Module):
    def __init__(self, config: ComplexityConfig) -> None:
        super().__init__()
        self.config = config
        self.model = ComplexityModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.tie_weights()

    def save_pretrained(self, directory: str | os.PathLike) -> None:
        """HF-style method form of `complexity.models.utils.save_pretrained(self, directory)`: the same code."""
        pretrained.save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, directory: str | os.PathLike, device: str | torch.device = "cpu") -> ComplexityForCausalLM:
        """HF-style method form of `complexity.models.utils.from_pretrained(directory, device)`: the same files,
        the same checks, the same code."""
        return pretrained.load_pretrained(cls, directory, device)

    def tie_weights(self) -> None:
        """Share the embedding matrix with the LM head (Press & Wolf 2017) when the config asks for it."""
        if self.config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight

    @torch.no_grad()
    def init_weights(self) -> None:
        """Weights ~ N(0, initializer_range); residual output projections (o_proj, down_proj) scaled by
        1/sqrt(2 * num_hidden_layers) as in GPT-2 (Radford et al. 2019, section 2.3); norm weights 1."""
        std = self.config.initializer_range
        residual_std = std / math.sqrt(2 * self.config.num_hidden_layers)
        for module in self.modules():
            if isinstance(module, RMSNorm):
                module.reset_parameters()
            elif isinstance(module, nn.Embedding):
                nn.init.normal_(module.weight, std=std)
            elif isinstance(module, (SwiGLUMLP, TokenRoutedMLP)):
                for name, param in module.named_parameters():
                    nn.init.normal_(param, std=residual_std if name.startswith("down_proj") else std)
        for layer in self.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                nn.init.normal_(proj.weight, std=std)
            nn.init.normal_(layer.self_attn.o_proj.weight, std=residual_std)
        if not self.config.tie_word_embeddings:
            nn.init.normal_(self.lm_head.weight, std=std)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        past_key_values: KVCache | StaticKVCache | None = None,
        use_cache: bool = False,
        logits_to_keep: int = 0,
    ) -> CausalLMOutput:
        """Logits [batch, seq, vocab]; with labels (same shape as input_ids, -100 = ignore) the mean next-token
        cross-entropy: position t predicts labels[t + 1], the shift happens here, once.

        logits_to_keep > 0 runs the LM head on the last logits_to_keep positions only (all of them when it exceeds
        seq), so logits is [batch, min(logits_to_keep, seq), vocab]; 0 keeps every position.
        """
        if not torch.compiler.is_compiling():  # value checks read tensors back to the host: not while tracing
            check_model_inputs(self.config, input_ids, attention_mask, labels)
        return self._forward(input_ids, attention_mask, labels, past_key_values, use_cache, logits_to_keep)

    def _forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, labels: torch.Tensor | None,
                 past_key_values: KVCache | StaticKVCache | None, use_cache: bool,
                 logits_to_keep: int) -> CausalLMOutput:
        """`forward` without the value checks of its inputs: for `generate`'s steps, whose prompt was checked once
        and whose later tokens and mask the model made itself (no host read-back per decoded token)."""
        # HF's name and meaning (LlamaForCausalLM), but unlike Llama an int only (Llama also takes a tensor of
        # positions), and it must be 0 with labels (Llama does not check; its loss would get too few logits).
        require_int("logits_to_keep", logits_to_keep, minimum=0, note="0 = every position")
        if labels is not None and logits_to_keep:
            raise ValueError(f"logits_to_keep={logits_to_keep} must be 0 when labels are given: the loss needs "
                             "the logits of every position")
        hidden_states, cache = self.model(input_ids, attention_mask, past_key_values, use_cache)
        logits = self.lm_head(hidden_states[:, -logits_to_keep:] if logits_to_keep else hidden_states)
        loss = None
        if labels is not None:
            if labels.shape != input_ids.shape:
                raise ValueError(f"labels shape {tuple(labels.shape)} must equal input_ids shape {tuple(input_ids.shape)}")
            # Shift the labels, not the logits: slicing [batch, seq, vocab] logits would copy them.
            next_labels = F.pad(labels[:, 1:], (0, 1), value=-100)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), next_labels.reshape(-1),
                                   ignore_index=-100)
        return CausalLMOutput(loss=loss, logits=logits, past_key_values=cache)

    @torch.no_grad()
    def generate(
        self,
        input_ids: torch.Tensor,
        max_new_tokens: int,
        temperature: float = 0.0,
        top_k: int | None = None,
        top_p: float | None = None,
        eos_token_id: int | None = None,
        attention_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        cache_implementation: str = "dynamic",
        compile: bool = False,
    ) -> torch.Tensor:
        """Extend each row by up to max_new_tokens tokens with a KV cache; returns [batch, seq + generated].

        temperature 0 is greedy; otherwise sample from softmax(logits / temperature) restricted to the top_k
        tokens and/or the smallest set whose probability reaches top_p. Pad prompts on the left and pass their
        attention_mask: each row then gets the tokens it would get alone. A row that emits eos_token_id keeps
        emitting it (or pad_token_id when set); generation stops early once every row has finished.

        cache_implementation: "dynamic" (`KVCache`, grows by concatenation) or "static" (`StaticKVCache` of
        seq + max_new_tokens slots, written in place). compile=True runs every decode step after the prompt through
        one `torch.compile(fullgraph=True)` graph, which needs the static cache (its shapes never change); the
        prompt's forward stays eager. The first call compiles (seconds to minutes on a CPU); later calls with the
        same shapes reuse the graph.
        """
        check_generate_inputs(self.config, input_ids, attention_mask, max_new_tokens, temperature, top_k, top_p,
                              eos_token_id)
        if cache_implementation not in CACHE_IMPLEMENTATIONS:
            raise ValueError(f"cache_implementation={cache_implementation!r} is not one of {CACHE_IMPLEMENTATIONS}")
        if compile and cache_implementation != "static":
            raise ValueError("compile=True needs cache_implementation='static': the dynamic cache changes shape "
                             "at every step, so one compiled decode step cannot serve them all")
        batch, prompt = input_ids.shape
        if cache_implementation == "static":
            weight = self.model.embed_tokens.weight
            cache = StaticKVCache(self.config, batch, prompt + max_new_tokens, weight.device, weight.dtype)
        else:
            cache = KVCache(self.config.num_hidden_layers, self.config.sliding_window)
        decode_step = compiled_next_token_logits() if compile else _next_token_logits
        finished = torch.zeros(batch, dtype=torch.bool, device=input_ids.device)
        fill = self.config.pad_token_id if self.config.pad_token_id is not None else eos_token_id
        tokens, mask = [input_ids], attention_mask
        # The prompt's forward computes the last position's logits only: never [batch, prompt, vocab].
        logits = _next_token_logits(self, input_ids, mask, cache)
        if cache_implementation == "static":
            mask = None  # the static cache remembers the prompt's pads; every later token is real
        for step in range(max_new_tokens):
            next_token = _choose_next(logits, temperature, top_k, top_p, generator)
            if eos_token_id is not None:
                next_token = torch.where(finished, torch.full_like(next_token, fill), next_token)
                finished |= next_token == eos_token_id
            tokens.append(next_token[:, None])
            if step == max_new_tokens - 1 or (eos_token_id is not None and bool(finished.all())):
                break
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(batch, 1)], dim=-1)
            logits = decode_step(self, next_token[:, None], mask, cache)
        return torch.cat(tokens, dim=-1)


CACHE_IMPLEMENTATIONS = ("dynamic", "static")


def _next_token_logits(model: ComplexityForCausalLM, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                       cache: KVCache | StaticKVCache) -> torch.Tensor:
    """One cached forward of `generate`: the float32 logits [batch, vocab] of the last position."""
    out = model._forward(input_ids, attention_mask, None, cache, False, logits_to_keep=1)
    return out.logits[:, -1].float()


@functools.cache
def compiled_next_token_logits() -> Callable[..., torch.Tensor]:
    """`_next_token_logits` under `torch.compile(fullgraph=True)`, built on first use and shared by every model
    (dynamo guards on shapes and module structure, so models of the same config and caches of the same size share
    a graph). With a `StaticKVCache` and a one-token input it compiles once for every position."""
    return torch.compile(_next_token_logits, fullgraph=True)


def _choose_next(
    logits: torch.Tensor, temperature: float, top_k: int | None, top_p: float | None, generator: torch.Generator | None
) -> torch.Tensor:
    if temperature == 0:
        return logits.argmax(-1)
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1:
        sorted_logits, sorted_idx = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # Drop a token when the tokens ranked above it already reach top_p (the top token always stays).
        drop = probs.cumsum(-1) - probs >= top_p
        logits = logits.masked_fill(torch.zeros_like(drop).scatter(-1, sorted_idx, drop), float("-inf"))
    return torch.multinomial(logits.softmax(-1), 1, generator=generator).squeeze(-1)
