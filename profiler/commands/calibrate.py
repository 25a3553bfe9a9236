"""`python -m profiler calibrate [--output FILE]`: measure this device and write a hardware profile.

Matmul FLOP/s over square and transformer-shaped products in float32 and the reduced precisions the device runs,
elementwise bandwidth (large add and copy) and per-op overhead, written in the schema of `profiler.hardware`
(docs/measuring.md). `--base NAME` keeps a shipped profile's datasheet peaks, memory and power and replaces only
what was measured. The work is done by `profiler.measuring.calibration`, imported when the command runs.
"""

from __future__ import annotations

import argparse

from profiler.commands.arguments import MAX_THREADS, device_name, dumps, hardware_name, integer, number, output_file
from profiler.commands.settings import torch_threads
from profiler.render.tables import render_rows


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("calibrate", help="measure this device and write a hardware profile",
                                   description=__doc__.splitlines()[0])
    parser.add_argument("--output", "-o", type=output_file,
                        help="write the profile JSON here (atomically; its directory must exist)")
    parser.add_argument("--device", default="auto", type=device_name,
                        help="auto, cpu, cuda, cuda:N or mps (default auto)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (seconds; for tests)")
    parser.add_argument("--base", type=hardware_name,
                        help="shipped profile of this device whose peaks, memory and power to keep")
    parser.add_argument("--name", help="profile name (default calibrated_<device> or <base>_calibrated)")
    parser.add_argument("--power", type=number(0, low_open=True), help="sustained power in watts for energy estimates")
    parser.add_argument("--threads", type=integer(1, MAX_THREADS), help="torch intra-op threads (default: torch's)")
    parser.add_argument("--format", default="table", choices=("table", "json"))
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from profiler.hardware import save_profile
    from profiler.measuring.calibration import calibrate  # imports torch: only when the command runs

    with torch_threads(args.threads):
        profile = calibrate(device=args.device, quick=args.quick, base=args.base, name=args.name,
                            power_watts=args.power, progress=None)
    if args.output:
        save_profile(profile, args.output)
    if args.format == "json":
        print(dumps(profile.to_dict()))
        return 0
    rows = [{"dtype": p.dtype, "shape": p.shape, "m x n x k": f"{p.m} x {p.n} x {p.k}",
             "GFLOP/s min": f"{p.flops_per_s.min / 1e9:,.1f}", "median": f"{p.flops_per_s.median / 1e9:,.1f}",
             "max": f"{p.flops_per_s.max / 1e9:,.1f}"} for p in profile.efficiency.matmul]
    bandwidth = profile.efficiency.elementwise_bytes_per_s
    print(f"{profile.name}: {profile.description}\n\n{render_rows(rows, 'table')}\n\n"
          f"elementwise add: {bandwidth.median / 1e9:,.2f} GB/s median ({bandwidth.min / 1e9:,.2f}-"
          f"{bandwidth.max / 1e9:,.2f}); per-op overhead {profile.op_overhead_s * 1e6:,.2f} us; "
          f"took {profile.details['calibration']['seconds']:.1f} s"
          + (f"\nwritten to {args.output}" if args.output else ""))
    return 0
