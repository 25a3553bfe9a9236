"""`python -m profiler measure MODEL`: time a real model on this machine the way a benchmark should.

Warm-up, N synchronised repeats, mean ± std and p50/p95/p99, tokens/s and sequences/s, a batch sweep tolerant of
out-of-memory batches, peak memory, model size, an energy estimate and the slowest modules, in modes forward,
train and generate. The work is done by `profiler.measuring.harness`, imported when the command runs so that other
commands (`analyze`) never import torch. The JSON output is a stable interface documented in docs/measuring.md.
"""

from __future__ import annotations

import argparse
from typing import Any

from profiler.commands.arguments import (
    MAX_COUNT,
    MAX_REPEATS,
    MAX_SEED,
    MAX_THREADS,
    byte_size,
    device_name,
    dumps,
    hardware_name,
    integer,
    integers,
    model,
    require_finite,
    require_positions,
)
from profiler.commands.settings import torch_threads
from profiler.render.tables import render_rows
from profiler.workload import MEASURED_MODES

FORMATS = ("table", "json")
DTYPES = ("bfloat16", "float16", "float32")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("measure", help="time a real model on this machine (benchmark harness)",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("model", type=model, help="a zoo size, a shipped config name or a HF-style config.json path")
    parser.add_argument("--mode", default="forward", choices=MEASURED_MODES)
    parser.add_argument("--batch", type=integer(), default=1, help="sequences per call (default 1)")
    parser.add_argument("--batch-sweep", type=integers(),
                        help="comma-separated batch sizes, e.g. 1,2,4,8 (overrides --batch)")
    parser.add_argument("--seq-len", type=integer(), default=128, help="tokens per sequence / prompt (default 128)")
    parser.add_argument("--new-tokens", type=integer(), default=32, help="generate: tokens to decode (default 32)")
    parser.add_argument("--device", default="auto", type=device_name,
                        help="auto, cpu, cuda, cuda:N or mps (default auto)")
    parser.add_argument("--dtype", default="float32", choices=DTYPES)
    parser.add_argument("--warmup", type=integer(0, MAX_REPEATS), default=2, help="untimed calls first (default 2)")
    parser.add_argument("--repeats", type=integer(1, MAX_REPEATS), default=10, help="timed calls (default 10)")
    parser.add_argument("--threads", type=integer(1, MAX_THREADS), help="torch intra-op threads (default: torch's)")
    parser.add_argument("--hardware", type=hardware_name,
                        help="hardware profile (name or JSON) for the energy estimate")
    parser.add_argument("--top", type=integer(0, MAX_COUNT), default=10,
                        help="modules in the breakdown (0: no breakdown)")
    parser.add_argument("--seed", type=integer(0, MAX_SEED), default=0)
    parser.add_argument("--memory-limit", type=byte_size,
                        help="refuse, before running, a batch whose predicted peak is over this "
                             "size (e.g. 2GiB; the planner of `profiler fit`)")
    parser.add_argument("--format", default="table", choices=FORMATS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from profiler.measuring.harness import measure  # imports torch: only when the command runs

    source = args.model
    tokens = args.seq_len + (args.new_tokens if args.mode == "generate" else 0)
    require_positions(source.arch, tokens, "--seq-len + --new-tokens" if args.mode == "generate" else "--seq-len")
    with torch_threads(args.threads):
        report = measure(source, mode=args.mode, batches=args.batch_sweep or [args.batch],
                         seq_len=args.seq_len, new_tokens=args.new_tokens, device=args.device, dtype=args.dtype,
                         warmup=args.warmup, repeats=args.repeats, hardware=args.hardware, top=args.top,
                         seed=args.seed, progress=None,
                         memory_limit=args.memory_limit)
    print(dumps(report) if args.format == "json" else render_table(require_finite(report)))
    return 0


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1e3:,.3f}"


def _num(value: float | None, digits: str = ",.1f") -> str:
    return "-" if value is None else format(value, digits)


def render_table(report: dict[str, Any]) -> str:
    env, size = report["environment"], report["model_size"]
    head = (f"{report['model']} ({report['model_type']}), mode {report['mode']}, "
            f"seq_len {report['workload']['seq_len']}, "
            f"{env['dtype']} on {env['device']['name']} ({env['threads']} threads), torch {env['torch']}\n"
            f"params {size['params']:,}; weights {size['bytes']['float32'] / 2**20:,.1f} MiB fp32, "
            f"{size['bytes']['bfloat16'] / 2**20:,.1f} MiB bf16, {size['bytes']['int8'] / 2**20:,.1f} MiB int8")
    rows = []
    for r in report["runs"]:
        if r["status"] != "ok":
            rows.append({"batch": str(r["batch"]), "mean ms": r["status"], "std ms": "", "p50 ms": "", "p95 ms": "",
                         "p99 ms": "", "tokens/s": "", "seq/s": "", "peak MiB": "", "energy J": ""})
            continue
        t = r["timing"]
        rows.append({"batch": str(r["batch"]), "mean ms": _ms(t["mean_s"]), "std ms": _ms(t["std_s"]),
                     "p50 ms": _ms(t["p50_s"]), "p95 ms": _ms(t["p95_s"]), "p99 ms": _ms(t["p99_s"]),
                     "tokens/s": _num(r["tokens_per_s"]), "seq/s": _num(r["sequences_per_s"], ",.2f"),
                     "peak MiB": f"{r['memory']['peak_bytes'] / 2**20:,.1f}",
                     "energy J": _num(r["energy_j"], ",.4g")})
    blocks = [head, render_rows(rows, "table")]
    blocks += ["\n".join(f"batch {r['batch']}: {r['status']}: {r['error']}" for r in report["runs"]
                          if r["status"] != "ok")] if any(r["status"] != "ok" for r in report["runs"]) else []
    if report["mode"] == "generate":
        blocks.append(render_rows([{"batch": str(r["batch"]), "prefill ms": _ms(r["prefill"]["mean_s"]),
                                    "prefill tokens/s": _num(r["prefill_tokens_per_s"]),
                                    "decode ms/token": _ms(r["decode_s_per_token"]),
                                    "decode tokens/s": _num(r["decode_tokens_per_s"])}
                                   for r in report["runs"] if r["status"] == "ok"], "table"))
    if report["breakdown"]:
        b = report["breakdown"]
        blocks.append(f"Top modules by self time (one call, batch {b['batch']}, total {_ms(b['total_s'])} ms)\n\n"
                      + render_rows([{"module": m["module"], "self ms": _ms(m["self_s"]), "share": f"{m['share']:.1%}",
                                      "calls": str(m["calls"])} for m in b["modules"]], "table"))
    if report["power_watts"] is not None:
        blocks.append(f"Energy assumes {report['power_watts']:g} W sustained ({report['hardware_profile']} profile).")
    return "\n\n".join(blocks)
