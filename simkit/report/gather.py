"""Gather everything a report shows, section by section, as plain data.

Each section's gatherer lives beside its page in `simkit.report.pages`; this module calls
them in order and assembles `ReportData`. Nothing here touches matplotlib, the clock or the
environment, so the same scenario gives the same data.

Units follow the names: `_s` seconds, `_bytes` bytes, `_per_s` per second, FLOPs counted
with a multiply-add = 2 (see `simkit.units`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from simkit.report.pages.calibration import CalibrationData, calibration_data
from simkit.report.pages.capacity import PlanData, plan_data
from simkit.report.pages.costmodel import CostModelData, compare_kinds, cost_model_data
from simkit.report.pages.disaggregation import DisaggData, disaggregation_data
from simkit.report.pages.assumptions import assumptions_data
from simkit.report.pages.fidelity import fidelity_data
from simkit.report.pages.roofline import RooflineData, roofline_data
from simkit.report.pages.scaling import ScalingData, scaling_data
from simkit.report.pages.search import search_data
from simkit.report.pages.simulation import SimulationData, simulation_data
from simkit.report.pages.speculative import SpecData, speculative_data
from simkit.report.pages.sweep import SweepData, sweep_data
from simkit.report.pages.title import TitleData, answer_lines, title_data


@dataclass
class ReportData:
    scenario: Any
    title: TitleData
    cost: CostModelData
    scaling: ScalingData
    roofline: RooflineData
    simulation: SimulationData
    plan: PlanData | None
    sweep: SweepData | None
    calibration: CalibrationData | None
    assumptions: list[tuple[str, list[str]]]
    notes: list[str] = field(default_factory=list)
    fidelity: dict[str, Any] | None = None  # FidelityResult.to_dict() when [report] fidelity
    search: Any = None  # simkit.plan.search.SearchResult with [plan.search]
    disaggregation: DisaggData | None = None  # with [serving.disaggregation]
    speculative: SpecData | None = None  # with [serving.speculative]


def terminal_status(text: str) -> None:
    """One status line on stderr, only when stderr is a terminal."""
    if sys.stderr.isatty():
        print(f"simkit report: {text}", file=sys.stderr, flush=True)


def gather(s, *, requests: int | None = None, progress: bool = False,
           sweep_executor=None) -> ReportData:
    """Everything the report draws, for scenario `s` (see the module docstring).
    `progress`: status lines on stderr while slow work runs (only on a terminal)."""
    say = terminal_status if progress else None
    kinds = compare_kinds(s)
    if say:
        say("cost model, scaling and roofline")
    cost = cost_model_data(s, kinds)
    scaling = scaling_data(s, kinds)
    roof = roofline_data(s)
    sim = simulation_data(s, requests=requests, progress=say)
    search = search_data(s, requests=requests, progress=say)
    plan = plan_data(s, requests=requests, progress=say, search=search)
    sweep = sweep_data(s, requests=requests, progress=say, executor=sweep_executor)
    dis = disaggregation_data(s, requests=requests, progress=say)
    spec = speculative_data(s, progress=say, run_summary=sim.summary)
    d = ReportData(scenario=s, title=title_data(s), cost=cost, scaling=scaling, roofline=roof,
                   simulation=sim, plan=plan, sweep=sweep, calibration=calibration_data(s),
                   assumptions=assumptions_data(s),
                   fidelity=fidelity_data(s, progress=say), search=search,
                   disaggregation=dis, speculative=spec)
    d.title.answer = answer_lines(d)
    return d
