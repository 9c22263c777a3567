"""`simkit hardware`: list the catalog hardware profiles with their sources."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("hardware", help="list catalog hardware (with sources)",
                       description="List the hardware profiles (dense peaks, memory, links).")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from simkit.catalog.hardware import CATALOG
    from simkit.commands._common import print_json

    if args.json:
        print_json({k: v.to_dict() for k, v in CATALOG.items()})
        return 0
    print(f"{'name':10} {'bf16 dense':>12} {'HBM':>10} {'memory':>10} {'link/dir':>10} "
          f"{'$/GPU-h':>8}  source")
    for h in CATALOG.values():
        price = f"{h.price_per_gpu_hour:8.2f}" if h.price_per_gpu_hour else f"{'-':>8}"
        print(f"{h.name:10} {h.peak_for('bf16') / 1e12:>8.1f} TF/s "
              f"{h.memory_bandwidth_bytes_per_s / 1e9:>6.0f} GB/s "
              f"{h.memory_capacity_bytes / 2**30:>6.1f} GiB "
              f"{h.interconnect_bytes_per_s / 1e9:>6.0f} GB/s {price}  {h.source}")
    return 0
