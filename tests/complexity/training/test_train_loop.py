import json
import math

import pytest
import torch

import complexity.training.train as train_module
from complexity.models.modeling import ComplexityForCausalLM
from complexity.training.checkpoint import load_checkpoint
from complexity.training.train import NonFiniteLossError, TrainConfig, lr_at, parameter_groups, train


def test_a_few_steps_lower_the_loss(make_train_config):
    result = train(make_train_config(max_steps=12, eval_interval=1, save_interval=12))
    losses = list(result.losses.values())
    assert len(losses) == 12 and all(math.isfinite(x) for x in losses)
    assert sum(losses[-3:]) / 3 < losses[0] - 0.5  # from ~ln(320) = 5.8 nats
    assert result.eval_losses[12] < result.eval_losses[0] - 0.5


def test_bf16_autocast_trains_with_fp32_weights(make_train_config):
    cfg = make_train_config(precision="bf16", max_steps=4, eval_interval=4, save_interval=4)
    result = train(cfg)
    assert result.losses[4] < result.losses[1] and math.isfinite(result.eval_losses[4])
    state = load_checkpoint(cfg.output_dir)
    assert state.config.torch_dtype == "float32" and state.model_state["model.norm.weight"].dtype == torch.float32


def test_metrics_jsonl_records_every_step_and_eval(make_train_config):
    cfg = make_train_config()
    train(cfg)
    records = [json.loads(line) for line in open(f"{cfg.output_dir}/metrics.jsonl")]
    assert records[0]["event"] == "start" and records[0]["model"]["hidden_size"] == 32
    steps = [r["step"] for r in records if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]
    evals = [r for r in records if "eval_loss" in r]
    assert [r["step"] for r in evals] == [0, 3, 6]
    assert evals[-1]["eval_perplexity"] == pytest.approx(math.exp(evals[-1]["eval_loss"]))
    assert all(r["tokens_per_s"] > 0 and r["tflops"] > 0 and "mfu" not in r for r in records if "loss" in r)


def test_resume_reproduces_the_uninterrupted_losses_exactly(make_train_config, monkeypatch):
    reference = train(make_train_config("straight"))

    real_step = train_module._optimizer_step

    def crash_at_step_5(model, optimizer, data, step, *args):
        if step == 4:  # 0-based: the fifth step, after the checkpoint of step 3
            raise KeyboardInterrupt
        return real_step(model, optimizer, data, step, *args)

    monkeypatch.setattr(train_module, "_optimizer_step", crash_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train(make_train_config("interrupted"))
    monkeypatch.undo()
    resumed = train(make_train_config("interrupted", resume=True))
    assert list(resumed.losses) == [4, 5, 6]
    assert all(resumed.losses[s] == reference.losses[s] for s in (4, 5, 6))  # bit for bit
    assert resumed.eval_losses[6] == reference.eval_losses[6]
    a, b = load_checkpoint(reference.checkpoint.parents[1]), load_checkpoint(resumed.checkpoint.parents[1])
    assert all(torch.equal(a.model_state[k], b.model_state[k]) for k in a.model_state)
    steps = [json.loads(line).get("step") for line in open(resumed.checkpoint.parents[1] / "metrics.jsonl")]
    assert [s for s in steps if s is not None] == [0, 1, 2, 3, 3, 4, 5, 6, 6]  # train and eval records, no duplicates


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(make_train_config, monkeypatch):
    real_forward = ComplexityForCausalLM.forward
    calls = []

    def nan_after_step_3(self, *args, **kwargs):  # 2 evaluation batches at step 0 and 3, 2 micro-batches a step
        calls.append(1)
        out = real_forward(self, *args, **kwargs)
        if len(calls) > 2 + 3 * 2 + 2:
            out.loss = out.loss * float("nan")
        return out

    monkeypatch.setattr(ComplexityForCausalLM, "forward", nan_after_step_3)
    with pytest.raises(NonFiniteLossError, match=r"step 4: loss nan.*step-00000003 is intact"):
        train(make_train_config())
    monkeypatch.undo()
    saved = load_checkpoint(make_train_config().output_dir)
    assert saved.step == 3 and all(torch.isfinite(t).all() for t in saved.model_state.values())
    assert list(train(make_train_config(resume=True)).losses) == [4, 5, 6]


def test_lr_schedule_hand_computed(make_train_config):
    cfg = make_train_config(lr=1.0, warmup_steps=4, max_steps=14, min_lr_ratio=0.1)
    assert [lr_at(s, cfg) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert lr_at(4, cfg) == 1.0
    assert lr_at(9, cfg) == pytest.approx(0.1 + 0.9 * 0.5)  # halfway through the cosine
    assert lr_at(14, cfg) == pytest.approx(0.1)


def test_weight_decay_only_on_matrices(make_model):
    model = make_model()
    decay, no_decay = parameter_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    assert all(p.ndim >= 2 for p in decay["params"]) and decay["weight_decay"] == 0.1
    assert {names[id(p)].rsplit(".", 1)[0].split(".")[-1] for p in no_decay["params"]} == {
        "input_layernorm", "post_attention_layernorm", "q_norm", "k_norm", "norm"}
    assert no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize("field, value, match", [
    ("max_steps", 0, r"max_steps=0 must be an integer >= 1"),
    ("seq_len", 1, r"seq_len=1 must be an integer >= 2"),
    ("micro_batch_size", 2.5, r"micro_batch_size=2.5"),
    ("lr", 0.0, r"lr=0.0 must be a number in \(0, 10\]"),
    ("lr", 3e38, r"lr=3e\+38 must be a number in \(0, 10\]"),
    ("weight_decay", 500.0, r"lr·weight_decay = 0.003·500 must be < 1"),
    ("lr", float("nan"), r"lr=nan"),
    ("min_lr_ratio", 1.5, r"min_lr_ratio=1.5 must be a number in \[0, 1\]"),
    ("eval_fraction", 0.9, r"eval_fraction=0.9 must be a number in \(0, 0.5\]"),
    ("vocab_size", 100, r"vocab_size=100 must be an integer in \[259, 4294967296\]"),
    ("seed", 2**64, r"seed=18446744073709551616 must be an integer in \[0, 18446744073709551615\]"),
    ("precision", "fp8", r"precision='fp8' is not one of"),
    ("distributed", "tp", r"distributed='tp' is not one of"),
    ("size", "huge", r"size='huge' is not one of"),
    ("peak_tflops", -1.0, r"peak_tflops=-1.0 must be a finite number > 0"),
])
def test_bad_settings_name_the_field_and_range(make_train_config, field, value, match):
    with pytest.raises(ValueError, match=match):
        make_train_config(**{field: value})


def test_run_level_errors(make_train_config, tmp_path):
    with pytest.raises(ValueError, match="no run to resume"):
        train(make_train_config("fresh", resume=True))
    train(make_train_config("done", max_steps=3))
    with pytest.raises(ValueError, match=r"is not empty \(it holds checkpoints, metrics.jsonl\); one run per output "
                       r"directory: pass resume \(--resume\) to continue"):
        train(make_train_config("done", max_steps=3))
    with pytest.raises(ValueError, match=r"seq_len=64 must be at most the model's max_position_embeddings=32"):
        train(make_train_config("long", seq_len=64))
    assert not (tmp_path / "long" / "data").exists()  # checked before the data is tokenized
    with pytest.raises(ValueError, match="distributed='ddp' needs torchrun"):
        train(make_train_config("ddp", distributed="ddp"))
    bad = tmp_path / "bad.json"
    bad.write_text('{"hidden_sise": 32}')
    with pytest.raises(ValueError, match="unknown config field"):
        train(make_train_config("typo", config=str(bad)))
    with pytest.raises(TypeError):
        TrainConfig()  # data and output_dir are required
