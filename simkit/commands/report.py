"""`simkit report SCENARIO.toml -o FILE.pdf`: the PDF report of a scenario."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    from simkit.commands._common import add_scenario_options, positive_int

    p = sub.add_parser(
        "report", help="the PDF report of a scenario",
        description="Write the PDF report of SCENARIO.toml: the cost model and its formulas, "
        "scaling with context length, a roofline, the simulated latencies and memory, the "
        "capacity plan (with SLOs or [plan]), one chart per [sweep] dimension, calibration "
        "(with a calibrated profile), assumptions and sources. The same scenario gives the "
        "same bytes. The output folder is created.")
    p.add_argument("scenario", metavar="SCENARIO.toml")
    p.add_argument("-o", "--output", metavar="FILE.pdf", required=True,
                   help="where to write the report (a .pdf file)")
    p.add_argument("--png-dir", metavar="DIR", default=None,
                   help="also write every page as a PNG in DIR")
    p.add_argument("--requests", type=positive_int, default=None,
                   help="requests simulated per run, plan probe and sweep point (default: "
                   "the scenario's)")
    add_scenario_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from simkit.report.pdf import build_report, check_output
    from simkit.commands._common import load_scenario_args

    check_output(args.output, args.png_dir)  # before the (slow) work
    s = load_scenario_args(args)
    if args.requests is not None and (s.plan is not None or s.slo.targets()):
        from simkit.commands.plan import _check_requests

        _check_requests(args.requests)  # the report's capacity plan probes with as many
    res = build_report(s, args.output, png_dir=args.png_dir, progress=True,
                       requests=args.requests)
    print(f"wrote {res.path} ({len(res.pages)} pages, {res.size_bytes / 1e6:.2f} MB)")
    for p in res.png_paths:
        print(f"wrote {p}")
    for n in res.notes:
        print(f"note: {n}", file=sys.stderr)
    return 0
