"""What-if scenarios: frozen dataclasses for the TOML scenario format and its strict loader.

A scenario says which model runs on which hardware, under which stream of requests, with
which serving policy and latency targets (SLOs), and optionally which grid of variations to
sweep (`[sweep]`) and what a capacity plan must meet (`[plan]`). The dataclasses below
document every key.

- Defaults live in ONE place: the dataclass field defaults below. `Scenario.to_dict()` is the
  resolved scenario (every default filled in, every relative path made absolute); it is written
  beside every output so a result can be reproduced, and `to_toml()` loads back to an equal
  `Scenario`.
- The loader is strict and reports every problem at once, each with its key path
  (``serving.block_size: must be a positive integer, got 0``), as one `SimkitError`.
  User text is never evaluated: TOML is parsed by `tomllib` and each value's type is checked.
- A kind-specific key set for a kind that does not use it (``window`` on full attention) is
  not an error, because sweeps vary the kind; the cost layer's `ArchSpec.resolve` decides
  what applies (and fills the kind's defaults), and sweep/plan records show it.

Modules: `simkit.scenario.checks` (the kinds a key may take, the value checkers),
`simkit.scenario.sections` (the sections and the sweep grid), `simkit.scenario.spec`
(`Scenario`: what-if copies, dict and TOML), `simkit.scenario.load` (the loader and the checks
across keys). Everything users and scripts import is re-exported here.
"""

from simkit.scenario.checks import (ADMISSIONS, ARRIVAL_PROCESSES, KV_MEMORY, LENGTH_DISTS,
                                    LINKS, PREEMPTION, ROUTERS, SCHEDULERS, TIME_DISTS,
                                    TRANSFERS)
from simkit.scenario.load import _flatten_sweep, load_scenario, scenario_from_dict, what_ifs
from simkit.scenario.sections import (ATTENTION_KINDS, ArrivalSpec, DisaggregationSpec,
                                      HardwareSection, LengthSpec, ModelSection, PlanSection,
                                      ReportSection, SessionsSpec, SLOSection, SpeculativeSpec,
                                      ServingSection, SweepGrid, TenantSpec, TimeSpec,
                                      WorkloadSection)
from simkit.scenario.spec import Scenario

__all__ = ["ADMISSIONS", "ARRIVAL_PROCESSES", "ATTENTION_KINDS", "KV_MEMORY", "LENGTH_DISTS",
           "LINKS", "PREEMPTION", "ROUTERS", "SCHEDULERS", "TIME_DISTS", "TRANSFERS",
           "ArrivalSpec", "DisaggregationSpec", "HardwareSection", "LengthSpec", "ModelSection",
           "PlanSection", "ReportSection", "Scenario", "ServingSection", "SessionsSpec",
           "SLOSection", "SpeculativeSpec", "SweepGrid", "TenantSpec", "TimeSpec",
           "WorkloadSection", "_flatten_sweep", "load_scenario", "scenario_from_dict",
           "what_ifs"]
