"""`Scenario`: one what-if (its sections, what-if copies, serialisation to a dict and to
TOML that loads back to an equal scenario)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, Mapping

from simkit.errors import SimkitError
from simkit.scenario.checks import _f, _int, _str
from simkit.scenario.sections import (HardwareSection, ModelSection, PlanSection, ReportSection,
                                      ServingSection, SLOSection, SweepGrid, WorkloadSection)

@dataclass(frozen=True)
class Scenario:
    """One what-if: model, hardware, workload, serving policy, SLOs, optional plan and sweep."""

    name: str = _f("scenario", _str())
    question: str = _f("", _str())
    #: every random draw derives from this seed (same seed -> bit-identical numbers)
    seed: int = _f(0, _int(lo=0))
    model: ModelSection = _f(factory=ModelSection, section=ModelSection)
    hardware: HardwareSection = _f(factory=HardwareSection, section=HardwareSection)
    workload: WorkloadSection = _f(factory=WorkloadSection, section=WorkloadSection)
    serving: ServingSection = _f(factory=ServingSection, section=ServingSection)
    slo: SLOSection = _f(factory=SLOSection, section=SLOSection)
    plan: PlanSection | None = _f(None, section=PlanSection)
    report: ReportSection = _f(factory=ReportSection, section=ReportSection)
    #: dotted key -> values; the sweep grid is their product
    sweep: SweepGrid = _f(factory=SweepGrid)
    #: folder relative paths were resolved against (not part of equality or the TOML)
    base_dir: str = field(default=".", compare=False)

    # -- what-ifs -------------------------------------------------------------------------
    def with_(self, **dotted: Any) -> "Scenario":
        """A validated copy with dotted keys changed: ``with_(**{"workload.arrival.rate": 8})``.

        A value of None restores an optional key's None (e.g. ``model.attention``). Raises
        `SimkitError` (naming the key path) for an unknown key or an invalid value, and for
        a scenario without grids, for settings that cannot run on its model and hardware
        (weights that do not fit, a TP degree that does not divide the heads, no room for
        one KV block...: `simkit.sim.setup.runtime_check`, what `simulate` checks). With a
        `[sweep]`, the loader checks every point so; with a `[plan.search]`, a configuration
        that cannot run is a row of the search's answer, not an error.
        """
        return self._with(dotted, runnable=True)

    def _with(self, dotted: Mapping[str, Any], *, runnable: bool) -> "Scenario":
        d = self.to_dict()
        for key, value in dotted.items():
            _set_dotted(d, key, value)
        from simkit.scenario.load import scenario_from_dict  # (the loader builds Scenarios)

        s = scenario_from_dict(d, base_dir=self.base_dir)
        if runnable and not len(s.sweep) and (s.plan is None or not len(s.plan.search)):
            from simkit.sim.setup import runtime_check  # the simulator's own set-up checks

            runtime_check(s)
        return s

    def points(self) -> list[dict[str, Any]]:
        """The [sweep] grid points (dotted key -> value), in order."""
        return self.sweep.points()

    def at_point(self, params: Mapping[str, Any]) -> "Scenario":
        """This scenario with one sweep point's values applied and no [sweep] of its own."""
        bare = replace(self, sweep=SweepGrid(), report=replace(self.report, compare=()))
        return bare.with_(**dict(params))

    # -- what applies -----------------------------------------------------------------------
    def model_config(self):
        """The `ModelConfig` of [model].name."""
        from simkit.catalog.models import load_model

        return load_model(self.model.name)

    def hardware_profile(self):
        """The `HardwareProfile` of [hardware].name (the ideal roofline when ideal = true)."""
        from simkit.catalog.hardware import load_hardware

        hw = load_hardware(self.hardware.name)
        return hw.ideal() if self.hardware.ideal else hw

    # -- serialisation ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The resolved scenario: plain JSON-able types, every default filled in."""
        out = _section_dict(self)
        out.pop("base_dir", None)
        if self.plan is None:
            out.pop("plan")
        else:
            out["plan"]["search"] = _grid_dict(self.plan.search)
        out["sweep"] = _grid_dict(self.sweep)
        return out

    def to_toml(self) -> str:
        """TOML text that `load_scenario` / `scenario_from_dict` read back to an equal Scenario."""
        d = self.to_dict()
        lines = ["# resolved scenario written by simkit (every default filled in)"]
        tables = []
        for k, v in d.items():
            if isinstance(v, dict):
                tables.append((k, v))
            elif v is not None:
                lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in tables:
            _toml_table(k, v, lines)
        return "\n".join(lines) + "\n"


def _grid_dict(grid: "SweepGrid") -> dict[str, list]:
    return {k: [_plain(v) for v in vals] for k, vals in grid.items()}


def _plain(v: Any) -> Any:
    from simkit.stack import LayerSpec, pattern_to_tables

    if isinstance(v, tuple) and v and isinstance(v[0], LayerSpec):
        return pattern_to_tables(v)  # run-length tables; parse_pattern reads them back
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if is_dataclass(v):  # workload.tenants entries
        return _section_dict(v)
    return v


def _section_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = _section_dict(v) if is_dataclass(v) else _plain(v)
    return out


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    cur = d
    for p in parts[:-1]:
        nxt = cur.get(p)
        if nxt is None:
            nxt = cur[p] = {}
        elif not isinstance(nxt, dict):
            raise SimkitError(f"{key}: {p!r} is a setting, not a table")
        cur = nxt
    cur[parts[-1]] = list(value) if isinstance(value, tuple) else value


# --------------------------------------------------------------------------- TOML writer

def _toml_key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v)  # shortest repr round-trips exactly; finite by validation
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a valid TOML basic string
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # an inline table (layer_pattern entries)
        return "{ " + ", ".join(f"{_toml_key(k)} = {_toml_value(x)}" for k, x in v.items()
                                if x is not None) + " }"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def _toml_table(name: str, d: Mapping[str, Any], lines: list[str]) -> None:
    lines.append(f"\n[{name}]")
    subs = []
    for k, v in d.items():
        if isinstance(v, dict):
            subs.append((k, v))
        elif v is not None:  # TOML has no null: an absent key loads as its default (None)
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
    for k, v in subs:
        _toml_table(f"{name}.{_toml_key(k)}", v, lines)

