"""The calibration page (a calibrated hardware profile): per-family exponents with their
confidence intervals, kernel rates against GEMM, and the fitted constants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from simkit.report.costlayer import hardware_of
from simkit.report.layout import Flow, new_page, page_title


@dataclass
class CalibrationData:
    """Section 8: a calibrated profile's fit results."""

    hardware: str
    source: str
    table: dict[str, Any]
    compute_efficiency: float
    memory_efficiency: float
    step_overhead_s: float


def calibration_data(s) -> CalibrationData | None:
    hw = hardware_of(s)
    if not hw.calibrated:
        return None
    return CalibrationData(hardware=hw.name, source=hw.source, table=dict(hw.calibration),
                           compute_efficiency=hw.compute_efficiency,
                           memory_efficiency=hw.memory_efficiency,
                           step_overhead_s=hw.step_overhead_s)

# --------------------------------------------------------------------------- 8. calibration

def calibration_figure(cal) -> Figure:
    """A calibrated profile's fits: per-family exponents with CIs and rates vs GEMM."""
    fig = new_page()
    page_title(fig, "Calibration", f"profile {cal.hardware}, measured by simkit calibrate")
    kern = cal.table.get("kernels") or {}
    fams = list(kern)
    if fams:
        ax = fig.add_axes((0.12, 0.62, 0.36, 0.26))
        ex = [kern[k].get("exponent", np.nan) for k in fams]
        lo = [kern[k].get("exponent_ci_low", np.nan) for k in fams]
        hi = [kern[k].get("exponent_ci_high", np.nan) for k in fams]
        yerr = np.array([[e - a for e, a in zip(ex, lo)], [b - e for e, b in zip(ex, hi)]])
        ax.errorbar(range(len(fams)), ex, yerr=np.abs(yerr), fmt="o", color="#1f77b4",
                    capsize=3)
        ax.set_xticks(range(len(fams)))
        ax.set_xticklabels(fams, fontsize=7.5, rotation=30, ha="right")
        ax.set_ylabel("exponent of prefill time in n", fontsize=8.5)
        ax.set_title("Measured scaling exponent (95% CI)", fontsize=9, loc="left")
        ax.axhline(2, color="#999999", lw=0.7, ls=":")
        ax.axhline(1, color="#999999", lw=0.7, ls=":")
        ax.tick_params(labelsize=8)
        ax.grid(True, color="#e5e5e5", lw=0.6)
        ax2 = fig.add_axes((0.60, 0.62, 0.35, 0.26))
        fr = [kern[k].get("fraction_of_gemm", np.nan) for k in fams]
        ax2.bar(range(len(fams)), fr, color="#ff7f0e")
        ax2.set_xticks(range(len(fams)))
        ax2.set_xticklabels(fams, fontsize=7.5, rotation=30, ha="right")
        ax2.set_ylabel("fitted FLOP/s / GEMM FLOP/s", fontsize=8.5)
        ax2.set_title("Kernel rate as a fraction of GEMM", fontsize=9, loc="left")
        ax2.tick_params(labelsize=8)
        ax2.grid(True, axis="y", color="#e5e5e5", lw=0.6)
    f = Flow(fig, top=0.52 if fams else 0.9)
    rows = [[k, f"{v.get('exponent', float('nan')):.3f}",
             f"{v.get('flops_per_s', float('nan')) / 1e9:.3g}",
             f"{v.get('overhead_s', float('nan')) * 1e6:.3g}",
             f"{v.get('heldout_rel_error', float('nan')):.1%}"] for k, v in kern.items()]
    if rows:
        f.table(["family", "exponent", "GFLOP/s (fit)", "overhead (us)",
                 "held-out error"], rows, cols=[0.24, 0.16, 0.2, 0.2, 0.2], size=8.5,
                align=["left"] + ["right"] * 4)
        f.space(0.01)
    scal = [[k, _cal_value(v)] for k, v in cal.table.items() if k != "kernels"]
    scal += [["compute_efficiency (profile)", f"{cal.compute_efficiency:.3g}"],
             ["memory_efficiency (profile)", f"{cal.memory_efficiency:.3g}"],
             ["step_overhead_s (profile)", f"{cal.step_overhead_s:.3g}"]]
    f.table(["measurement", "value"], scal, cols=[0.4, 0.6], size=8)
    f.space(0.01)
    f.text(f"Source: {cal.source}", size=7.5, color="#444444")
    return fig


def _cal_value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)
