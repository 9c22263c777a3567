"""The scripting API: load a scenario, change it, run costs / simulation / plan / sweep.

Every function takes a `Scenario` (or a path to a scenario TOML) and returns plain data
(dataclasses with `to_dict()`, or dicts); `to_dataframe(result)` turns any of them into a
pandas DataFrame when pandas is installed.

    from simkit import api
    s = api.load("scenarios/chatbot-llama3-8b-h100.toml")
    busier = s.with_(**{"workload.arrival.rate": 8.0, "serving.max_batch": 128})
    api.costs(busier, seq=8192)["kv_cache_bytes_per_sequence"]
    sim = api.simulate(busier, requests=500)         # sim.summary["ttft_s"]["p99"]
    p = api.plan(busier)                              # p.max_qps, p.replicas, p.gpus
    sw = api.sweep("scenarios/attention-512-vs-2048.toml", out_dir="out/attn")
    best = api.search("scenarios/cheapest-70b-20qps.toml").best   # [plan.search]

This module imports the heavy layers lazily; importing it is cheap.
"""

from __future__ import annotations

import concurrent.futures as cf
from pathlib import Path
from typing import Any

from simkit.errors import SimkitError
from simkit.scenario import Scenario, load_scenario, scenario_from_dict

__all__ = ["Scenario", "load", "from_dict", "costs", "applied_model", "simulate", "plan",
           "max_qps", "sweep", "search", "to_dataframe"]


def load(path: str | Path) -> Scenario:
    """Read and validate a scenario TOML file."""
    return load_scenario(path)


def from_dict(d: dict[str, Any], base_dir: str | Path = ".") -> Scenario:
    """Validate a scenario given as a dict (the TOML tables); relative paths -> base_dir."""
    return scenario_from_dict(d, base_dir=base_dir)


def _scenario(s: Scenario | str | Path) -> Scenario:
    return s if isinstance(s, Scenario) else load_scenario(s)


def applied_model(s: Scenario | str | Path) -> dict[str, Any]:
    """The architecture that applies: the kind (the model's own when unset) with its settings
    filled in and settings the kind does not use dropped (the cost layer's `ArchSpec`)."""
    from simkit.costs import ArchSpec

    s = _scenario(s)
    return ArchSpec.from_scenario_model(s.model_config(), s.model).to_dict()


def costs(s: Scenario | str | Path, *, seq: int | None = None, batch: int = 1) -> dict[str, Any]:
    """`simkit cost` numbers for the scenario's model/arch/hardware at context `seq`
    (default: the mean prompt + output length of the workload)."""
    from simkit.costs import ArchSpec, evaluate_costs
    from simkit.plan.capacity import typical_request

    s = _scenario(s)
    cfg = s.model_config()
    if seq is None:
        p, o = typical_request(s)
        seq = int(round(p + o))
    from simkit.catalog.hardware import load_hardware

    return evaluate_costs(cfg, ArchSpec.from_scenario_model(cfg, s.model),
                          load_hardware(s.hardware.name), seq=seq, batch=batch,
                          gpus=s.hardware.gpus_per_replica, ideal=s.hardware.ideal,
                          memory_fraction=s.serving.memory_fraction, engine=s.hardware.engine)


def simulate(s: Scenario | str | Path, *, seed: int | None = None,
             requests: int | None = None, progress: bool = False):
    """Run the request-stream simulation (`simkit.sim.simulate`); the result has `.summary`,
    `.requests`, `.timeseries` and `to_dict()`."""
    from simkit.sim import simulate as _simulate

    return _simulate(_scenario(s), seed=seed, requests=requests, progress=progress)


def max_qps(s: Scenario | str | Path, *, requests: int | None = None):
    """Highest arrival rate one replica sustains under the scenario's SLOs
    (`simkit.plan.capacity.CapacityResult`)."""
    from simkit.plan.capacity import max_qps as _max_qps

    return _max_qps(_scenario(s), requests=requests)


def plan(s: Scenario | str | Path, *, requests: int | None = None):
    """The capacity plan (`simkit.plan.capacity.PlanResult`)."""
    from simkit.plan.capacity import plan as _plan

    return _plan(_scenario(s), requests=requests)


def sweep(s: Scenario | str | Path, *, out_dir: str | Path | None = None,
          executor: cf.Executor | None = None, cluster: str | None = None,
          requests: int | None = None, max_workers: int | None = None):
    """Run the scenario's `[sweep]` grid (`simkit.plan.sweep.SweepResult`).

    `executor`: any concurrent.futures Executor; `cluster`: a dask scheduler address
    (tcp://HOST:8786) instead; neither -> a local process pool. With `out_dir`, results go
    to `out_dir/results.jsonl` and a rerun resumes.
    """
    from simkit.plan.sweep import dask_executor, run_sweep, sweep_points

    s = _scenario(s)
    if executor is not None and cluster is not None:
        raise SimkitError("sweep: give an executor or a cluster address, not both")
    points = sweep_points(s, requests=requests)
    client = None
    if cluster is not None:
        client, executor = dask_executor(cluster)
    try:
        return run_sweep(points, executor, out_dir=out_dir, max_workers=max_workers,
                         scenario=s)
    finally:
        if client is not None:
            client.close()


def search(s: Scenario | str | Path, *, out_dir: str | Path | None = None,
           executor: cf.Executor | None = None, cluster: str | None = None,
           max_workers: int | None = None):
    """Plan every configuration of the scenario's `[plan.search]`, ranked by cost
    (`simkit.plan.search.SearchResult`: `configs`, `best`, `pareto`, `to_dict()`).

    `executor` / `cluster` / `max_workers` as for `sweep`; with `out_dir` a rerun resumes."""
    from simkit.plan.search import run_search
    from simkit.plan.sweep import dask_executor

    s = _scenario(s)
    if executor is not None and cluster is not None:
        raise SimkitError("search: give an executor or a cluster address, not both")
    client = None
    if cluster is not None:
        client, executor = dask_executor(cluster)
    try:
        return run_search(s, executor, out_dir=out_dir, max_workers=max_workers)
    finally:
        if client is not None:
            client.close()


def to_dataframe(result: Any):
    """A pandas DataFrame of a result: sweep -> one row per point; plan -> its probes;
    simulation -> one row per request; anything with `to_dict()` -> one row."""
    try:
        import pandas as pd
    except ImportError:
        raise SimkitError("to_dataframe: pandas is not installed "
                          "(pip install 'simkit[pandas]')") from None
    if hasattr(result, "rows"):  # SweepResult
        return pd.DataFrame(result.rows())
    if hasattr(result, "pareto") and hasattr(result, "configs"):  # SearchResult
        return pd.DataFrame([{**c["params"], **{k: v for k, v in c.items()
                                                if not isinstance(v, (dict, list))}}
                             for c in result.configs])
    if hasattr(result, "probes") and hasattr(result, "max_qps"):
        return pd.DataFrame([p.to_dict() for p in result.probes])
    reqs = getattr(result, "requests", None)
    if reqs is not None and not isinstance(reqs, (int, float)):
        if hasattr(reqs, "to_dict"):
            reqs = reqs.to_dict()
        return pd.DataFrame(reqs)
    if hasattr(result, "to_dict"):
        return pd.DataFrame([result.to_dict()])
    return pd.DataFrame(result)
