"""Two gloo processes (DDP, then FSDP2) against one process with the same global batch of 4 sequences."""

import dataclasses
import json

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from complexity.training.checkpoint import load_checkpoint
from complexity.training.train import train


def _worker(rank: int, init_file: str, configs: list) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        for cfg in configs:
            train(cfg)
    finally:
        dist.destroy_process_group()


def test_ddp_and_fsdp_match_one_process(make_train_config, tmp_path):
    single = make_train_config("single", max_steps=3, save_interval=3, micro_batch_size=2, grad_accum=2)
    reference = train(single)
    two = [dataclasses.replace(single, output_dir=str(tmp_path / mode), distributed=mode, grad_accum=1)
           for mode in ("ddp", "fsdp")]
    mp.spawn(_worker, args=(str(tmp_path / "pg"), two), nprocs=2)
    expected = load_checkpoint(single.output_dir)
    for cfg in two:
        got = load_checkpoint(cfg.output_dir)
        assert got.run["global_batch"] == expected.run["global_batch"] == 4
        for name, tensor in expected.model_state.items():
            torch.testing.assert_close(got.model_state[name], tensor, rtol=1e-4, atol=1e-6, msg=f"{cfg.distributed} {name}")
        for name, moments in expected.optimizer_state["state"].items():
            torch.testing.assert_close(got.optimizer_state["state"][name]["exp_avg"], moments["exp_avg"],
                                       rtol=1e-4, atol=1e-7)
    # the losses logged are global means over the same tokens

    logged = [json.loads(line) for line in open(f"{two[0].output_dir}/metrics.jsonl")]
    losses = [r["loss"] for r in logged if "loss" in r]
    assert losses == pytest.approx([reference.losses[s] for s in (1, 2, 3)], rel=1e-5)
