"""The strict loader: a scenario table (as parsed from TOML) or file to a `Scenario`,
every key checked, every problem reported at once with its key path; and the checks across
keys and sections (lengths, plans, sweeps, what applies together)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import fields, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from simkit.errors import SimkitError
from simkit.scenario.checks import _BAD, _Ctx
from simkit.scenario.sections import (ArrivalSpec, DisaggregationSpec, LengthSpec, ModelSection,
                                      PlanSection, ServingSection, SpeculativeSpec, SweepGrid,
                                      TimeSpec, WorkloadSection)
from simkit.scenario.spec import Scenario

def _build(cls: type, data: Any, path: str, ctx: _Ctx) -> Any:
    """Build section `cls` from a table, checking every key; None when anything was wrong."""
    if not isinstance(data, Mapping):
        ctx.err(path, f"must be a table, got {data!r}")
        return None
    names = {f.name for f in fields(cls) if f.name != "base_dir"}
    for k in data:
        if k not in names:
            ctx.err(f"{path}.{k}" if path else str(k),
                    f"unknown key; known keys: {', '.join(sorted(names))}")
    kw: dict[str, Any] = {}
    ok = True
    for f in fields(cls):
        if f.name not in data or f.name == "base_dir":
            continue
        key = f"{path}.{f.name}" if path else f.name
        v = data[f.name]
        sec = f.metadata.get("section")
        if sec is not None and v is None and f.default is None:
            continue  # an optional section left out (as to_dict() writes it)
        if sec is not None:
            built = _build(sec, v, key, ctx)
            if built is None:
                ok = False
            else:
                kw[f.name] = built
        elif f.metadata.get("check") is not None:
            c = f.metadata["check"](v, key, ctx)
            if c is _BAD:
                ok = False
            else:
                kw[f.name] = c
    if cls is ArrivalSpec and "rate" not in data and data.get("process") == "trace":
        kw["rate"] = None  # a trace replays its recorded timing unless a rate is given
    if not ok:
        return None
    obj = cls(**kw)
    hook = _SECTION_CHECKS.get(cls)
    if hook is not None:
        hook(obj, path, ctx)
    return obj


def _check_length(s: LengthSpec, path: str, ctx: _Ctx) -> None:
    need = {"fixed": ("value",), "uniform": ("low", "high"), "lognormal": ("median", "sigma"),
            "empirical": ("path",), "trace": ()}[s.dist]
    for k in need:
        if getattr(s, k) is None:
            ctx.err(f"{path}.{k}", f"required when dist = {s.dist!r}")
    if s.dist == "uniform" and s.low is not None and s.high is not None and s.low > s.high:
        ctx.err(f"{path}.low", f"must be <= high ({s.high}), got {s.low}")
    if s.dist == "lognormal":
        if s.median is not None and not s.median > 0:
            ctx.err(f"{path}.median", f"must be > 0, got {s.median!r}")
        if s.sigma is not None and not s.sigma >= 0:
            ctx.err(f"{path}.sigma", f"must be >= 0, got {s.sigma!r}")
    if s.max is not None and s.min > s.max:
        ctx.err(f"{path}.min", f"must be <= max ({s.max}), got {s.min}")
    if s.dist == "empirical" and s.path is not None and s.column is not None:
        _check_csv_column(s.path, s.column, f"{path}.column", ctx)
    if s.paired and s.dist != "empirical":
        ctx.err(f"{path}.paired", f"pairs rows of an empirical file; dist is {s.dist!r}")


def _check_csv_column(file: str, column: str, path: str, ctx: _Ctx) -> None:
    try:
        with open(file, newline="") as fh:
            header = fh.readline().strip().split(",")
    except (OSError, UnicodeDecodeError) as e:
        ctx.err(path, f"cannot read {file}: {e}")
        return
    if column not in header:
        ctx.err(path, f"no column {column!r} in {file}; columns: {', '.join(header)}")


def _check_arrival(a: ArrivalSpec, path: str, ctx: _Ctx) -> None:
    if a.process not in ("trace", "burst") and a.rate is None:
        ctx.err(f"{path}.rate", f"required when process = {a.process!r}")
    if a.process == "trace" and a.path is None:
        ctx.err(f"{path}.path", "required when process = 'trace'")


def _check_workload(w: WorkloadSection, path: str, ctx: _Ctx) -> None:
    for nm in ("prompt_tokens", "output_tokens"):
        spec = getattr(w, nm)
        if spec.dist == "trace" and w.arrival.process != "trace":
            ctx.err(f"{path}.{nm}.dist", "'trace' takes lengths from the arrival trace; "
                    f"needs {path}.arrival.process = 'trace'")
    if w.prompt_tokens.paired:
        ctx.err(f"{path}.prompt_tokens.paired", "set paired on output_tokens: an answer is "
                "drawn from its prompt's row")
    if w.output_tokens.paired and w.output_tokens.dist == "empirical":
        p, o = w.prompt_tokens, w.output_tokens
        if p.dist != "empirical" or p.path is None or o.path is None \
                or Path(p.path).resolve() != Path(o.path).resolve():
            ctx.err(f"{path}.output_tokens.paired", "needs prompt_tokens drawn (dist = "
                    "'empirical') from the same file as output_tokens")
        if w.sessions is not None:
            ctx.err(f"{path}.output_tokens.paired", "pairs independent requests; a session "
                    "draws its turns one by one: drop paired or sessions")
    if w.tenants is not None and w.system_prompt_tokens:
        ctx.err(f"{path}.tenants", "set either tenants or system_prompt_tokens (one tenant), "
                "not both")
    if w.max_concurrency is not None and (w.sessions is not None
                                          or w.arrival.process == "trace"):
        ctx.err(f"{path}.max_concurrency", "caps independent requests drawn by an arrival "
                "process; a session or a trace already decides when each turn is sent")
    if w.sessions is not None and w.sessions.turns.dist == "trace":
        ctx.err(f"{path}.sessions.turns.dist", "a trace's sessions come from its session_id "
                "column; drop workload.sessions.turns")


def _check_time(s: TimeSpec, path: str, ctx: _Ctx) -> None:
    need = {"fixed": ("value",), "exponential": ("mean",), "lognormal": ("median", "sigma")}
    for k in need[s.dist]:
        if getattr(s, k) is None:
            ctx.err(f"{path}.{k}", f"required when dist = {s.dist!r}")
    if s.max is not None and s.min > s.max:
        ctx.err(f"{path}.min", f"must be <= max ({s.max}), got {s.min}")


def _check_model(m: ModelSection, path: str, ctx: _Ctx) -> None:
    from simkit.catalog.models import load_model
    from simkit.costs.arch import ArchSpec

    cfg = load_model(m.name)  # validated by its field checker already
    # window / global_tokens / memory_slots left unset take the cost layer's defaults for the
    # kind (ArchSpec.resolve), so they are not required here; resolving the what-if on the
    # model checks the rest (mla on a model without latents, sharing beyond the layer
    # count, a pattern that does not tile the layers)
    try:
        ArchSpec.from_scenario_model(cfg, m)
    except SimkitError as e:
        for msg in e.messages:
            ctx.errors.append(msg if msg.startswith(path) else f"{path}: {msg}")


#: cross-field rules of a section, run once the section itself built cleanly
_SECTION_CHECKS: dict[type, Callable] = {}


def _check_plan_compare(s: Scenario, ctx: _Ctx) -> None:
    """Every kind plan.compare names must be one the model can take."""
    from simkit.costs.arch import ArchSpec

    if s.plan is None or not s.plan.compare:
        return
    cfg = s.model_config()
    for i, kind in enumerate(s.plan.compare):
        try:
            ArchSpec.from_scenario_model(cfg, replace(s.model, attention=kind))
        except SimkitError as e:
            ctx.err(f"plan.compare[{i}]", f"{kind!r}: {e.messages[0].split(': ', 1)[-1]}")


def what_ifs(s: Scenario) -> tuple[list[str], int]:
    """(the lengths the scenario asks for beyond the deployed context, that context): the
    model's trained context unless model.max_context sets the deployed one."""
    cfg = s.model_config()
    context = s.model.max_context or cfg.max_context
    out = []
    if s.serving.max_seq_len is not None and s.serving.max_seq_len > context:
        out.append(f"serving.max_seq_len {s.serving.max_seq_len}")
    for nm in ("prompt_tokens", "output_tokens"):
        spec = getattr(s.workload, nm)
        for key in ("max", "value", "high"):
            v = getattr(spec, key)
            if v is not None and v > context and (key == "max" or spec.dist in
                                                  ("fixed", "uniform")):
                out.append(f"workload.{nm}.{key} {v}")
    return out, context


def _check_what_ifs(s: Scenario) -> None:
    """Say, when the scenario loads, which of its lengths are what-ifs beyond the deployed
    context: every command then says it once, sweeps and searches included, before any
    point runs."""
    from simkit.errors import what_if

    lengths, context = what_ifs(s)
    for what in lengths:
        what_if(what, context, s.model_config().name)


def _check_compare(s: Scenario, ctx: _Ctx) -> None:
    for i, k in enumerate(s.report.compare):
        if k not in s.sweep:
            ctx.err(f"report.compare[{i}]", f"{k!r} is not a [sweep] key"
                    + (f"; sweep keys: {', '.join(s.sweep)}" if s.sweep else " (no [sweep])"))


def _check_plan(p: PlanSection, path: str, ctx: _Ctx) -> None:
    from simkit.sim.stats import too_few_for_p99  # the one rule, beside the p99 statistics

    why = too_few_for_p99(p.requests) if p.requests is not None else None
    if why is not None:
        ctx.err(f"{path}.requests", why)


def _check_disaggregation(d: DisaggregationSpec, path: str, ctx: _Ctx) -> None:
    bw = d.link_bytes_per_s
    if d.link == "network":
        if bw is None:
            ctx.err(f"{path}.link_bytes_per_s", "required when link = 'network' (bytes/s per "
                    "GPU; a link with no bandwidth never delivers the KV)")
        if d.link_latency_s is None:
            ctx.err(f"{path}.link_latency_s", "required when link = 'network' (seconds, "
                    "one way)")
    elif bw is not None:
        ctx.err(f"{path}.link_bytes_per_s", "applies to link = 'network' only (link = "
                "'nvlink' uses the GPUs' own interconnect)")
    if bw is not None and not bw > 0:
        ctx.err(f"{path}.link_bytes_per_s", f"must be > 0 (a link with no bandwidth never "
                f"delivers the KV), got {bw!r}")


def _check_speculative(sp: SpeculativeSpec, path: str, ctx: _Ctx) -> None:
    if not sp.draft:
        ctx.err(f"{path}.draft", "required: the draft model (a catalog name or a "
                "config.json path)")
    if (sp.acceptance is None) == (sp.acceptance_lengths is None):
        ctx.err(f"{path}.acceptance", "set exactly one of acceptance (per drafted token) and "
                "acceptance_lengths (probabilities of accepting 0..k tokens)")
    if sp.acceptance_lengths is not None and len(sp.acceptance_lengths) != sp.tokens + 1:
        ctx.err(f"{path}.acceptance_lengths", f"needs tokens + 1 = {sp.tokens + 1} "
                f"probabilities (accepting 0..{sp.tokens} drafted tokens), got "
                f"{len(sp.acceptance_lengths)}")


def _check_serving(s: "Scenario", ctx: _Ctx) -> None:
    """Rules across sections: a draft speaks the target's vocabulary; one NVLink domain
    holds one kind of GPU."""
    from simkit.catalog.models import load_model

    sp = s.serving.speculative
    if sp is not None and sp.draft:
        target, draft = s.model_config(), load_model(sp.draft)
        if draft.vocab_size != target.vocab_size:
            ctx.err("serving.speculative.draft", f"{draft.name}'s vocabulary "
                    f"({draft.vocab_size} tokens) differs from {target.name}'s "
                    f"({target.vocab_size}): the target cannot verify its tokens")
    d = s.serving.disaggregation
    if d is not None and d.link == "nvlink":
        hw = {d.prefill_hardware or s.hardware.name, d.decode_hardware or s.hardware.name}
        if len(hw) > 1:
            ctx.err("serving.disaggregation.link", "'nvlink' joins GPUs of one node, but the "
                    f"pools run on {' and '.join(sorted(_base(h) for h in hw))}; use link = "
                    "'network' with link_bytes_per_s and link_latency_s")


def _check_serving_section(s: ServingSection, path: str, ctx: _Ctx) -> None:
    if s.admission != "new_token_ratio":
        if s.schedule_conservativeness != 1.0:
            ctx.err(f"{path}.schedule_conservativeness", "scales SGLang's admission estimate; "
                    f"needs {path}.admission = 'new_token_ratio'")
        return
    # SGLang's token pool, its retraction by recompute, one pool per engine
    for key, value, why in (("kv_memory", "contiguous", "SGLang's KV pool is paged"),
                            ("preemption", "swap", "SGLang retracts answers and recomputes "
                             "them")):
        if getattr(s, key) == value:
            ctx.err(f"{path}.{key}", f"{value!r} is not modelled with admission = "
                    f"'new_token_ratio' ({why})")
    if s.disaggregation is not None:
        ctx.err(f"{path}.disaggregation", "not modelled with admission = 'new_token_ratio' "
                "(the decode pool takes arriving caches as memory frees)")


def _base(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


_SECTION_CHECKS.update({ArrivalSpec: _check_arrival, LengthSpec: _check_length,
                        WorkloadSection: _check_workload, ModelSection: _check_model,
                        PlanSection: _check_plan, TimeSpec: _check_time,
                        DisaggregationSpec: _check_disaggregation,
                        SpeculativeSpec: _check_speculative,
                        ServingSection: _check_serving_section})


def _flatten_sweep(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """[sweep] keys may be quoted dotted strings or TOML dotted keys (nested tables)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping):
            out.update(_flatten_sweep(v, key))
        else:
            out[key] = v
    return out


_SETTING_PATHS: set[str] | None = None


def _setting_paths() -> set[str]:
    """Every dotted key that names a setting (a leaf) a sweep may vary."""
    global _SETTING_PATHS
    if _SETTING_PATHS is None:
        paths: set[str] = set()

        def walk(cls: type, prefix: str) -> None:
            for f in fields(cls):
                if f.name in ("base_dir", "sweep", "search"):
                    continue
                sec = f.metadata.get("section")
                key = f"{prefix}{f.name}"
                if sec is not None:
                    walk(sec, key + ".")
                else:
                    paths.add(key)
        walk(Scenario, "")
        _SETTING_PATHS = paths
    return _SETTING_PATHS


def _check_grid(raw: Any, base: Scenario | None, ctx: _Ctx, where: str = "sweep",
                what: str = "point") -> SweepGrid | None:
    """A table of dotted key = [values] ([sweep] or [plan.search]): every key a setting,
    every list non-empty and without repeats, and (given the base scenario) every
    combination valid, checked by building it."""
    if not isinstance(raw, Mapping):
        ctx.err(where, f"must be a table of dotted key = [values], got {raw!r}")
        return None
    flat = _flatten_sweep(raw)
    grid: dict[str, tuple] = {}
    n_err = len(ctx.errors)
    for key, vals in flat.items():
        at = f"{where}.{json.dumps(key)}"
        if key not in _setting_paths():
            ctx.err(at, "not a scenario setting (use a dotted key such as "
                    "\"workload.arrival.rate\")")
            continue
        if where == "plan.search" and key.startswith("plan."):
            ctx.err(at, "a search varies the configuration, not the plan itself")
            continue
        if where == "plan.search" and key in ("serving.replicas", "workload.arrival.rate"):
            ctx.err(at, "the plan chooses the replicas for plan.target_qps; search the "
                    "configuration of one replica")
            continue
        if not isinstance(vals, (list, tuple)) or not vals:
            ctx.err(at, f"must be a non-empty list of values, got {vals!r}")
            continue
        vals = tuple(tuple(v) if isinstance(v, list) else v for v in vals)
        dup = [v for i, v in enumerate(vals)
               if any(v == w and type(v) is type(w) for w in vals[:i])]
        if dup:
            ctx.err(at, f"repeats the value {dup[0]!r} (every {what} must differ)")
            continue
        grid[key] = vals
    if base is None or len(ctx.errors) > n_err or not grid:
        return None if len(ctx.errors) > n_err else SweepGrid(grid)
    base = replace(base, report=replace(base.report, compare=()), sweep=SweepGrid())
    if base.plan is not None:
        base = replace(base, plan=replace(base.plan, search=SweepGrid()))
    # Validate by building every combination (values of one key may need another's, e.g. a
    # window kind needs the swept window; a sweep point must also pass the simulator's set-up
    # checks, so a sweep fails before it writes anything); each distinct problem is reported
    # once, with the first combination that shows it.
    seen: set[str] = set()
    for p in SweepGrid(grid).points():
        try:
            # a sweep point must run; a search configuration may be infeasible (its answer)
            base._with(p, runnable=where == "sweep")
        except SimkitError as e:
            for m in e.messages:
                if m not in seen:
                    seen.add(m)
                    label = ", ".join(f"{k} = {v!r}" for k, v in p.items())
                    ctx.err(f"{where} ({what} {label})", m)
    return SweepGrid(grid)


def _check_sweep(raw: Any, base: Scenario | None, ctx: _Ctx) -> SweepGrid | None:
    return _check_grid(raw, base, ctx)


def scenario_from_dict(d: Mapping[str, Any], base_dir: str | Path = ".") -> Scenario:
    """Validate a scenario table (as parsed from TOML) and build the `Scenario`.

    Relative file paths resolve against `base_dir`. Every problem is reported at once in one
    `SimkitError`, one message per problem, each starting with its key path.
    """
    base_dir_p = Path(base_dir).expanduser().resolve()
    ctx = _Ctx(base_dir_p)
    if not isinstance(d, Mapping):
        raise SimkitError(f"scenario: must be a table, got {type(d).__name__}")
    body = {k: v for k, v in d.items() if k != "sweep"}
    search_raw = None
    if isinstance(body.get("plan"), Mapping) and "search" in body["plan"]:
        search_raw = body["plan"]["search"]
        body["plan"] = {k: v for k, v in body["plan"].items() if k != "search"}
    s = _build(Scenario, body, "", ctx)
    if s is not None:
        s = replace(s, base_dir=str(base_dir_p))
        _check_plan_compare(s, ctx)
        _check_serving(s, ctx)
        if "sweep" not in d:
            _check_compare(s, ctx)
    if ctx.errors:
        if "sweep" in d:  # still report malformed sweep keys alongside the other errors
            _check_sweep(d["sweep"], None, ctx)
        if search_raw is not None:
            _check_grid(search_raw, None, ctx, "plan.search", "configuration")
        raise SimkitError(*dict.fromkeys(ctx.errors))
    assert s is not None
    _check_what_ifs(s)
    if search_raw is not None:
        search = _check_grid(search_raw, s, ctx, "plan.search", "configuration")
        if ctx.errors or search is None:
            raise SimkitError(*dict.fromkeys(ctx.errors))
        if len(search) and s.plan.target_qps is None:
            raise SimkitError("plan.target_qps: required with [plan.search] (the load every "
                              "configuration is planned for)")
        s = replace(s, plan=replace(s.plan, search=search))
    if "sweep" in d:
        grid = _check_sweep(d["sweep"], s, ctx)
        if ctx.errors or grid is None:
            raise SimkitError(*dict.fromkeys(ctx.errors))
        s = replace(s, sweep=grid)
        _check_compare(s, ctx)  # report.compare names sweep keys: check once they are known
        if ctx.errors:
            raise SimkitError(*dict.fromkeys(ctx.errors))
    return s


def load_scenario(path: str | Path, overrides: tuple[str, ...] | list[str] = ()) -> Scenario:
    """Read and validate a scenario TOML file (relative paths in it resolve against its folder).

    A missing `name` defaults to the file's stem. `overrides`: `KEY=VALUE` texts (`--set`,
    `simkit.overrides`) written into the file's table before it is validated, so they are
    checked exactly like the file; errors about them name `--set KEY`.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise SimkitError(f"{path}: no such scenario file")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise SimkitError(f"{path}: not valid TOML ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SimkitError(f"{path}: cannot read ({e})") from None
    data.setdefault("name", p.stem)
    if not overrides:
        return scenario_from_dict(data, base_dir=p.resolve().parent)
    from simkit.overrides import apply_sets, owns

    data, keys = apply_sets(data, overrides)
    try:
        return scenario_from_dict(data, base_dir=p.resolve().parent)
    except SimkitError as e:
        raise SimkitError(*(f"--set {m}" if owns(m, keys) else m for m in e.messages)) from None

