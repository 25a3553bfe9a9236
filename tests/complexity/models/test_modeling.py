import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from complexity import ComplexityForCausalLM, KVCache, count_parameters, create_complexity_model
from complexity.models.modeling import _choose_next

# Exact counts documented in README (total, non-embedding, active per token), vocab 32,000, tied embeddings.
DOCUMENTED_SIZES = {
    "tiny": (12_914_688, 4_722_688, 10_260_480),
    "20m": (21_387_584, 11_147_584, 15_489_344),
    "small": (40_510_976, 24_126_976, 26_355_200),
    "base": (100_094_208, 75_518_208, 57_626_880),
    "medium": (303_353_856, 270_585_856, 147_640_320),
    "large": (643_772_928, 594_620_928, 304_034_304),
    "1b": (1_147_769_856, 1_082_233_856, 524_915_712),
}


@pytest.mark.parametrize("size", DOCUMENTED_SIZES)
def test_every_size_builds_on_meta_with_documented_counts(size):
    model = create_complexity_model(size, device="meta")
    config = model.config
    assert model.lm_head.weight.is_meta
    total = count_parameters(model)
    embedding = config.vocab_size * config.hidden_size
    mlp = sum(p.numel() for name, p in model.named_parameters() if ".mlp." in name)
    active = total - mlp + mlp // config.num_experts
    assert (total, total - embedding, active) == DOCUMENTED_SIZES[size]
    # The same count from the architecture by hand (no biases; q/k norms over head_dim).
    h, hd, L = config.hidden_size, config.head_dim, config.num_hidden_layers
    attn = 2 * h * config.num_attention_heads * hd + 2 * h * config.num_key_value_heads * hd + 2 * hd
    assert total == embedding + L * (attn + 3 * h * config.intermediate_size + 2 * h) + h


def test_meta_build_materialises_with_to_empty_and_init(make_model):
    reference = make_model()
    torch.manual_seed(3)
    reference.init_weights()
    with torch.device("meta"):
        model = ComplexityForCausalLM(reference.config)
    model.to_empty(device="cpu")
    model.tie_weights()
    torch.manual_seed(3)
    model.init_weights()
    for (name, a), b in zip(reference.state_dict().items(), model.state_dict().values()):
        assert torch.equal(a, b), name


def test_init_statistics(make_model):
    model = make_model(num_hidden_layers=8, hidden_size=256, intermediate_size=1024, vocab_size=4096)
    std = model.config.initializer_range
    assert abs(model.model.embed_tokens.weight.std().item() - std) < 0.1 * std
    o_std = torch.cat([layer.self_attn.o_proj.weight.flatten() for layer in model.model.layers]).std().item()
    assert abs(o_std - std / 4) < 0.1 * std / 4  # 1/sqrt(2 * 8 layers)
    assert torch.equal(model.model.norm.weight, torch.ones(256))
    assert model.lm_head.weight is model.model.embed_tokens.weight


def test_forward_shapes_dtypes_and_loss(make_model):
    model = make_model()
    ids = torch.randint(0, 128, (2, 10))
    out = model(ids, labels=ids)
    assert out.logits.shape == (2, 10, 128) and out.logits.dtype == torch.float32 and out.past_key_values is None
    manual = torch.nn.functional.cross_entropy(out.logits[:, :-1].reshape(-1, 128), ids[:, 1:].reshape(-1))
    torch.testing.assert_close(out.loss, manual)
    labels = ids.clone()
    labels[:, :5] = -100
    masked = torch.nn.functional.cross_entropy(out.logits[:, 4:-1].reshape(-1, 128), ids[:, 5:].reshape(-1))
    torch.testing.assert_close(model(ids, labels=labels).loss, masked)
    bf16 = make_model(dtype=torch.bfloat16)
    assert bf16(ids).logits.dtype == torch.bfloat16


def test_forward_rejects_a_sequence_past_max_position_embeddings(make_model):
    # Token ids, masks and labels are checked in complexity/models/validation.py (tests in test_validation.py).
    with pytest.raises(ValueError, match=r"sequence length 257 \(cached 0 \+ new 257\) exceeds "
                                         "max_position_embeddings=256"):
        make_model()(torch.zeros(1, 257, dtype=torch.long))


@pytest.mark.parametrize("keep", [1, 3, 10, 15])
def test_logits_to_keep_gives_the_last_positions_of_the_full_logits(make_model, keep):
    model = make_model()
    ids = torch.randint(0, 128, (2, 10))
    full = model(ids).logits
    kept = model(ids, logits_to_keep=keep).logits
    assert kept.shape == (2, min(keep, 10), 128)
    # Equal to float tolerance, not bitwise: on the CPU the LM head's matmul over fewer rows may take another kernel
    # and reduction order, so the logits can differ in their last bits (up to ~2e-7 here in fp32).
    torch.testing.assert_close(kept, full[:, -keep:])
    assert torch.equal(model(ids, logits_to_keep=0).logits, full)
    # Decoding with a cache: one new token, its logits only.
    cache = model(ids[:, :9], use_cache=True).past_key_values
    torch.testing.assert_close(model(ids[:, 9:], past_key_values=cache, logits_to_keep=1).logits, full[:, -1:])


@pytest.mark.parametrize("keep", [-1, 1.0, True, "1", None])
def test_logits_to_keep_rejects_non_integers_and_negatives(make_model, keep):
    with pytest.raises(ValueError, match="logits_to_keep"):
        make_model()(torch.zeros(1, 4, dtype=torch.long), logits_to_keep=keep)


def test_logits_to_keep_must_be_zero_with_labels(make_model):
    ids = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="logits_to_keep"):
        make_model()(ids, labels=ids, logits_to_keep=1)


def uncached_greedy(model, ids, steps):
    for _ in range(steps):
        next_token = model(ids).logits[:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, next_token], dim=-1)
    return ids


@pytest.mark.parametrize("overrides", [{}, {"sliding_window": 5}, {"use_token_routed_mlp": False, "use_qk_norm": False}])
def test_cached_greedy_generation_equals_uncached_recomputation(make_model, overrides):
    model = make_model(dtype=torch.float64, **overrides)
    ids = torch.randint(0, 128, (2, 7))
    cached = model.generate(ids, max_new_tokens=20)
    assert torch.equal(cached, uncached_greedy(model, ids, 20))


def test_window_cache_stays_bounded(make_model):
    model = make_model(sliding_window=4)
    out = model(torch.randint(0, 128, (1, 9)), use_cache=True)
    cache = out.past_key_values
    assert isinstance(cache, KVCache) and cache.num_cached == 3 and cache.seen_tokens == 9
    model(torch.tensor([[1]]), past_key_values=cache)
    assert cache.num_cached == 3 and cache.seen_tokens == 10


def test_chunked_prefill_equals_full_forward(make_model):
    model = make_model(dtype=torch.float64, sliding_window=6)
    ids = torch.randint(0, 128, (2, 12))
    full = model(ids).logits
    cache = model(ids[:, :5], use_cache=True).past_key_values
    rest = model(ids[:, 5:], past_key_values=cache).logits
    torch.testing.assert_close(rest, full[:, 5:])


@pytest.mark.parametrize("overrides", [{}, {"sliding_window": 4}])
def test_left_padded_batch_generates_what_each_row_generates_alone(make_model, overrides):
    model = make_model(dtype=torch.float64, **overrides)
    rows = [torch.randint(0, 128, (n,)) for n in (9, 4, 6)]
    width = max(len(r) for r in rows)
    batch = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.long)
    for i, r in enumerate(rows):
        batch[i, width - len(r):] = r
        mask[i, width - len(r):] = 1
    together = model.generate(batch, max_new_tokens=12, attention_mask=mask)
    for i, r in enumerate(rows):
        alone = model.generate(r[None], max_new_tokens=12)
        assert torch.equal(together[i, width:], alone[0, len(r):]), f"row {i}"


def full_logit_generate(model, ids, steps, attention_mask=None, temperature=0.0, top_k=None, top_p=None,
                        generator=None):
    """`generate`'s decoding loop (KV cache, no eos) with the LM head over every new position, not the last only."""
    cache = KVCache(model.config.num_hidden_layers, model.config.sliding_window)
    tokens = step_input = ids
    mask = attention_mask
    for _ in range(steps):
        logits = model(step_input, attention_mask=mask, past_key_values=cache).logits[:, -1].float()
        step_input = _choose_next(logits, temperature, top_k, top_p, generator)[:, None]
        tokens = torch.cat([tokens, step_input], dim=-1)
        if mask is not None:
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=-1)
    return tokens


@pytest.mark.parametrize("sampling", [{}, {"temperature": 1.0}, {"temperature": 0.8, "top_k": 20, "top_p": 0.9}])
@pytest.mark.parametrize("padded", [False, True])
def test_generate_gives_the_tokens_of_full_logit_decoding(make_model, sampling, padded):
    # float64: last-position-only logits differ from the full ones by ~1e-16, far below any gap between top tokens.
    model = make_model(dtype=torch.float64)
    ids = torch.randint(0, 128, (3, 9))
    mask = None
    if padded:
        mask = torch.ones_like(ids)
        mask[0, :5] = mask[2, :2] = 0
    expected = full_logit_generate(model, ids, 16, mask, generator=torch.Generator().manual_seed(5), **sampling)
    got = model.generate(ids, 16, attention_mask=mask, generator=torch.Generator().manual_seed(5), **sampling)
    assert torch.equal(got, expected)


class LargestFloatOutput(TorchDispatchMode):
    """Bytes of the largest floating-point tensor any aten op allocates inside the mode (views allocate nothing)."""

    def __init__(self) -> None:
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:
            for value in tree_leaves(out):
                if isinstance(value, torch.Tensor) and value.is_floating_point():
                    self.bytes = max(self.bytes, value.numel() * value.element_size())
        return out


@pytest.mark.parametrize("cache_implementation", ["dynamic", "static"])
def test_generate_prefill_never_holds_the_logits_of_every_prompt_position(make_model, cache_implementation):
    batch, prompt, vocab = 2, 64, 4096  # the prompt's fp32 logits (2 MiB) dwarf every other tensor at hidden 64
    model = make_model(vocab_size=vocab)
    ids = torch.randint(0, vocab, (batch, prompt))
    all_logits = batch * prompt * vocab * 4
    with torch.no_grad(), LargestFloatOutput() as forward:
        model(ids)
    assert forward.bytes == all_logits  # the counter sees them when they are computed
    with LargestFloatOutput() as generate:
        model.generate(ids, max_new_tokens=4, cache_implementation=cache_implementation)
    assert generate.bytes < all_logits, f"largest tensor {generate.bytes} bytes"


def test_generate_eos_sampling_and_bad_arguments(make_model):
    model = make_model()
    ids = torch.randint(0, 128, (2, 3))
    first = model.generate(ids, 1)[:, -1]
    out = model.generate(ids, 10, eos_token_id=int(first[0]))
    assert (out[0, 3:] == first[0]).all()  # finished rows keep emitting eos
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    s1 = model.generate(ids, 8, temperature=1.0, top_k=5, top_p=0.9, generator=g1)
    s2 = model.generate(ids, 8, temperature=1.0, top_k=5, top_p=0.9, generator=g2)
    assert torch.equal(s1, s2)
    top1 = model.generate(ids, 8, temperature=1.0, top_k=1)
    assert torch.equal(top1, model.generate(ids, 8))  # top_k=1 sampling is greedy
    for kwargs, field in [({"temperature": -1.0}, "temperature"), ({"top_k": 0}, "top_k"), ({"top_p": 1.5}, "top_p")]:
        with pytest.raises(ValueError, match=field):
            model.generate(ids, 2, **kwargs)
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(ids, -1)


def test_loss_falls_when_overfitting_one_batch(make_model):
    model = make_model().train()
    ids = torch.randint(0, 128, (4, 16))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = model(ids, labels=ids).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
