"""Wall time of `simkit report` on the bundled Llama-3-8B capacity scenario.

    python benchmarks/report.py [--scenario PATH] [--repeat N]

Runs the whole command (a fresh Python process each time, so imports and the cost layer's
first compilation count, as they do for a user) and prints the wall time of each run, the
fastest, and the per-phase split of one in-process build (gather vs draw + write). The
target is under 60 s on a 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT / "scenarios" / "chatbot-llama3-8b-h100.toml"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=str(DEFAULT))
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.pdf"
        walls = []
        for i in range(args.repeat):
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "simkit", "report", args.scenario, "-o",
                            str(out)], check=True, cwd=ROOT)
            walls.append(time.perf_counter() - t0)
            print(f"run {i + 1}: {walls[-1]:.1f} s wall (simkit report, fresh process)")
        print(f"fastest: {min(walls):.1f} s; {out.stat().st_size / 1e6:.2f} MB; "
              f"{os.cpu_count()} CPUs visible")

        # phases, in this process
        from simkit.report.gather import gather
        from simkit.report.pdf import render
        from simkit.scenario import load_scenario

        s = load_scenario(args.scenario)
        t0 = time.perf_counter()
        d = gather(s)
        t1 = time.perf_counter()
        pages, pdf_bytes, _ = render(d)
        t2 = time.perf_counter()
        print(f"phases (in-process, warm imports): gather {t1 - t0:.1f} s (cost model, "
              f"simulation, plan, sweep), draw + render {t2 - t1:.1f} s for {len(pages)} "
              "pages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
