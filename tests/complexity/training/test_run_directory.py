"""One run per output directory: data-loss cases (checkpoints without `latest`, the metrics rewrite, two writers),
the lock, the sweep of stale temp files, `latest` confined to checkpoints/, and corrupt files as one-line errors."""

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from safetensors.torch import load_file

import complexity.atomic as atomic
import complexity.training.checkpoint as ckpt
import complexity.training.train as train_module
from complexity.training.cli import train_main
from complexity.training.rundir import LOCK_NAME, acquire_lock
from complexity.training.train import train


@pytest.fixture
def trained(make_train_config):
    """A finished 3-step run with its checkpoint at step 3."""
    cfg = make_train_config(max_steps=3, save_interval=3, eval_interval=3)
    train(cfg)
    return cfg


def _tree(directory) -> dict[str, bytes]:
    root = Path(directory)
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _step3(cfg) -> Path:
    return ckpt.checkpoint_root(cfg.output_dir) / "step-00000003"


def test_a_fresh_run_never_deletes_checkpoints_even_without_latest(trained, make_train_config):
    (ckpt.checkpoint_root(trained.output_dir) / "latest").unlink()
    before = _tree(trained.output_dir)
    with pytest.raises(ValueError, match=r"is not empty \(it holds checkpoints, metrics.jsonl\); one run per output"):
        train(make_train_config(max_steps=3, save_interval=3, eval_interval=3))
    with pytest.raises(ValueError, match=r"holds step-00000003, written by another run or unreadable"):
        train(make_train_config(max_steps=3, save_interval=3, eval_interval=3, seed=1, resume=True))
    assert _tree(trained.output_dir) == before  # nothing deleted, nothing written


def test_a_resume_without_latest_starts_again_and_rewrites_its_own_checkpoint(trained, make_train_config):
    reference = load_file(_step3(trained) / "model.safetensors")
    (ckpt.checkpoint_root(trained.output_dir) / "latest").unlink()  # as a kill between the rename and `latest`
    result = train(make_train_config(max_steps=3, save_interval=3, eval_interval=3, resume=True))
    assert list(result.losses) == [1, 2, 3] and result.checkpoint == _step3(trained)
    again = load_file(_step3(trained) / "model.safetensors")
    assert all(again[k].equal(v) for k, v in reference.items())
    steps = [json.loads(line).get("step") for line in open(Path(trained.output_dir) / "metrics.jsonl")]
    assert steps == [None, 0, 1, 2, 3, 3]  # the metrics start again too: each step once


def test_the_metrics_rewrite_at_resume_is_atomic(make_train_config, monkeypatch):
    real_step = train_module._optimizer_step

    def crash_at_step_5(model, optimizer, data, step, *args):
        if step == 4:  # after the checkpoint of step 3 and the metrics of step 4
            raise KeyboardInterrupt
        return real_step(model, optimizer, data, step, *args)

    monkeypatch.setattr(train_module, "_optimizer_step", crash_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        train(make_train_config())
    monkeypatch.undo()
    metrics = Path(make_train_config().output_dir) / "metrics.jsonl"
    before = metrics.read_bytes()
    real_replace = atomic.os.replace

    def killed_before_the_rename(src, dst):
        if str(dst).endswith("metrics.jsonl"):
            raise KeyboardInterrupt  # dies with the rewritten file complete but not yet renamed over the old one
        return real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", killed_before_the_rename)
    with pytest.raises(KeyboardInterrupt):
        train(make_train_config(resume=True))
    monkeypatch.undo()
    assert metrics.read_bytes() == before  # the old file, whole
    assert [json.loads(x).get("step") for x in before.splitlines()][-1] == 4
    train(make_train_config(resume=True))
    steps = [json.loads(line).get("step") for line in open(metrics)]
    assert steps == [None, 0, 1, 2, 3, 3, 4, 5, 6, 6]


def test_metrics_torn_last_line_is_dropped_a_garbled_one_is_named(trained, make_train_config, capsys):
    metrics = Path(trained.output_dir) / "metrics.jsonl"
    lines = metrics.read_text().splitlines()
    metrics.write_text("\n".join(lines) + '\n{"step": 4, "lo')  # a kill in the middle of an append
    resumed = make_train_config(max_steps=3, save_interval=3, eval_interval=3, resume=True)
    train(resumed)
    assert metrics.read_text() == "\n".join(lines) + "\n"
    metrics.write_text("\n".join([lines[0], "garbage", *lines[1:]]) + "\n")
    argv = _argv(resumed) + ["--resume"]
    assert train_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {metrics}: line 2 is not a metrics record") and err.count("\n") == 1


def test_stale_temp_files_and_partial_checkpoints_are_swept_and_nothing_else(trained, make_train_config):
    out = Path(trained.output_dir)
    stale = [out / ".metrics.jsonl.k3j2.tmp", out / "data" / ".tokens.bin.x9.tmp",
             out / "checkpoints" / ".latest.a1.tmp", _step3(trained) / ".model.safetensors.q.tmp",
             out / "checkpoints" / "step-00000006.partial" / "model.safetensors",
             out / "checkpoints" / "step-00000002.deleting" / "config.json"]
    kept = [out / "notes.tmp", out / ".notes.tmp", out / "data" / "mine.tmp"]
    for path in stale + kept:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 100)
    train(make_train_config(max_steps=3, save_interval=3, eval_interval=3, resume=True))
    assert not any(p.exists() for p in stale)
    assert not (out / "checkpoints" / "step-00000006.partial").exists()
    assert all(p.read_bytes() == b"x" * 100 for p in kept)
    assert ckpt.load_checkpoint(out).step == 3


def test_a_second_run_on_a_locked_directory_is_refused_and_changes_nothing(trained, make_train_config, capsys):
    before = _tree(trained.output_dir)
    with acquire_lock(trained.output_dir):  # the first run, still running
        lock_text = (Path(trained.output_dir) / LOCK_NAME).read_text()
        assert lock_text.startswith(f"pid {os.getpid()} host ")
        assert train_main(_argv(trained) + ["--resume"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"is in use by another training run (pid {os.getpid()} host" in err
        assert _tree(trained.output_dir) == {**before, LOCK_NAME: lock_text.encode()}
    assert not (Path(trained.output_dir) / LOCK_NAME).exists()  # released on exit
    train(make_train_config(max_steps=3, save_interval=3, eval_interval=3, resume=True))


def test_the_lock_of_a_live_process_is_refused_a_dead_ones_taken_over(tmp_path, caplog):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys
            from complexity.training.rundir import acquire_lock
            lock = acquire_lock({str(tmp_path)!r})
            print("locked", flush=True)
            sys.stdin.read()  # hold the lock until the test closes stdin
        """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert holder.stdout.readline() == "locked\n"
        with pytest.raises(ValueError, match=rf"in use by another training run \(pid {holder.pid} host .*\)"):
            acquire_lock(tmp_path)
    finally:
        holder.kill()  # SIGKILL: the lock file stays, naming a dead process
        holder.wait()
    assert (tmp_path / LOCK_NAME).read_text().startswith(f"pid {holder.pid} ")
    with caplog.at_level(logging.WARNING), acquire_lock(tmp_path):
        assert f"taking over the stale lock {tmp_path / LOCK_NAME} of pid {holder.pid}" in caplog.text
        assert (tmp_path / LOCK_NAME).read_text().startswith(f"pid {os.getpid()} ")


@pytest.mark.parametrize("pointer, match", [
    ("../../elsewhere", r"holds '../../elsewhere'; it must name a step-NNNNNNNN directory inside"),
    ("/tmp/step-00000003", r"holds '/tmp/step-00000003'"),
    ("step-00000003/../../x", r"holds 'step-00000003/../../x'"),
    ("", r"holds ''"),
])
def test_latest_is_confined_to_checkpoints(trained, pointer, match):
    (ckpt.checkpoint_root(trained.output_dir) / "latest").write_text(pointer + "\n")
    with pytest.raises(ValueError, match=match):
        ckpt.load_checkpoint(trained.output_dir)


def test_latest_may_not_be_a_link_out_of_the_run(trained, tmp_path):
    root = ckpt.checkpoint_root(trained.output_dir)
    os.replace(root / "step-00000003", tmp_path / "elsewhere")
    (root / "step-00000003").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="is a link; a checkpoint must be a directory inside"):
        ckpt.load_checkpoint(trained.output_dir)


def test_trainer_state_step_must_match_its_directory(trained):
    root = ckpt.checkpoint_root(trained.output_dir)
    os.replace(root / "step-00000003", root / "step-00000004")
    (root / "latest").write_text("step-00000004\n")
    with pytest.raises(ValueError, match=r"trainer_state.json: step 3 does not match its directory step-00000004"):
        ckpt.load_checkpoint(trained.output_dir)


@pytest.mark.parametrize("name, content, message", [
    ("trainer_state.json", b"\xff\xfe{", "trainer_state.json is unreadable"),
    ("trainer_state.json", b'{"format_version": 1, "step": 3, "samples_seen": 12, "param_groups": [7], "run": {}}',
     r"trainer_state.json: param_groups\[0\] must be an object"),
    ("optimizer.safetensors", b"\x00" * 64, "optimizer.safetensors is not a readable safetensors file"),
    ("optimizer.safetensors", b"", "optimizer.safetensors is not a readable safetensors file"),
])
def test_corrupt_checkpoint_files_are_one_line_errors_naming_the_file(trained, capsys, name, content, message):
    (_step3(trained) / name).write_bytes(content)
    assert train_main(_argv(trained) + ["--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and str(_step3(trained) / "") in err
    assert re.search(message, err), err


def test_a_corrupt_token_cache_is_rebuilt(trained, make_train_config):
    meta = Path(trained.output_dir) / "data" / "tokens.json"
    good = meta.read_bytes()
    meta.write_bytes(b"\xff garbage")
    train(make_train_config(max_steps=3, save_interval=3, eval_interval=3, resume=True))
    assert meta.read_bytes() == good


def test_output_dir_that_is_a_file_or_under_one(make_train_config, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("mine")
    for target in (blocker, blocker / "sub"):
        cfg = make_train_config(output_dir=str(target))
        assert train_main(_argv(cfg)) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"output_dir={str(target)!r}" in err
    assert blocker.read_text() == "mine"


def _argv(cfg) -> list[str]:
    return ["--data", *cfg.data, "--output-dir", cfg.output_dir, "--config", cfg.config, "--tokenizer", cfg.tokenizer,
            "--seq-len", str(cfg.seq_len), "--micro-batch-size", str(cfg.micro_batch_size), "--grad-accum",
            str(cfg.grad_accum), "--max-steps", str(cfg.max_steps), "--lr", str(cfg.lr), "--warmup-steps",
            str(cfg.warmup_steps), "--eval-interval", str(cfg.eval_interval), "--eval-batches", str(cfg.eval_batches),
            "--eval-fraction", str(cfg.eval_fraction), "--save-interval", str(cfg.save_interval), "--precision",
            cfg.precision, "--seed", str(cfg.seed), "--no-progress"]


def test_a_resume_removes_this_runs_superseded_checkpoints_only(trained, make_train_config):
    root = ckpt.checkpoint_root(trained.output_dir)
    orphan = root / "step-00000002"  # as a kill between `latest` moving on and the older one's deletion
    shutil.copytree(_step3(trained), orphan)
    state = json.loads((orphan / "trainer_state.json").read_text())
    (orphan / "trainer_state.json").write_text(json.dumps({**state, "step": 2}))
    train(make_train_config(max_steps=3, save_interval=3, eval_interval=3, resume=True))
    assert sorted(p.name for p in root.iterdir()) == ["latest", "step-00000003"]
