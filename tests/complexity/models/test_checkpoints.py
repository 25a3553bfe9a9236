import json

import pytest
import torch
from safetensors import safe_open

from complexity import from_pretrained, save_pretrained


@pytest.mark.parametrize("overrides", [{}, {"tie_word_embeddings": False, "use_token_routed_mlp": False}])
def test_save_load_round_trip_is_bitwise(make_model, tmp_path, overrides):
    model = make_model(**overrides)
    save_pretrained(model, tmp_path)
    loaded = from_pretrained(tmp_path)
    assert loaded.config == model.config
    assert loaded.state_dict().keys() == model.state_dict().keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    ids = torch.randint(0, 128, (1, 6))
    assert torch.equal(loaded.eval()(ids).logits, model(ids).logits)
    assert (loaded.lm_head.weight is loaded.model.embed_tokens.weight) == model.config.tie_word_embeddings
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]  # no temp files left


def test_tied_head_is_stored_once_and_dtype_recorded(make_model, tmp_path):
    save_pretrained(make_model(dtype=torch.bfloat16), tmp_path)
    with safe_open(tmp_path / "model.safetensors", framework="pt") as f:
        assert "lm_head.weight" not in f.keys() and "model.embed_tokens.weight" in f.keys()
    assert json.loads((tmp_path / "config.json").read_text())["torch_dtype"] == "bfloat16"
    assert from_pretrained(tmp_path).lm_head.weight.dtype == torch.bfloat16


def test_truncated_weights_give_a_clear_error(make_model, tmp_path):
    save_pretrained(make_model(), tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ValueError, match="safetensors"):
        from_pretrained(tmp_path)
    weights.write_bytes(b"\x00" * 3)
    with pytest.raises(ValueError, match="safetensors"):
        from_pretrained(tmp_path)


def test_config_mismatch_gives_a_clear_error(make_model, tmp_path):
    save_pretrained(make_model(), tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "hidden_size": 32}))
    with pytest.raises(ValueError, match="model.embed_tokens.weight"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "num_hidden_layers": 3}))
    with pytest.raises(ValueError, match="missing"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "torch_dtype": "float16"}))
    with pytest.raises(ValueError, match="float16"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").unlink()
    with pytest.raises(ValueError, match="config.json"):
        from_pretrained(tmp_path)


def test_failed_save_keeps_previous_checkpoint(make_model, tmp_path, monkeypatch):
    first = make_model(seed=1)
    save_pretrained(first, tmp_path)
    import complexity.models.pretrained as utils

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(utils, "save_file", crash)
    with pytest.raises(OSError):
        save_pretrained(make_model(seed=2), tmp_path)
    loaded = from_pretrained(tmp_path)
    assert torch.equal(loaded.model.embed_tokens.weight, first.model.embed_tokens.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
