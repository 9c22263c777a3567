"""Resumable sweeps of a scenario's `[sweep]` grid over any `concurrent.futures.Executor`.

- Each grid point becomes a `SweepPoint`: its parameters and its resolved scenario (as a
  plain dict, which pickles anywhere). Every point keeps the scenario's seed: common random
  numbers, so every point sees the same arrivals and the same lengths (each workload
  component has its own stream, `simkit.sim.workload.stream`) and the differences between
  points come from their settings, not from the draw. A swept `seed` key is the way to run
  replications.
- `run_sweep` ships those dicts to the executor's workers (a local process pool by default; a
  dask cluster through `distributed.Client.get_executor()` -- the same code); workers rebuild
  the scenario and run it, the cost layer caching compiled step models per worker process.
  Lambdified functions never travel: they do not pickle. Points are submitted a few at a
  time, in order; an optional `gate` may skip a point just before it would be submitted (a
  configuration search prunes this way, see `simkit.plan.search`).
- Only the parent process writes `DIR/results.jsonl`, one JSON object per finished point,
  flushed and fsynced as each point finishes. A line cut short by a kill is detected (no
  trailing newline) and cut off; a rerun skips every point already recorded, so a sweep
  killed at any moment completes on resume with no point lost or repeated. A line damaged
  any other way (not a JSON record) is dropped on resume -- the file is rewritten
  atomically without it, with one warning naming the lines -- and its point runs again:
  the results are a record of deterministic runs, so a lost one is recomputed, not
  guessed.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from simkit.errors import SimkitError
from simkit.scenario import Scenario, scenario_from_dict

RESULTS_FILE = "results.jsonl"
SCENARIO_FILE = "scenario.toml"


def point_key(params: Mapping[str, Any]) -> str:
    """Canonical identity of a grid point: its parameters as sorted JSON."""
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class SweepPoint:
    """One grid point, ready to ship to a worker (plain data only)."""

    index: int
    params: dict[str, Any]
    scenario: dict[str, Any]  # the point's resolved scenario (the scenario's seed: CRN)
    base_dir: str = "."

    @property
    def key(self) -> str:
        return point_key(self.params)

    @property
    def seed(self) -> int:
        return int(self.scenario["seed"])

    def to_task(self) -> dict[str, Any]:
        return {"index": self.index, "params": self.params, "scenario": self.scenario,
                "base_dir": self.base_dir}


def sweep_points(scenario: Scenario, *, requests: int | None = None) -> list[SweepPoint]:
    """The scenario's grid as `SweepPoint`s, in grid order (last key varies fastest).

    A scenario without `[sweep]` is one point with no parameters. Every point keeps the
    scenario's seed (common random numbers). `requests` overrides `workload.requests` for
    every point (the resolved scenarios say so).
    """
    grid = scenario.points() or [{}]
    out = []
    for i, params in enumerate(grid):
        s = scenario.at_point(params)
        if requests is not None:
            s = s.with_(**{"workload.requests": int(requests)})
        out.append(SweepPoint(index=i, params=dict(params), scenario=s.to_dict(),
                              base_dir=scenario.base_dir))
    return out


# --------------------------------------------------------------------------- worker side

@lru_cache(maxsize=64)
def _scenario_cached(scenario_json: str, base_dir: str) -> Scenario:
    # Workers see the same point scenarios again and again across a plan's probes; caching
    # the validated object keeps the (cheap) validation out of the loop.
    return scenario_from_dict(json.loads(scenario_json), base_dir=base_dir)


def task_scenario(task: Mapping[str, Any]) -> Scenario:
    """Rebuild (and cache, per worker process) the scenario a task carries."""
    return _scenario_cached(json.dumps(task["scenario"], sort_keys=True), task["base_dir"])


def simulate_point(task: Mapping[str, Any]) -> dict[str, Any]:
    """The default point function: simulate the point's scenario; metrics = the summary."""
    from simkit.sim import simulate

    s = task_scenario(task)
    res = simulate(s, seed=s.seed)
    return dict(res.summary)


def _run_task(point_fn: Callable[[Mapping[str, Any]], dict], task: dict) -> dict[str, Any]:
    """Run one point in a worker; a SimkitError becomes a recorded error, not a crash."""
    try:
        metrics = point_fn(task)
        err = None
    except SimkitError as e:
        metrics, err = None, list(e.messages)
    return {"index": task["index"], "params": task["params"], "seed": task["scenario"]["seed"],
            "scenario": task["scenario"], "metrics": _plain(metrics), "error": err}


def _plain(o: Any) -> Any:
    """numpy scalars/arrays and dataclasses -> JSON types (exact: floats keep every bit)."""
    if isinstance(o, Mapping):
        return {str(k): _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_plain(v) for v in o]
    if hasattr(o, "to_dict"):
        return _plain(o.to_dict())
    if hasattr(o, "item") and callable(o.item) and getattr(o, "shape", None) == ():
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    return o


# --------------------------------------------------------------------------- results file

def read_results(path: str | Path, *, repair: bool = False) -> list[dict[str, Any]]:
    """Complete records of a results.jsonl, in file order.

    A torn last line (no newline: killed mid-write) is skipped. Any other line that is not a
    record (not JSON, or JSON without `params` and `metrics`: the file was damaged some other
    way) is skipped too: its point simply runs again. With `repair=True` (a sweep about to
    append) the file is made clean first: a torn tail is cut off, and when any other line is
    bad the file is rewritten without it -- atomically (a temporary file, fsynced, renamed
    over the old one: a kill leaves the old file or the new one, never a mix) -- and one
    warning names the lines dropped.
    """
    p = Path(path)
    if not p.exists():
        return []
    data = p.read_bytes()
    end = data.rfind(b"\n") + 1  # bytes after the last newline are a torn write
    out, keep, bad = [], [], []
    for i, line in enumerate(data[:end].split(b"\n")[:-1], 1):
        try:
            rec = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            rec = None
        if isinstance(rec, dict) and "params" in rec and "metrics" in rec:
            out.append(rec)
            keep.append(line)
        else:
            bad.append(i)
    if repair and bad:
        tmp = p.with_name(p.name + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(b"".join(line + b"\n" for line in keep))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
        import warnings

        from simkit.errors import SimkitWarning

        where = ", ".join(map(str, bad[:5])) + (f" and {len(bad) - 5} more" if len(bad) > 5
                                                else "")
        warnings.warn(SimkitWarning(
            f"{p}: dropped {len(bad)} corrupt line(s) (line {where}: not a JSON record) and "
            "rewrote the file without them; their points run again"))
    elif repair and end < len(data):
        with open(p, "r+b") as fh:
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
    return out


def _append(fh, rec: Mapping[str, Any]) -> None:
    fh.write(json.dumps(rec, allow_nan=False, separators=(",", ":")) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


# --------------------------------------------------------------------------- driver

class SerialExecutor(cf.Executor):
    """Runs each call at submit time in this process: the reference for the parallel ones.
    `run_sweep` runs its points inline, one by one, when given one."""

    def submit(self, fn, /, *args, **kwargs):
        f: cf.Future = cf.Future()
        try:
            f.set_result(fn(*args, **kwargs))
        except BaseException as e:  # noqa: BLE001 - delivered through the future
            f.set_exception(e)
        return f


@dataclass
class SweepResult:
    """Every point's record (params, seed, resolved scenario, metrics, error), grid order."""

    records: list[dict[str, Any]]
    ran: int = 0  # points run by this call
    skipped: int = 0  # points found already finished
    out_dir: str | None = None
    errors: list[str] = field(default_factory=list)
    pruned: int = 0  # points a gate skipped

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "ran": self.ran, "skipped": self.skipped,
                "out_dir": self.out_dir, "errors": self.errors, "pruned": self.pruned}

    def rows(self) -> list[dict[str, Any]]:
        """Flat rows: params plus scalar metrics, nested ones with dotted names
        (`ttft_s.p99`, `steady_state.ttft_s.p99`, `steady_state.ttft_s.ci_high`); lists are
        left out."""
        rows = []
        for r in self.records:
            row = {"index": r["index"], **r["params"], "seed": r["seed"]}
            _flatten(r.get("metrics") or {}, "", row)
            if r.get("error"):
                row["error"] = "; ".join(r["error"])
            if r.get("pruned"):
                row["pruned"] = r["pruned"]
            rows.append(row)
        return rows

    def to_dataframe(self):
        """The rows as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - depends on the environment
            raise SimkitError("to_dataframe: pandas is not installed "
                              "(pip install 'simkit[pandas]')") from None
        return pd.DataFrame(self.rows())


def _flatten(d: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    for k, v in d.items():
        if isinstance(v, Mapping):
            _flatten(v, f"{prefix}{k}.", out)
        elif not isinstance(v, (list, tuple)):
            out[f"{prefix}{k}"] = v


def prepare_out_dir(out_dir: str | Path, scenario: Scenario) -> Path:
    """Create DIR and write the resolved scenario beside the results.

    Refuses a DIR holding a sweep of a different scenario (results would mix); a changed
    `[sweep]` or `[plan.search]` grid alone is fine (points are matched by parameters and
    resolved scenario).
    """
    from simkit.outputs import check_output_dir

    d = check_output_dir(out_dir, "--out")
    f = d / SCENARIO_FILE
    if f.exists():
        try:
            old = scenario_from_dict(_toml_loads(f.read_text()), base_dir=scenario.base_dir)
        except (SimkitError, ValueError):
            old = None
        if old is None or _without_grids(old) != _without_grids(scenario):
            raise SimkitError(f"--out: {d} holds a sweep of a different scenario "
                              f"({f} differs); choose another folder or remove it")
    d.mkdir(parents=True, exist_ok=True)
    tmp = d / (SCENARIO_FILE + ".tmp")
    tmp.write_text(scenario.to_toml())
    os.replace(tmp, f)  # atomic: a kill leaves the old file or the whole new one
    return d


def _without_grids(s: Scenario) -> Scenario:
    """The scenario without its [sweep] and [plan.search] grids (a changed grid over the
    same scenario may reuse the folder: points are matched one by one)."""
    from dataclasses import replace

    from simkit.scenario import SweepGrid

    s = replace(s, sweep=SweepGrid())
    return replace(s, plan=replace(s.plan, search=SweepGrid())) if s.plan is not None else s


def _toml_loads(text: str) -> dict:
    import tomllib

    return tomllib.loads(text)


def run_sweep(points: Iterable[SweepPoint], executor: cf.Executor | None = None, *,
              out_dir: str | Path | None = None,
              point_fn: Callable[[Mapping[str, Any]], dict] = simulate_point,
              max_workers: int | None = None,
              progress: Callable[[dict, int, int], None] | None = None,
              scenario: Scenario | None = None,
              gate: Callable[[SweepPoint], str | None] | None = None,
              max_in_flight: int | None = None,
              heartbeat: Callable[[list[dict]], None] | None = None,
              heartbeat_s: float = 5.0) -> SweepResult:
    """Run every point not already in `out_dir/results.jsonl` on `executor`.

    `executor`: any `concurrent.futures.Executor` (not shut down here); None -> a local
    process pool of `max_workers` (default: the CPU count), shut down at the end.
    `point_fn(task) -> metrics dict` must be a picklable top-level function.
    `progress(record, done, total)` is called in the parent as each point finishes.
    `scenario`: the swept scenario, written resolved as `out_dir/scenario.toml`.
    `gate(point) -> reason | None`: asked in the parent, in point order, just before a point
    would be submitted; a reason skips the point (its record has `pruned` = the reason and is
    not written to the results file). With a gate, at most `max_in_flight` points (default:
    `max_workers`, else the CPU count) run at once, so the gate sees the results so far.
    `heartbeat(params of the points running)`: called in the parent whenever `heartbeat_s`
    seconds pass with no point finishing (a progress display that never goes silent).
    Returns every point's record in the order given. A point whose run raises `SimkitError`
    is recorded with its error (it is deterministic: rerunning would fail the same way).
    Everything is checked before anything is written.
    """
    points = list(points)
    by_key = {p.key: p for p in points}
    if len(by_key) != len(points):
        raise SimkitError("sweep: two grid points have the same parameters")
    done: dict[str, dict] = {}
    results_path = None
    if out_dir is not None:
        results_path = Path(out_dir) / RESULTS_FILE
        for rec in read_results(results_path):
            k = point_key(rec["params"])
            p = by_key.get(k)
            if p is None or k in done:
                continue  # not part of this grid (or a duplicate): ignore
            if rec.get("scenario") != p.scenario:
                raise SimkitError(f"{results_path}: point {k} was run with a different "
                                  "scenario; choose another --out folder or remove it")
            done[k] = rec
        if scenario is not None:
            prepare_out_dir(out_dir, scenario)
        else:
            Path(out_dir).mkdir(parents=True, exist_ok=True)
        read_results(results_path, repair=True)  # cut a torn last line before appending
    todo = [p for p in points if p.key not in done]
    total, n_done = len(points), len(done)
    new: dict[str, dict] = {}
    pruned: dict[str, dict] = {}
    own = executor is None and len(todo) > 1
    if executor is None and len(todo) > 1:
        workers = max(1, min(max_workers or os.cpu_count() or 1, len(todo)))
        executor = cf.ProcessPoolExecutor(max_workers=workers)
    window = len(todo) if gate is None else \
        max(1, max_in_flight or max_workers or os.cpu_count() or 1)
    fh = open(results_path, "a", encoding="utf-8") if results_path is not None else None
    queue = iter(todo)

    def next_task() -> dict | None:
        """The next point the gate lets through (recording those it prunes)."""
        for p in queue:
            reason = gate(p) if gate is not None else None
            if reason is None:
                return p.to_task()
            pruned[p.key] = {"index": p.index, "params": p.params,
                             "seed": p.scenario["seed"], "scenario": p.scenario,
                             "metrics": None, "error": None, "pruned": reason}
        return None

    def finish(rec: dict) -> None:
        nonlocal n_done
        if fh is not None:
            _append(fh, rec)
        new[point_key(rec["params"])] = rec
        n_done += 1
        if progress is not None:
            progress(rec, n_done, total)

    running: dict = {}  # future -> its point's parameters
    try:
        if executor is None or isinstance(executor, SerialExecutor):
            # in this process, one point at a time, each recorded as soon as it finishes
            while (task := next_task()) is not None:
                finish(_run_task(point_fn, task))
        else:
            while True:
                while len(running) < window and (task := next_task()) is not None:
                    running[executor.submit(_run_task, point_fn, task)] = task["params"]
                if not running:
                    break
                fin, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED,
                                 timeout=heartbeat_s if heartbeat is not None else None)
                if not fin:
                    heartbeat(list(running.values()))
                for f in fin:
                    running.pop(f)
                    finish(f.result())
    except BaseException:
        for f in running:
            f.cancel()
        raise
    finally:
        if fh is not None:
            fh.close()
        if own:
            executor.shutdown(wait=True, cancel_futures=True)
    records = []
    errors = []
    for p in points:
        rec = done.get(p.key) or new.get(p.key) or pruned[p.key]
        rec = {**rec, "index": p.index}  # order of this run (a reordered grid is fine)
        records.append(rec)
        if rec.get("error"):
            errors.append(f"point {p.key}: " + "; ".join(rec["error"]))
    return SweepResult(records=records, ran=len(new), skipped=len(done),
                       out_dir=str(out_dir) if out_dir is not None else None, errors=errors,
                       pruned=len(pruned))


def dask_executor(address: str, *, timeout_s: float = 30):
    """(client, executor) for a dask distributed scheduler at `address` (tcp://HOST:PORT).

    Needs the `cluster` extra (dask + distributed). The caller closes the client.
    """
    try:
        from distributed import Client
    except ImportError:
        raise SimkitError("--cluster: dask distributed is not installed "
                          "(pip install 'simkit[cluster]')") from None
    _check_reachable(address, timeout_s)
    try:
        client = Client(address, timeout=timeout_s)
    except (OSError, TimeoutError) as e:
        raise SimkitError(f"--cluster: cannot reach a dask scheduler at {address} ({e})") from None
    return client, client.get_executor(pure=False)


def _check_reachable(address: str, timeout_s: float) -> None:
    """Fail at once when nothing listens at a tcp:// address: dask's own client keeps
    retrying a refused connection until its timeout (30 s) before it gives up."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(address if "://" in address else f"tcp://{address}")
    if u.scheme not in ("tcp", "tls") or not u.hostname or not u.port:
        raise SimkitError(f"--cluster: expected tcp://HOST:PORT, got {address!r}")
    try:
        socket.create_connection((u.hostname, u.port), timeout=min(timeout_s, 10)).close()
    except OSError as e:
        raise SimkitError(f"--cluster: cannot reach a dask scheduler at {address} "
                          f"({e.strerror or e})") from None


def _stderr_progress(rec: dict, done: int, total: int) -> None:
    params = ", ".join(f"{k}={v}" for k, v in rec["params"].items()) or "(no parameters)"
    status = "error: " + "; ".join(rec["error"]) if rec.get("error") else "done"
    print(f"[{done}/{total}] {params}: {status}", file=sys.stderr, flush=True)
