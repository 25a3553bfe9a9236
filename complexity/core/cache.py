"""Key/value caches for incremental decoding: `KVCache` grows, `StaticKVCache` is preallocated.

Both serve a whole model: `update(layer_idx, key, value)` takes a layer's new keys and values [batch, kv_heads,
new, head_dim] and returns the keys and values its queries attend to; `advance(num_tokens)` is called once per
forward, after every layer. Sequence slots count every input position, pads included.

* `KVCache` appends with `torch.cat`, so its shapes change at every step. With a sliding window W a query sees
  itself and the W-1 keys before it, so a layer keeps only its last W-1 keys: the cache never grows past the window.
* `StaticKVCache` allocates [batch, kv_heads, capacity, head_dim] per layer once and writes each step's keys in
  place (`index_copy_` with slot indices on the device). Every decode step then has the same shapes and reads no
  Python counter, so one compiled decode step serves every position (the approach of gpt-fast and of
  transformers' `StaticCache`). Without a window the capacity is `max_length` slots and slot s sits at index s;
  with a window W < max_length it is a ring of W entries, slot s at index s mod W: a decode step writes its key
  first (overwriting slot s - W, which no query sees any more) and attends over the W entries, exactly the window.
  A forward of several tokens attends over the ring before its writes plus its own keys, then keeps the last W.
  Queries attend under a mask built from the slot each entry holds: later slots, slots outside the window, empty
  entries and padding are masked out. The cache also remembers which entries hold real tokens and how many tokens
  each row has seen, so decode steps need no attention mask and left-padded rows get their own positions.
"""

from __future__ import annotations

import torch

from complexity.config import ComplexityConfig
from complexity.inputs import require_int


class KVCache:
    def __init__(self, num_layers: int, sliding_window: int | None = None) -> None:
        self.sliding_window = sliding_window
        self.keys: list[torch.Tensor | None] = [None] * num_layers
        self.values: list[torch.Tensor | None] = [None] * num_layers
        self.seen_tokens = 0  # sequence slots already processed; the next token's slot index

    @property
    def num_cached(self) -> int:
        """Keys held per layer (the same for every layer)."""
        k = self.keys[0]
        return 0 if k is None else k.shape[-2]

    def update(self, layer_idx: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's keys/values; return all keys/values the step's queries attend to."""
        if self.keys[layer_idx] is not None:
            key = torch.cat([self.keys[layer_idx], key], dim=-2)
            value = torch.cat([self.values[layer_idx], value], dim=-2)
        keep = key.shape[-2] if self.sliding_window is None else min(key.shape[-2], self.sliding_window - 1)
        self.keys[layer_idx] = key[..., key.shape[-2] - keep:, :]
        self.values[layer_idx] = value[..., value.shape[-2] - keep:, :]
        return key, value

    def advance(self, num_tokens: int) -> None:
        """Called once per forward, after every layer has been updated."""
        self.seen_tokens += num_tokens


class StaticKVCache:
    """A preallocated cache for `max_length` sequence slots per row (prompt, pads and generated tokens together);
    with a sliding window W < max_length it holds only the last W (a ring).

    Per forward: `begin(is_token)` claims the next slots and returns the new tokens' positions and what the mask
    needs; each layer's `update` writes its keys and values; `advance` moves the slot counter. All bookkeeping is
    device tensors.
    """

    def __init__(self, config: ComplexityConfig, batch_size: int, max_length: int,
                 device: torch.device | str | None = None, dtype: torch.dtype = torch.float32) -> None:
        require_int("batch_size", batch_size)
        require_int("max_length", max_length, maximum=config.max_position_embeddings,
                    note=f"slots per row, at most max_position_embeddings={config.max_position_embeddings}")
        self.batch_size, self.max_length = batch_size, max_length
        self.sliding_window = config.sliding_window
        self.capacity = min(max_length, config.sliding_window or max_length)
        shape = (batch_size, config.num_key_value_heads, self.capacity, config.head_dim)
        # Zeros, not torch.empty: a masked-out entry still enters SDPA's product with a zero weight, and garbage
        # memory may hold NaN (0 * NaN = NaN).
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.num_hidden_layers)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.num_hidden_layers)]
        self.entry_slot = torch.full((self.capacity,), -1, dtype=torch.long, device=device)  # -1: empty
        self.entry_is_token = torch.zeros(batch_size, self.capacity, dtype=torch.bool, device=device)  # pads: False
        self.token_count = torch.zeros(batch_size, dtype=torch.long, device=device)  # real tokens seen per row
        self.next_slot = torch.zeros((), dtype=torch.long, device=device)
        # This forward's entries to write (set by `begin`), and whether its keys are attended before the writes.
        self._write_index = self._write_from = None
        self._attend_before_write = False

    @property
    def seen_tokens(self) -> int:
        """Slots already filled (reads the device counter: for checks outside compiled code)."""
        return int(self.next_slot)

    def begin(self, is_token: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Claim slots for this forward's tokens; is_token [batch, new] is False at pads. Returns the new tokens'
        positions [batch, new] (real tokens before them in their row; a pad gets its next token's position, 0 at
        the start) and their slots [new], and the slot [keys] and is-token flags [batch, keys] of the keys the
        queries will attend to, in the order `update` returns them."""
        new = is_token.shape[-1]
        is_token = is_token.bool()
        slots = self.next_slot + torch.arange(new, device=self.next_slot.device)
        positions = (self.token_count[:, None] + is_token.long().cumsum(-1) - 1).clamp(min=0)
        self.token_count.add_(is_token.long().sum(-1))
        # Several tokens into a ring: the earlier queries still need entries the later tokens overwrite.
        self._attend_before_write = new > 1 and self.capacity < self.max_length
        if self._attend_before_write:
            key_slots = torch.cat([self.entry_slot, slots])
            key_is_token = torch.cat([self.entry_is_token, is_token], dim=-1)
        keep = min(new, self.capacity)  # a forward longer than the ring keeps its last `capacity` tokens
        self._write_from = new - keep
        self._write_index = slots[self._write_from:] % self.capacity
        self.entry_slot.index_copy_(0, self._write_index, slots[self._write_from:])
        self.entry_is_token.index_copy_(1, self._write_index, is_token[:, self._write_from:])
        if not self._attend_before_write:
            key_slots, key_is_token = self.entry_slot, self.entry_is_token
        return positions, slots, key_slots, key_is_token

    def update(self, layer_idx: int, key: torch.Tensor, value: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write this step's keys/values at the entries `begin` chose; return the keys/values to attend to."""
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        attend = (torch.cat([keys, key], dim=-2), torch.cat([values, value], dim=-2)) \
            if self._attend_before_write else (keys, values)
        keys.index_copy_(2, self._write_index, key[..., self._write_from:, :])
        values.index_copy_(2, self._write_index, value[..., self._write_from:, :])
        return attend

    def advance(self, num_tokens: int) -> None:
        """Called once per forward, after every layer has been updated."""
        self.next_slot.add_(num_tokens)
