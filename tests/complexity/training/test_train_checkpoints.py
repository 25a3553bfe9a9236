import json

import pytest
import torch
from safetensors.torch import load_file, save_file

import complexity.training.checkpoint as ckpt
from complexity.training.checkpoint import load_checkpoint
from complexity.training.train import train


@pytest.fixture
def trained(make_train_config):
    """A finished 3-step run with its checkpoint at step 3."""
    cfg = make_train_config(max_steps=3, save_interval=3)
    train(cfg)
    return cfg


def _step_dir(cfg):
    return ckpt.checkpoint_root(cfg.output_dir) / "step-00000003"


def test_checkpoint_holds_weights_optimizer_rng_and_position(trained):
    state = load_checkpoint(trained.output_dir)
    assert state.step == 3 and state.samples_seen == 3 * 4  # micro-batch 2 x grad_accum 2
    assert sorted(p.name for p in state.directory.iterdir()) == [
        "config.json", "model.safetensors", "optimizer.safetensors", "trainer_state.json"]
    assert state.model_state["lm_head.weight"] is not None and state.config.hidden_size == 32
    moments = state.optimizer_state["state"]["model.layers.0.mlp.gate_proj"]
    assert moments["exp_avg"].shape == (4, 32, 16) and float(moments["step"]) == 3.0
    assert state.rng["torch_cpu"].dtype == torch.uint8
    assert (ckpt.checkpoint_root(trained.output_dir) / "latest").read_text().strip() == "step-00000003"


def test_crash_while_writing_keeps_the_previous_checkpoint(make_train_config, monkeypatch):
    cfg = make_train_config(max_steps=6, save_interval=3)
    real_save = ckpt.save_file
    calls = []

    def crash_on_second_save(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 2:  # the optimizer file of the step-6 checkpoint, after its weights were written
            raise OSError("simulated crash inside the write")
        return real_save(tensors, path, metadata=metadata)

    monkeypatch.setattr(ckpt, "save_file", crash_on_second_save)
    with pytest.raises(OSError, match="simulated crash"):
        train(cfg)
    monkeypatch.undo()
    state = load_checkpoint(cfg.output_dir)
    assert state.step == 3
    assert (ckpt.checkpoint_root(cfg.output_dir) / "step-00000006.partial" / "model.safetensors").is_file()
    assert list(train(make_train_config(max_steps=6, save_interval=3, resume=True)).losses) == [4, 5, 6]
    assert sorted(p.name for p in ckpt.checkpoint_root(cfg.output_dir).iterdir()) == ["latest", "step-00000006"]


def test_truncated_or_garbled_files_give_clear_errors(trained):
    directory = _step_dir(trained)
    optimizer = directory / "optimizer.safetensors"
    good = optimizer.read_bytes()
    optimizer.write_bytes(good[:200])
    with pytest.raises(ValueError, match="optimizer.safetensors is not a readable safetensors file"):
        load_checkpoint(trained.output_dir)
    optimizer.write_bytes(good)
    (directory / "trainer_state.json").write_text("{")
    with pytest.raises(ValueError, match="trainer_state.json: not valid JSON"):
        load_checkpoint(trained.output_dir)
    (directory / "trainer_state.json").write_text(json.dumps({"format_version": 1, "step": "3"}))
    with pytest.raises(ValueError, match="field 'step' must be a int"):
        load_checkpoint(trained.output_dir)


def test_mismatched_tensors_give_clear_errors(trained):
    directory = _step_dir(trained)
    tensors = load_file(directory / "optimizer.safetensors")
    name = "optimizer/model.layers.0.self_attn.q_proj.weight/exp_avg"
    save_file({**tensors, name: torch.zeros(3, 3)}, directory / "optimizer.safetensors")
    with pytest.raises(ValueError, match=r"q_proj.weight/exp_avg is \(3, 3\).*the parameter is \(32, 32\)"):
        load_checkpoint(trained.output_dir)
    save_file({k: v for k, v in tensors.items() if k != name}, directory / "optimizer.safetensors")
    with pytest.raises(ValueError, match="AdamW state of model.layers.0.self_attn.q_proj.weight"):
        load_checkpoint(trained.output_dir)
    save_file({**tensors, "extra": torch.zeros(1)}, directory / "optimizer.safetensors")
    with pytest.raises(ValueError, match="unexpected tensors"):
        load_checkpoint(trained.output_dir)
    save_file(tensors, directory / "optimizer.safetensors")
    config = json.loads((directory / "config.json").read_text())
    (directory / "config.json").write_text(json.dumps({**config, "hidden_size": 64}))
    with pytest.raises(ValueError, match="model.embed_tokens.weight"):
        load_checkpoint(trained.output_dir)


def test_resume_with_other_settings_or_a_missing_directory_is_refused(trained, make_train_config):
    with pytest.raises(ValueError, match=r"different run.*micro_batch_size: checkpoint 2, now 1"):
        train(make_train_config(max_steps=3, save_interval=3, micro_batch_size=1, grad_accum=4, resume=True))
    with pytest.raises(ValueError, match=r"max_steps: checkpoint 3, now 9"):
        train(make_train_config(max_steps=9, save_interval=3, resume=True))
    (ckpt.checkpoint_root(trained.output_dir) / "latest").write_text("step-00000099\n")
    with pytest.raises(ValueError, match="names step-00000099, which does not exist"):
        load_checkpoint(trained.output_dir)
