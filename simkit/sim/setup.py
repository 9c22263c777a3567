"""What a simulation needs before its first event, and the checks that it can run at all.

Some settings are valid on their own but cannot run with this model on this hardware: a
tensor-parallel degree that does not divide the query heads, weights that do not fit the
GPUs, a `memory_fraction` that leaves no room for one KV block (or one contiguous
reservation), an eviction budget no larger than its sink tokens, a trace file whose rows
cannot be read. The loader cannot judge them (it knows no step model); the simulator finds
them while setting up. They are checked here, once, and every path calls this module:

- `prepare(scenario)`: each pool's step model, KV capacity and KV policy, and the context
  and admission length they share -- `simulate` starts from it;
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
class PoolSetup:
    """One pool's replicas as the settings make them: all replicas (colocated), or with
    [serving.disaggregation] the prefill or the decode pool, each on its own GPUs."""

    name: str  # "replicas" | "prefill" | "decode"
    model: Any  # the target's step model on the pool's GPUs
    policy: Any  # simkit.sim.kvcache.KVPolicy
    capacity_bytes: float  # KV bytes left after the weights (and a draft's weights)
    gpus: int
    hardware: str
    spec: Any = None  # simkit.sim.speculative.Speculation, when the scenario speculates


@dataclass
class Setup:
    """Each pool's step model and KV policy (`pools`; the pool that decodes comes last), and
    the context and admission length every pool shares."""

    context: int  # the deployed context (model.max_context, else the model's own)
    model_name: str  # the model of the pool that decodes
    max_seq_len: int  # longest sequence admitted (serving.max_seq_len, else the context)
    pools: list  # PoolSetup, in order: prefill then decode when disaggregated


def _keyed(e: SimkitError, key: str) -> SimkitError:
    """The cost layer's error (it speaks of `--gpus` / `gpus:` for `simkit cost`) with the
    scenario key path in front."""
    return SimkitError(*(f"{key}: {m[len('gpus: '):] if m.startswith('gpus: ') else m}"
                         for m in e.messages))


def prepare(scenario, step_model=None, seed: int | None = None) -> Setup:
    """Build each pool's step model and KV policy; `SimkitError` (naming the key) when the
    settings cannot run on this model and hardware (see the module docstring). `seed` feeds
    a speculating pool's per-request acceptance streams (default: the scenario's)."""
    from simkit.sim.scheduler import admission_of
    from simkit.sim.workload import beyond_context

    serving = scenario.serving
    seed = int(scenario.seed if seed is None else seed)
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
    _check_rounds(serving)
    if admission_of(serving) == "no_evict" and getattr(serving, "disaggregation", None):
        raise SimkitError("serving.admission = no_evict: not modelled with "
                          "serving.disaggregation (the decode pool takes arriving caches as "
                          "memory frees)")
    specs = _pool_models(scenario, step_model)
    context = min(int(sm.max_context) for _, sm, _, _ in specs)
    last = specs[-1][1]  # the pool that decodes
    model_name = getattr(getattr(last, "model", None), "name", scenario.model.name)
    max_seq_len = serving.max_seq_len if serving.max_seq_len is not None else context
    if max_seq_len > context:
        beyond_context(f"serving.max_seq_len {max_seq_len}", context, model_name)
    pools = []
    for name, sm, gpus, hw in specs:
        spec = _speculation(scenario, sm, seed)
        where = "" if name == "replicas" else f" (the {name} pool)"
        try:
            policy, cap = _kv_policy(serving, sm, spec, kind, int(max_seq_len), budget, where)
        except SimkitError as e:
            if name != "replicas":
                raise SimkitError(*(m if m.startswith("serving.") else _pool_message(name, m)
                                    for m in e.messages)) from None
            # the weights do not fit (a cache the scenario sized names its own key)
            if "does not fit" in e.messages[0] and not e.messages[0].startswith("serving."):
                raise _keyed(e, "hardware.gpus_per_replica") from None
            raise
        pools.append(PoolSetup(name, sm, policy, cap, gpus, hw, spec))
    return Setup(context=context, model_name=model_name, max_seq_len=int(max_seq_len),
                 pools=pools)


def _check_rounds(serving) -> None:
    """Multi-step scheduling (`serving.scheduler_steps` > 1) where the simulator models it:
    rounds of decode iterations between scheduler calls, as vLLM 0.6 runs them."""
    steps = int(getattr(serving, "scheduler_steps", 1))
    if steps == 1:
        return
    key = f"serving.scheduler_steps = {steps}"
    if serving.scheduler == "static":
        raise SimkitError(f"{key}: multi-step scheduling needs iteration-level scheduling "
                          "(continuous, chunked or prefill_first), not static")
    if getattr(serving, "speculative", None) is not None:
        raise SimkitError(f"{key}: not modelled with serving.speculative (vLLM refuses "
                          "the pair: speculative decoding is not supported with multi-step)")
    if getattr(serving, "disaggregation", None) is not None:
        raise SimkitError(f"{key}: not modelled with serving.disaggregation")
    if getattr(serving, "kv_budget_tokens", None) is not None:
        raise SimkitError(f"{key}: not modelled with serving.kv_budget_tokens (eviction "
                          "moves the cache one iteration at a time)")
    if serving.kv_memory != "paged":
        raise SimkitError(f"{key}: needs serving.kv_memory = paged (a round's lookahead "
                          "slots are blocks)")


def _pool_models(scenario, step_model) -> list[tuple[str, Any, int, str]]:
    """(pool name, step model, GPUs per replica, hardware name) of each pool."""
    from simkit.costs.compiled import step_model_for

    hw = scenario.hardware
    d = getattr(scenario.serving, "disaggregation", None)
    if d is None:
        if step_model is None:
            try:
                step_model = step_model_for(scenario)
            except SimkitError as e:  # tensor parallelism that does not divide the heads
                raise _keyed(e, "hardware.gpus_per_replica") \
                    if e.messages[0].startswith("gpus: ") else e from None
        return [("replicas", step_model, int(hw.gpus_per_replica), hw.name)]
    out = []
    for name in ("prefill", "decode"):
        h = getattr(d, f"{name}_hardware") or hw.name
        g = int(getattr(d, f"{name}_gpus_per_replica") or hw.gpus_per_replica)
        if step_model is not None and h == hw.name and g == int(hw.gpus_per_replica):
            m = step_model
        else:
            try:
                m = step_model_for(scenario, name=h, gpus_per_replica=g)
            except SimkitError as e:  # (the pool's GPUs, named by their key)
                raise SimkitError(*(_pool_message(name, msg) for msg in e.messages)) \
                    from None
        out.append((name, m, g, h))
    return out


def _pool_message(pool: str, msg: str) -> str:
    """A step-model or memory error of one pool, under the key that sets the pool's GPUs."""
    key = f"serving.disaggregation.{pool}_gpus_per_replica"
    if msg.startswith("gpus: "):
        return f"{key}: {msg[len('gpus: '):]}"
    return f"{key}: {msg}" if "does not fit" in msg else \
        f"serving.disaggregation ({pool} pool): {msg}"


def _speculation(scenario, m, seed: int):
    """The pool's `Speculation` (draft on the pool's GPUs) or None."""
    sp = getattr(scenario.serving, "speculative", None)
    if sp is None:
        return None
    from simkit.costs.compiled import step_model_for
    from simkit.sim.speculative import Speculation, length_probabilities

    if getattr(scenario.serving, "kv_budget_tokens", None) is not None:
        raise SimkitError("serving.speculative: not modelled with serving.kv_budget_tokens "
                          "(eviction moves the cache under the drafted tokens)")
    try:
        draft = step_model_for(scenario, draft=sp.draft, name=m.hardware.name,
                               gpus_per_replica=m.gpus)
    except SimkitError as e:
        raise SimkitError(*(f"serving.speculative.draft: {msg}" for msg in e.messages)) \
            from None
    return Speculation(draft=draft, k=int(sp.tokens), probabilities=length_probabilities(sp),
                       seed=seed)


def _kv_policy(serving, m, spec, kind: str, max_seq_len: int, budget, where: str):
    """The pool's KV manager and capacity (the draft's weights and cache, when speculating,
    share the memory with the target's)."""
    from types import SimpleNamespace

    from simkit.sim.kvcache import KVPolicy

    # (a duck-typed step model without an engine has no activation reserve)
    capacity_bytes = float(m.kv_capacity_for(serving) if hasattr(m, "kv_capacity_for")
                           else m.kv_capacity_bytes(float(serving.memory_fraction)))
    layout_of = m
    if spec is not None:
        from simkit.sim.speculative import combined_layout

        draft_bytes = float(spec.draft.weight_bytes)
        if getattr(serving, "kv_cache_bytes", None) is None:
            capacity_bytes -= draft_bytes  # the fraction's room holds the draft too
            if capacity_bytes <= 0:
                raise SimkitError(f"serving.speculative.draft: the draft's weights "
                                  f"({draft_bytes / GiB:.3g} GiB) leave no KV memory beside "
                                  f"the target's on {m.gpus} x {m.hardware.name}{where}")
        elif capacity_bytes + draft_bytes > m.memory_after_weights_bytes:
            # a cache sized in bytes stays that size: the draft must fit beside it
            raise SimkitError(f"serving.kv_cache_bytes: {capacity_bytes / GiB:.3g} GiB of KV "
                              f"cache, the target's weights ({m.weight_bytes / GiB:.3g} GiB) "
                              f"and the draft's ({draft_bytes / GiB:.3g} GiB) do not fit on "
                              f"{m.gpus} x {m.hardware.name}{where}")
        layout_of = SimpleNamespace(kv_layout=combined_layout(m.kv_layout,
                                                              spec.draft.kv_layout))
    policy = KVPolicy(layout_of, kind=kind, block_size=int(serving.block_size),
                      capacity_bytes=capacity_bytes, max_seq_len=int(max_seq_len),
                      budget_tokens=budget, sink_tokens=int(getattr(serving, "sink_tokens", 0)))
    # room for one sequence: one block (or its contiguous reservation) beside its state
    if policy.max_units(1) < (1 if policy.unit_bytes > 0 else 0):
        what = ("the constant state of one sequence" if policy.unit_bytes <= 0 else
                f"reserving {max_seq_len} tokens per request (serving.max_seq_len)"
                if kind == "contiguous" else f"one block of {serving.block_size} tokens")
        key = "kv_cache_bytes" if getattr(serving, "kv_cache_bytes", None) is not None \
            else "memory_fraction"
        raise SimkitError(f"serving.{key}: {what} needs "
                          f"{(policy.unit_bytes + policy.fixed_bytes) / GiB:.3g} GiB of KV "
                          f"memory but only {capacity_bytes / GiB:.3g} GiB is there{where}")
    return policy, capacity_bytes


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
