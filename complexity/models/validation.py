"""Checks of what users pass to `ComplexityForCausalLM.forward` and `generate`, each a ValueError naming the
argument and what is allowed.

`check_model_inputs` runs at the top of `forward` and `check_generate_inputs` at the top of `generate`. Checks of
tensor *values* (ids in range, mask values, labels) read the data back to the host, so `forward` skips
`check_model_inputs` while `torch.compile` traces it (a host read would break the graph): a compiled model is
checked by whatever feeds it (`generate`, the data loader). Values of tensors on the meta device are unknown
and not checked; their dtype and shape are.
"""

from __future__ import annotations

import torch

from complexity.config import ComplexityConfig
from complexity.inputs import is_real, require_int

TOKEN_DTYPES = (torch.int64, torch.int32)  # what nn.Embedding indexes with
LABEL_DTYPES = (torch.int64,)  # what F.cross_entropy takes as class targets
IGNORE_INDEX = -100  # a label that takes no part in the loss (HF's and torch's convention)
# Below this a temperature is greedy in all but name: with logits gaps >= 1e-2, exp(-gap / 1e-4) < 1e-43 (fp32's
# smallest subnormal), and dividing logits by far smaller values overflows float32 (1e-45 gives inf and NaN).
MIN_TEMPERATURE = 1e-4


def _has_data(tensor: torch.Tensor) -> bool:
    return tensor.device.type != "meta" and tensor.numel() > 0


def _require_tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def check_token_ids(input_ids: object, vocab_size: int, name: str = "input_ids") -> torch.Tensor:
    """A non-empty [batch, seq] int64/int32 tensor of ids in [0, vocab_size)."""
    ids = _require_tensor(name, input_ids)
    if ids.dtype not in TOKEN_DTYPES:
        raise ValueError(f"{name} has dtype {ids.dtype}; allowed: {', '.join(map(str, TOKEN_DTYPES))} (token ids)")
    if ids.dim() != 2:
        raise ValueError(f"{name} must be [batch, seq], got shape {tuple(ids.shape)}")
    if ids.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(ids.shape)}): give at least one token per row")
    if _has_data(ids):
        low, high = int(ids.min()), int(ids.max())
        if low < 0 or high >= vocab_size:
            raise ValueError(f"{name} must lie in [0, vocab_size={vocab_size}), got values in [{low}, {high}]")
    return ids


def check_attention_mask(attention_mask: object, batch: int, min_length: int) -> torch.Tensor:
    """A [batch, length >= min_length] tensor of 0s (padding) and 1s (tokens), any real or bool dtype."""
    mask = _require_tensor("attention_mask", attention_mask)
    if mask.is_complex():
        raise ValueError(f"attention_mask has dtype {mask.dtype}; allowed: an integer, bool or float tensor of 0/1")
    if mask.dim() != 2 or mask.shape[0] != batch or mask.shape[1] < min_length:
        raise ValueError(f"attention_mask must be [batch={batch}, cached + new >= {min_length}], "
                         f"got shape {tuple(mask.shape)}")
    if _has_data(mask) and not bool(((mask == 0) | (mask == 1)).all()):
        bad = mask[(mask != 0) & (mask != 1)].flatten()[0].item()
        raise ValueError(f"attention_mask must hold only 0 (padding) and 1 (token), found {bad!r}")
    return mask


def check_labels(labels: object, shape: torch.Size, vocab_size: int) -> torch.Tensor:
    """An int64 tensor of input_ids' shape, each label in [0, vocab_size) or -100 (ignored), and at least one
    next-token target not ignored.

    All targets ignored raise rather than return a loss: their mean is 0/0, which torch returns as NaN and would
    silently poison an optimizer step. (The target of position t is labels[t + 1], so labels[:, 0] never counts.)
    """
    labels = _require_tensor("labels", labels)
    if labels.dtype not in LABEL_DTYPES:
        raise ValueError(f"labels has dtype {labels.dtype}; allowed: torch.int64 (as F.cross_entropy takes)")
    if labels.shape != shape:
        raise ValueError(f"labels shape {tuple(labels.shape)} must equal input_ids shape {tuple(shape)}")
    if _has_data(labels):
        valid = (labels == IGNORE_INDEX) | ((labels >= 0) & (labels < vocab_size))
        if not bool(valid.all()):
            bad = labels[~valid].flatten()[0].item()
            raise ValueError(f"labels must lie in [0, vocab_size={vocab_size}) or be {IGNORE_INDEX}, found {bad}")
        if not bool((labels[:, 1:] != IGNORE_INDEX).any()):
            raise ValueError(f"labels: every next-token target (labels[:, 1:]) is {IGNORE_INDEX}, so the mean loss "
                             "would be 0/0 = NaN; give at least one real target, or call without labels")
    return labels


def check_model_inputs(config: ComplexityConfig, input_ids: object, attention_mask: object = None,
                       labels: object = None) -> None:
    """The checks at the top of `forward`: token ids, mask values (its full shape is checked against the cache
    by the model) and labels."""
    ids = check_token_ids(input_ids, config.vocab_size)
    if attention_mask is not None:
        check_attention_mask(attention_mask, ids.shape[0], ids.shape[1])
    if labels is not None:
        check_labels(labels, ids.shape, config.vocab_size)


def check_sampling(max_new_tokens: object, temperature: object, top_k: object, top_p: object) -> None:
    """max_new_tokens an int >= 1; temperature 0 (greedy) or finite in [MIN_TEMPERATURE, inf); top_k None or an
    int >= 1 (bool is not an int); top_p None or in (0, 1]."""
    require_int("max_new_tokens", max_new_tokens, minimum=1)
    if not is_real(temperature) or (temperature != 0 and not MIN_TEMPERATURE <= temperature):
        raise ValueError(f"temperature={temperature!r} must be 0 (greedy) or a finite number >= {MIN_TEMPERATURE:g} "
                         "(smaller ones are greedy in effect and overflow the scaled logits)")
    if top_k is not None:
        require_int("top_k", top_k, note="or None")
    if top_p is not None and not (is_real(top_p) and 0 < top_p <= 1):
        raise ValueError(f"top_p={top_p!r} must be a number in (0, 1] or None")


def check_generate_inputs(config: ComplexityConfig, input_ids: object, attention_mask: object, max_new_tokens: object,
                          temperature: object, top_k: object, top_p: object, eos_token_id: object) -> None:
    """The checks at the top of `generate`, all before the first token is computed: the prompt (non-empty ids
    in range), its mask (0/1, the prompt's shape, left padding only, a token in every row), the sampling
    settings, eos_token_id, and prompt + max_new_tokens within max_position_embeddings."""
    check_sampling(max_new_tokens, temperature, top_k, top_p)
    ids = check_token_ids(input_ids, config.vocab_size)
    if eos_token_id is not None:
        require_int("eos_token_id", eos_token_id, minimum=0, maximum=config.vocab_size - 1,
                    note=f"an id below vocab_size={config.vocab_size}, or None")
    batch, length = ids.shape
    if length + max_new_tokens > config.max_position_embeddings:
        raise ValueError(f"prompt length {length} + max_new_tokens={max_new_tokens} = {length + max_new_tokens} "
                         f"exceeds max_position_embeddings={config.max_position_embeddings}")
    if attention_mask is None:
        return
    mask = check_attention_mask(attention_mask, batch, length)
    if mask.shape[1] != length:
        raise ValueError(f"attention_mask must have the prompt's shape {tuple(ids.shape)}, got {tuple(mask.shape)}")
    if _has_data(mask):
        tokens = mask != 0
        if not bool(tokens.any(dim=1).all()):
            row = int((~tokens.any(dim=1)).nonzero()[0])
            raise ValueError(f"attention_mask row {row} is all padding: every prompt needs at least one token")
        # Left padding: once a row's tokens start, no padding follows (the mask never steps from 1 back to 0).
        right_padded = (tokens[:, :-1] & ~tokens[:, 1:]).any(dim=1)
        if bool(right_padded.any()):
            row = int(right_padded.nonzero()[0])
            raise ValueError(f"attention_mask row {row} has padding after a token: generate needs prompts padded on "
                             "the left (padding first, then the tokens), since new tokens are appended on the right")

