"""What a simulation needs before its first event, and the checks that it can run at all.

Some settings are valid on their own but cannot run with this model on this hardware: a
tensor-parallel degree that does not divide the query heads, weights that do not fit the
GPUs, a `memory_fraction` that leaves no room for one KV block (or one contiguous
reservation), an eviction budget no larger than its sink tokens, a trace file whose rows
cannot be read. The loader cannot judge them (it knows no step model); the simulator finds
them while setting up. They are checked here, once, and every path calls this module:

- `prepare(scenario)`: the step model, KV capacity, context, admission length and KV policy
  of one replica -- `simulate` starts from it;
- `draw_requests(scenario, n, seed, setup)`: the run's requests (independent, or sessions
  that unfold turn by turn);
- `runtime_check(scenario)`: `prepare` plus the first request of the workload (which reads
  and validates its files), for its errors only. `Scenario.with_()` calls it, and so the
  loader's check of every `[sweep]` point: a grid point that would fail at run time stops
  `simkit sweep` before anything is written.

Every error is a `SimkitError` naming the scenario key path.
(A `[plan.search]` configuration that cannot run is not an error: it is the answer "this
configuration is infeasible", recorded as a row with its reason by `simkit.plan.search`.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from simkit.errors import SimkitError
from simkit.units import GiB


@dataclass
class Setup:
    """One replica's step model and KV policy, as the scenario's settings make them."""

    step_model: Any
    capacity_bytes: float  # KV bytes left after the weights
    context: int  # the deployed context (model.max_context, else the model's own)
    model_name: str
    max_seq_len: int  # longest sequence admitted (serving.max_seq_len, else the context)
    policy: Any  # simkit.sim.kvcache.KVPolicy


def _keyed(e: SimkitError, key: str) -> SimkitError:
    """The cost layer's error (it speaks of `--gpus` / `gpus:` for `simkit cost`) with the
    scenario key path in front."""
    return SimkitError(*(f"{key}: {m[len('gpus: '):] if m.startswith('gpus: ') else m}"
                         for m in e.messages))


def prepare(scenario, step_model=None) -> Setup:
    """Build one replica's step model and KV policy; `SimkitError` (naming the key) when
    the settings cannot run on this model and hardware (see the module docstring)."""
    from simkit.sim.kvcache import KVPolicy
    from simkit.sim.workload import beyond_context

    serving = scenario.serving
    gpus_key = "hardware.gpus_per_replica"
    if step_model is None:
        from simkit.costs.compiled import step_model_for

        try:
            step_model = step_model_for(scenario)
        except SimkitError as e:  # tensor parallelism that does not divide the heads
            raise _keyed(e, gpus_key) if e.messages[0].startswith("gpus: ") else e from None
    m = step_model
    try:
        capacity_bytes = float(m.kv_capacity_bytes(float(serving.memory_fraction)))
    except SimkitError as e:  # the weights do not fit
        raise _keyed(e, gpus_key) from None
    context = int(m.max_context)
    model_name = getattr(getattr(m, "model", None), "name", scenario.model.name)
    max_seq_len = serving.max_seq_len if serving.max_seq_len is not None else context
    if max_seq_len > context:
        beyond_context(f"serving.max_seq_len {max_seq_len}", context, model_name)
    kind = serving.kv_memory
    if kind not in ("paged", "contiguous"):
        raise SimkitError(f"serving.kv_memory: unknown {kind!r}; choose paged or contiguous")
    if serving.preemption not in ("recompute", "swap"):
        raise SimkitError(f"serving.preemption: unknown {serving.preemption!r}; choose "
                          "recompute or swap")
    if int(serving.replicas) < 1:
        raise SimkitError(f"serving.replicas: must be >= 1, got {serving.replicas}")
    sinks = int(getattr(serving, "sink_tokens", 0))
    budget = getattr(serving, "kv_budget_tokens", None)
    if budget is not None:
        budget = int(budget)
        if budget <= sinks:
            raise SimkitError(f"serving.kv_budget_tokens: must exceed sink_tokens ({sinks}), "
                              f"got {budget}")
    policy = KVPolicy(m, kind=kind, block_size=int(serving.block_size),
                      capacity_bytes=capacity_bytes, max_seq_len=int(max_seq_len),
                      budget_tokens=budget, sink_tokens=sinks)
    # room for one sequence: one block (or its contiguous reservation) beside its state
    if policy.max_units(1) < (1 if policy.unit_bytes > 0 else 0):
        what = ("the constant state of one sequence" if policy.unit_bytes <= 0 else
                f"reserving {max_seq_len} tokens per request (serving.max_seq_len)"
                if kind == "contiguous" else f"one block of {serving.block_size} tokens")
        raise SimkitError(f"serving.memory_fraction: {what} needs "
                          f"{(policy.unit_bytes + policy.fixed_bytes) / GiB:.3g} GiB of KV "
                          f"memory but only {capacity_bytes / GiB:.3g} GiB is left after the "
                          "weights")
    return Setup(step_model=m, capacity_bytes=capacity_bytes, context=context,
                 model_name=model_name, max_seq_len=int(max_seq_len), policy=policy)


@dataclass
class Requests:
    """The requests of a run, drawn up front: the request table (arrival times filled in
    as sessions unfold when `plan` is a sessions plan), and each request's shortest and
    longest length in positions (for admission)."""

    table: Any  # simkit.sim.request.RequestTable
    plan: Any  # simkit.sim.sessions plan, or None for independent requests
    n: int  # requests (turns, with sessions)
    shortest: Any  # np.ndarray
    longest: Any  # np.ndarray


def draw_requests(scenario, n: int, seed: int, st: Setup) -> Requests:
    """The scenario's `n` requests (or sessions) from `seed`'s streams: sessions unfold turn
    by turn (`simkit.sim.sessions`); independent requests come from the workload generator,
    with shared system prompts added."""
    import numpy as np

    from simkit.sim import sessions as sessions_mod
    from simkit.sim.request import RequestTable
    from simkit.sim.workload import generate_workload

    base_dir = getattr(scenario, "base_dir", None)
    if sessions_mod.uses_sessions(scenario.workload, base_dir):
        plan = sessions_mod.plan_sessions(scenario.workload, n, seed=seed, context=st.context,
                                          model_name=st.model_name, base_dir=base_dir)
        n = plan.n_turns
        table = RequestTable(np.full(n, np.nan), np.zeros(n, dtype=np.int64),
                             np.zeros(n, dtype=np.int64))
        return Requests(table, plan, n, plan.prompt, plan.prompt + plan.output - 1)
    wl = generate_workload(scenario.workload, n_requests=n, seed=seed, context=st.context,
                           model_name=st.model_name, base_dir=base_dir)
    prompt, output, tenant, system = sessions_mod.add_system_prompts(
        scenario.workload, wl.prompt_tokens, wl.output_tokens, seed, st.context)
    table = RequestTable(wl.arrival_s, prompt, output)
    table.tenant, table.system_tokens = tenant, system
    return Requests(table, None, n, table.prompt_tokens,
                    table.prompt_tokens + table.output_tokens - 1)


def runtime_check(scenario) -> None:
    """Raise the `SimkitError` a simulation of `scenario` would raise while setting up
    (see the module docstring); None when it can run."""
    st = prepare(scenario)
    # one request (one session) reads and checks the workload's files (traces, empirical
    # lengths), as the run would: a file that cannot be read fails every point the same way
    draw_requests(scenario, 1, int(scenario.seed), st)
