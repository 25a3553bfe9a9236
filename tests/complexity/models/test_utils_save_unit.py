"""save_pretrained replaces config.json and model.safetensors as one unit; from_pretrained validates what it reads."""

import os
import shutil
from pathlib import Path

import pytest
import torch

import complexity.atomic as atomic
from complexity import ComplexityForCausalLM
from complexity.atomic import COMMITTED_PREFIX, STAGING_PREFIX, current_files
from complexity.models.utils import from_pretrained, save_pretrained

PAIR = ["config.json", "model.safetensors"]
# The filesystem calls a save makes after it has begun writing; the test kills the saving process before each.
KILL_POINTS = ("replace", "rename", "rmdir", "fsync", "unlink", "mkdir")


def same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def save_killed_at(model: torch.nn.Module, directory: Path, kill_at: int) -> int:
    """Save in a forked child that dies (os._exit: no cleanup runs, as under SIGKILL) just before its kill_at-th
    filesystem call; returns how many calls the child made (all of them when kill_at is past the last)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        calls = 0

        def counted(real):
            def call(*args, **kwargs):
                nonlocal calls
                if calls == kill_at:
                    os.write(write, str(calls).encode())
                    os._exit(9)
                calls += 1
                return real(*args, **kwargs)
            return call

        for name in KILL_POINTS:
            setattr(os, name, counted(getattr(os, name)))
        try:
            save_pretrained(model, directory)
            os.write(write, str(calls).encode())
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    with os.fdopen(read) as f:
        return int(f.read())


def test_kill_before_every_filesystem_step_leaves_the_old_or_the_new_pair(make_model, tmp_path):
    old, new = make_model(seed=1), make_model(seed=2, rope_theta=500.0)  # the new config differs too
    save_pretrained(old, tmp_path / "probe")
    total = save_killed_at(new, tmp_path / "probe", kill_at=10**6)  # filesystem calls of a save over a save
    assert total >= 10
    outcomes = []
    for kill_at in range(total + 1):
        directory = tmp_path / f"k{kill_at}"
        save_pretrained(old, directory)
        save_killed_at(new, directory, kill_at)
        loaded = from_pretrained(directory)
        is_new = same_weights(loaded, new) and loaded.config == new.config
        assert is_new or (same_weights(loaded, old) and loaded.config == old.config), f"kill before call {kill_at}"
        outcomes.append(is_new)
        left = [p.name for p in directory.iterdir() if p.name not in PAIR]
        assert len(left) <= 1, left
        save_pretrained(old, directory)  # the next save sweeps or finishes what the killed one left
        assert sorted(p.name for p in directory.iterdir()) == PAIR
        assert same_weights(from_pretrained(directory), old)
    # Old up to the commit, new from it on: exactly one switch, and both sides were hit.
    assert outcomes == sorted(outcomes) and outcomes[0] is False and outcomes[-1] is True, outcomes


def test_a_kill_while_the_weights_are_written_keeps_the_old_pair(make_model, tmp_path, monkeypatch):
    old, new = make_model(seed=1), make_model(seed=2)
    save_pretrained(old, tmp_path)
    import complexity.models.pretrained as pretrained

    def half_then_die(state, path, metadata=None):
        Path(path).write_bytes(b"\x00" * 1000)
        raise KeyboardInterrupt  # stands in for the signal; the staged copy is removed on the way out

    monkeypatch.setattr(pretrained, "save_file", half_then_die)
    with pytest.raises(KeyboardInterrupt):
        save_pretrained(new, tmp_path)
    assert same_weights(from_pretrained(tmp_path), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == PAIR


def test_committed_set_is_read_before_it_is_moved_and_stale_temp_files_are_swept(make_model, tmp_path, monkeypatch):
    old, new = make_model(seed=1), make_model(seed=2)
    save_pretrained(old, tmp_path)
    moved = []
    real_replace = os.replace

    def move_one_then_stop(src, dst):  # the apply step dies after moving config.json, before the weights
        if moved:
            raise SystemExit
        moved.append(Path(dst).name)
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", move_one_then_stop)
    with pytest.raises(SystemExit):
        save_pretrained(new, tmp_path)
    monkeypatch.undo()
    assert moved == ["config.json"]
    files = current_files(tmp_path, tuple(PAIR))
    assert files["config.json"] == tmp_path / "config.json"
    assert files["model.safetensors"].parent.name.startswith(COMMITTED_PREFIX)
    assert same_weights(from_pretrained(tmp_path), new)  # the top level alone would be new config + old weights
    # Leftovers of older kills: a staging directory of a dead writer and write_atomically's temp files.
    (tmp_path / f"{STAGING_PREFIX}999999999-x").mkdir()
    (tmp_path / ".model.safetensors.abc.tmp").write_bytes(b"partial")
    (tmp_path / "tokenizer.json").write_text("{}")  # not ours: left alone
    save_pretrained(old, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [*PAIR, "tokenizer.json"]
    assert same_weights(from_pretrained(tmp_path), old)


def test_staging_directory_of_a_live_writer_is_left_alone(make_model, tmp_path):
    save_pretrained(make_model(), tmp_path)
    live = tmp_path / f"{STAGING_PREFIX}{os.getppid()}-x"  # the parent process is alive
    live.mkdir()
    save_pretrained(make_model(seed=3), tmp_path)
    assert live.is_dir()


def test_two_committed_sets_are_refused(make_model, tmp_path):
    save_pretrained(make_model(), tmp_path)
    for name in ("a", "b"):
        (tmp_path / f"{COMMITTED_PREFIX}{name}").mkdir()
    with pytest.raises(ValueError, match="two writers"):
        from_pretrained(tmp_path)


def test_methods_delegate_to_the_functions(make_model, tmp_path):
    model = make_model(seed=4)
    model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == PAIR
    loaded = ComplexityForCausalLM.from_pretrained(tmp_path)
    assert isinstance(loaded, ComplexityForCausalLM) and same_weights(loaded, model)
    with pytest.raises(ValueError, match="does not exist"):
        ComplexityForCausalLM.from_pretrained(tmp_path / "missing")


@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe{}", "not UTF-8"),
    (b"{\"vocab_size\": ", "not valid JSON"),
    (b"[1, 2]", "JSON object"),
    (b"{\"vocab_size\": 1" + b"0" * 5000 + b"}", "not valid JSON"),
])
def test_unreadable_config_is_one_line_naming_the_file(make_model, tmp_path, content, message):
    save_pretrained(make_model(), tmp_path)
    (tmp_path / "config.json").write_bytes(content)
    with pytest.raises(ValueError, match=message) as err:
        from_pretrained(tmp_path)
    assert str(tmp_path / "config.json") in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("field", ["rope_theta", "routing", "num_experts", "use_token_routed_mlp", "sliding_window"])
def test_saved_config_missing_a_field_the_logits_depend_on_is_refused(make_model, tmp_path, field):
    import json

    save_pretrained(make_model(), tmp_path)
    data = json.loads((tmp_path / "config.json").read_text())
    del data[field]
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=field):
        from_pretrained(tmp_path)


def test_config_that_is_a_directory_is_named(make_model, tmp_path):
    save_pretrained(make_model(), tmp_path)
    (tmp_path / "config.json").unlink()
    (tmp_path / "config.json").mkdir()
    with pytest.raises(ValueError, match="config.json"):
        from_pretrained(tmp_path)
    shutil.rmtree(tmp_path / "config.json")


@pytest.mark.parametrize("device, message", [
    pytest.param("cuda", "CUDA is not available", marks=pytest.mark.skipif(torch.cuda.is_available(), reason="has CUDA")),
    pytest.param("mps", "MPS is not available",
                 marks=pytest.mark.skipif(torch.backends.mps.is_available(), reason="has MPS")),
    ("cuda:99", "CUDA"),
    ("tpu", "is not a device"),
    ("meta", "must be 'cpu'"),
    (3.5, "is not a device"),
])
def test_device_that_this_machine_lacks_is_a_clear_error(make_model, tmp_path, device, message):
    save_pretrained(make_model(), tmp_path)
    with pytest.raises(ValueError, match=message):
        from_pretrained(tmp_path, device=device)
