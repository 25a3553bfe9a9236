import re

import pytest

from complexity.training import cli
from complexity.training.cli import tokenizer_main, train_main
from complexity.training.train import NonFiniteLossError


def test_tokenizer_cli_writes_and_reports(corpus, tmp_path, capsys):
    out = tmp_path / "tok.json"
    assert tokenizer_main(["--data", str(corpus), "--vocab-size", "300", "--output", str(out), "--num-experts", "4"]) == 0
    text = capsys.readouterr().out
    assert out.is_file() and "300 tokens" in text
    assert "Spearman correlation of token id with frequency" in text
    assert "range  routing" in text and "modulo routing" in text


def test_train_cli_one_command_builds_tokenizer_and_trains(corpus, model_config_file, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--data", str(corpus), "--output-dir", str(out), "--config", str(model_config_file), "--vocab-size", "300",
            "--seq-len", "16", "--micro-batch-size", "2", "--max-steps", "2", "--warmup-steps", "1",
            "--eval-interval", "2", "--save-interval", "2", "--eval-batches", "1", "--no-progress",
            "--peak-tflops", "1"]
    assert train_main(argv) == 0
    assert (out / "tokenizer.json").is_file() and (out / "checkpoints" / "step-00000002").is_dir()
    assert "step 2: held-out loss" in capsys.readouterr().out
    assert '"mfu"' in (out / "metrics.jsonl").read_text()


@pytest.mark.parametrize("flag, value, message", [
    ("--max-steps", "0", "max_steps=0 must be an integer >= 1"),
    ("--lr", "-1", r"lr=-1.0 must be a number in \(0, 10\]"),
    ("--lr", "inf", r"lr=inf must be a number in \(0, 10\]"),
    ("--grad-accum", "0", "grad_accum=0 must be an integer >= 1"),
    ("--eval-fraction", "nan", r"eval_fraction=nan must be a number in \(0, 0.5\]"),
    ("--vocab-size", "10", r"vocab_size=10 must be an integer in \[259, 4294967296\]"),
])
def test_bad_values_are_one_line_argparse_errors_naming_the_flag(corpus, tmp_path, capsys, flag, value, message):
    with pytest.raises(SystemExit) as exc:
        train_main(["--data", str(corpus), "--output-dir", str(tmp_path / "out"), flag, value])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert re.fullmatch(f"complexity-train: error: argument {flag}: {message} \\(see --help\\)\n", err), err
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_bad_choice_is_rejected_by_argparse(corpus, tmp_path):
    with pytest.raises(SystemExit) as exc:
        train_main(["--data", str(corpus), "--output-dir", str(tmp_path), "--precision", "fp8"])
    assert exc.value.code == 2


@pytest.mark.parametrize("error, message", [
    (NonFiniteLossError("loss is nan at step 3"), "loss is nan at step 3"),
    (OSError(28, "No space left on device"), "No space left on device"),
])
def test_a_run_that_fails_midway_exits_1_with_one_line(corpus, model_config_file, tmp_path, capsys, monkeypatch,
                                                       error, message):
    """A diverged run or an operating-system error (a full disk) is not the user's input: exit status 1, the reason
    on one stderr line, no traceback."""
    def failing_train(cfg):
        raise error

    monkeypatch.setattr(cli, "train", failing_train)
    argv = ["--data", str(corpus), "--output-dir", str(tmp_path / "run"), "--config", str(model_config_file),
            "--vocab-size", "300", "--seq-len", "16", "--max-steps", "1", "--no-progress"]
    assert train_main(argv) == 1
    captured = capsys.readouterr()
    assert captured.err == f"error: {error}\n" and message in captured.err and "Traceback" not in captured.err
