"""What the cost model says about a configuration before anything is simulated.

Everything here reads the step model's public timing and memory functions and the very
requests a simulation of the scenario would draw (same seed: common random numbers), so the
numbers are about the same workload the simulator then runs.

- `feasibility`: None, or why no load can be served -- tensor parallelism does not divide the
  query heads; the weights do not fit the GPUs' memory; anything else the simulator's set-up
  rejects (`simkit.sim.setup`: no room for one KV block, an eviction budget within its
  sinks); requests do not fit the KV memory left; or the SLOs cannot be met even by a request served alone. The last uses latency
  floors that hold at any load: a request's TTFT is at least the time of its whole prefill
  run alone (chunks only add steps), and its TPOT at least one decode step of a batch of
  one at its prompt length. If the p99 of a floor exceeds its SLO, so does the p99 of the
  latency.
- `rate_bound_per_s`: an upper bound on the request rate one replica sustains. A step is
  timed as the weight matmuls (a roofline: compute or weight reads, whichever is longer),
  plus the token mixing with its cache reads, plus fixed costs (the cost layer's step
  model). Over any run, therefore:
  * the weight-matmul time of all steps is at least max(steps x the shortest step,
    tokens x the marginal compute time of a token), where steps >= decode tokens /
    serving.max_batch (a decode step serves at most max_batch sequences) and every prompt
    and output token passes through the matmuls once (`per_token_compute_s`);
  * on top of it, each decode slot reads its own cache, at least the cache at its prompt
    length (`_decode_read_s`).
  The mean of that demand per request bounds the rate: rate <= 1 / mean demand. A second
  bound is Little's law on KV memory: a request holds at least its prompt's cache through
  each of its decode steps, each at least the shortest step, so rate x mean(cache bytes x
  decode steps x shortest step) <= KV capacity.
- `finite_run_margin`: a finite run can meet the SLOs a little above the rate it sustains
  forever, because a queue needs time to build: at a load (1 + e) x capacity, the wait of a
  request arriving after T seconds is about e x T, invisible while e x T stays under the
  TTFT (or end-to-end) target W. The planner allows e up to 2 W / T (T = the simulated span
  of arrivals) before it trusts the bound; with only a TPOT target a queue never shows, and
  the bound gives no lower limit (margin infinite).
The old planner's cost-model estimate (`simkit.plan.capacity.analytic_qps`) was not a
bound: chunked prefill ran 9% above it. `tests/test_plan_bounds.py` checks this one against
simulated capacities.

Disaggregated ([serving.disaggregation]), the unit is a group of p prefill and d decode
replicas, each pool on its own GPUs: the prompts' matmuls load the prefill pool, the
answers' the decode pool, so the group's rate is at most min(p x the prefill replica's
bound, d x the decode replica's), each bound as above with only its own tokens. Speculative
decoding ([serving.speculative]) emits at most k + 1 tokens per iteration: a decode slot's
steps and cache reads per token are at least 1 / (k + 1) of one, and its TPOT floor is an
iteration of one (the draft's k steps and the verification) over k + 1 tokens; the draft's
weights come off the KV memory and its cache adds to every request's.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from simkit.errors import SimkitError

#: more than this fraction of requests too large for the KV memory and no load is served
#: (it matches capacity.MIN_COMPLETED_FRACTION: the p99 targets speak for 99% of requests)
MAX_UNSERVABLE_FRACTION = 0.01


@dataclass(frozen=True)
class Sample:
    """The request lengths a simulation of the scenario draws (arrival order)."""

    prompt_tokens: np.ndarray
    output_tokens: np.ndarray


def workload_sample(s, n: int, context: int) -> Sample:
    """The first `n` requests' lengths, as `simulate(s, requests=n)` draws them."""
    d = s.to_dict()
    key = json.dumps(d["workload"], sort_keys=True)
    return _sample(key, s.base_dir, int(s.seed), int(n), int(context), s.model.name,
                   json.dumps(d["model"], sort_keys=True))


@lru_cache(maxsize=32)
def _sample(workload_json: str, base_dir: str, seed: int, n: int, context: int,
            model_name: str, model_json: str = "{}") -> Sample:
    from simkit.scenario import WorkloadSection, scenario_from_dict
    from simkit.sim.workload import generate_workload

    # (with the scenario's own model: its lengths' what-if warnings name the right context)
    wl: WorkloadSection = scenario_from_dict({"model": json.loads(model_json),
                                              "workload": json.loads(workload_json)},
                                             base_dir=base_dir).workload
    w = generate_workload(wl, n_requests=n, seed=seed, context=context,
                          model_name=model_name, base_dir=base_dir)
    return Sample(w.prompt_tokens, w.output_tokens)


def per_token_compute_s(sm) -> float:
    """Marginal seconds of one more token in a large compute-bound step: the weight matmuls
    at the best GEMM rate plus the all-reduce traffic it adds (the cost layer's
    `marginal_token_s`; per-sequence and per-step fixed costs are not a token's)."""
    return float(sm.marginal_token_s())


def shortest_step_s(sm) -> float:
    """No iteration is shorter than one token's step (a decode of one at context 1)."""
    return min(float(sm.decode_time_s(1, 1)), float(sm.prefill_time_s(1)))


def _decode_read_s(sm, contexts: np.ndarray) -> np.ndarray:
    """Each context's own share of a decode step: its cache read (a batch-of-one step at
    that context minus the same step at context 1), evaluated on a grid and interpolated
    linearly below each point (the read grows with the context, so the grid value at or
    below it is a floor)."""
    c = np.asarray(contexts, dtype=np.int64)
    grid = np.unique(np.concatenate(([1], np.geomspace(1, max(2, c.max()), 48).astype(
        np.int64), [c.max()])))
    base = float(sm.decode_time_s(1, 1))
    vals = np.array([float(sm.decode_time_s(int(g), 1)) - base for g in grid])
    idx = np.searchsorted(grid, c, side="right") - 1
    return np.maximum(vals[np.maximum(idx, 0)], 0.0)


def rate_bound_per_s(s, sm, sample: Sample, capacity_bytes: float) -> float:
    """Upper bound on one planning unit's sustainable request rate (a replica; a group of
    prefill and decode replicas when disaggregated; see the module docstring)."""
    pools = pool_models(s, sm)
    if len(pools) == 1:
        return _rate_bound(s, sm, sample, capacity_bytes, prompts=True, answers=True)
    (_, sm_p, n_p), (_, sm_d, n_d) = pools
    cap_d = _memory(s, sm_d)[0]
    return min(n_p * _rate_bound(s, sm_p, sample, 0.0, prompts=True, answers=False),
               n_d * _rate_bound(s, sm_d, sample, cap_d, prompts=False, answers=True))


def _rate_bound(s, sm, sample: Sample, capacity_bytes: float, *, prompts: bool,
                answers: bool) -> float:
    p = sample.prompt_tokens.astype(np.float64)
    o = sample.output_tokens.astype(np.float64)
    dec = np.maximum(o - 1.0, 0.0) if answers else np.zeros_like(o)
    per_step = _tokens_per_step_max(s) if answers else 1
    batch = max(1, int(s.serving.max_batch))
    # every step pays its fixed costs and, per sequence in it, the engine's per-sequence
    # cost: a request's answer is dec / per_step sequence-steps (its prompt at least one),
    # in at least dec / (batch x per_step) steps; multi-step rounds pay the per-sequence
    # cost once a round (`serving.scheduler_steps`), and their later steps are that much
    # shorter than any single step
    step_s, seq_s = sm.fixed_costs_s() if hasattr(sm, "fixed_costs_s") else (0.0, 0.0)
    rounds = int(getattr(s.serving, "scheduler_steps", 1))
    t_min = shortest_step_s(sm) - (seq_s if rounds > 1 else 0.0)
    steps = float(dec.mean()) / (batch * per_step)
    seq_steps = float(dec.mean()) / (per_step * rounds) + (1.0 if prompts else 0.0)
    matmuls = max(steps * t_min,
                  float(((p if prompts else 0.0) + dec).mean()) * per_token_compute_s(sm)
                  + seq_steps * seq_s + steps * step_s)
    demand = matmuls + (float(np.mean(dec * _decode_read_s(sm, p + 1))) / per_step
                        if answers else 0.0)
    bounds = [1.0 / demand] if demand > 0 else []
    if answers:
        held = float(np.mean(_memory(s, sm)[1](p + 1) * dec)) / per_step
        if held > 0 and capacity_bytes > 0:
            bounds.append(capacity_bytes / (held * t_min))
    return min(bounds) if bounds else math.inf


def _tokens_per_step_max(s) -> int:
    sp = getattr(s.serving, "speculative", None)
    return 1 if sp is None else int(sp.tokens) + 1


def _draft(s, sm):
    """The speculative draft's step model on `sm`'s GPUs (None without speculation)."""
    sp = getattr(s.serving, "speculative", None)
    if sp is None:
        return None
    from simkit.costs.compiled import step_model_for

    return step_model_for(s, draft=sp.draft, name=sm.hardware.name, gpus_per_replica=sm.gpus)


def _memory(s, sm):
    """(KV capacity bytes of one replica, context -> bytes a request holds there): the
    draft's weights and cache share the memory when the scenario speculates."""
    cap = float(sm.kv_capacity_for(s.serving))
    d = _draft(s, sm)
    if d is None:
        return cap, lambda t: np.asarray(sm.kv_bytes(t), dtype=np.float64)
    return cap - float(d.weight_bytes), lambda t: np.asarray(
        sm.kv_bytes(t), dtype=np.float64) + np.asarray(d.kv_bytes(t), dtype=np.float64)


def pool_models(s, sm_or_error) -> list[tuple[str, object, int]]:
    """(pool, its step model or the SimkitError building it raised, replicas per unit):
    one entry colocated, prefill then decode when disaggregated."""
    d = getattr(s.serving, "disaggregation", None)
    if d is None:
        return [("replicas", sm_or_error, 1)]
    from simkit.costs.compiled import step_model_for

    out = []
    for name in ("prefill", "decode"):
        try:
            m = step_model_for(s, name=getattr(d, f"{name}_hardware"),
                               gpus_per_replica=getattr(d, f"{name}_gpus_per_replica"))
        except SimkitError as e:
            m = e
        out.append((name, m, int(getattr(d, f"{name}_replicas"))))
    return out


def finite_run_margin(s, rate_per_s: float, requests: int) -> float:
    """How far above its sustainable rate a run of `requests` arrivals at `rate_per_s` may
    still meet the SLOs (see the module docstring); inf without a TTFT or e2e target."""
    slo = s.slo.targets()
    waits = [slo[k] for k in ("ttft_s", "e2e_s") if k in slo]
    if not waits or not rate_per_s > 0 or requests < 2:
        return math.inf
    span_s = requests / rate_per_s
    return 1.0 + 2.0 * min(waits) / span_s


def replicas_lower_bound(s, target_qps: float, rate_bound: float, requests: int) -> int:
    """Fewest replicas the bound allows at `target_qps` for a run of `requests`."""
    if not rate_bound > 0:
        return 1 << 30
    margin = finite_run_margin(s, target_qps, requests)
    if math.isinf(rate_bound) or math.isinf(margin):
        return 1
    return max(1, math.ceil(target_qps / (margin * rate_bound) - 1e-9))


#: per (step model, sample): the latency floors and cache reads, which do not depend on the
#: serving settings a search varies (the objects are kept so their ids stay theirs)
_FLOORS: dict[tuple[int, int], tuple] = {}


def _floors(sm, sample: Sample) -> tuple[np.ndarray, np.ndarray]:
    """(TTFT floor per request, TPOT floor per multi-token request)."""
    key = (id(sm), id(sample))
    hit = _FLOORS.get(key)
    if hit is not None and hit[0] is sm and hit[1] is sample:
        return hit[2], hit[3]
    p = sample.prompt_tokens
    ttft = _expand(p, np.array([float(sm.prefill_time_s(int(x))) for x in np.unique(p)]))
    pm = p[sample.output_tokens > 1]
    tpot = _expand(pm, np.array([float(sm.decode_time_s(int(x) + 1, 1))
                                 for x in np.unique(pm)])) if pm.size else np.zeros(0)
    if len(_FLOORS) > 256:
        _FLOORS.clear()
    _FLOORS[key] = (sm, sample, ttft, tpot)
    return ttft, tpot


def feasibility(s, sm_or_error, sample: Sample | None) -> tuple[str | None, float]:
    """(None or the reason nothing can be served, KV capacity bytes of one (decode)
    replica).

    `sm_or_error`: the step model, or the `SimkitError` building it raised. Disaggregated,
    each pool is checked on its own GPUs: the prefill pool holds the prompts and sets the
    TTFT floor, the decode pool holds whole requests and sets the TPOT floor."""
    cfg = s.model_config()
    pools = pool_models(s, sm_or_error)
    caps = {}
    for pool, sm, _ in pools:
        where = "" if pool == "replicas" else f" ({pool} pool)"
        tp = int(sm.gpus) if not isinstance(sm, SimkitError) else int(
            getattr(getattr(s.serving, "disaggregation", None), f"{pool}_gpus_per_replica",
                    None) or s.hardware.gpus_per_replica)
        if cfg.n_heads and cfg.n_heads % tp:
            return (f"tensor parallelism {tp} does not divide {cfg.name}'s {cfg.n_heads} "
                    f"query heads{where}"), 0.0
        if isinstance(sm, SimkitError):
            return "; ".join(sm.messages) + where, 0.0
        try:
            cap, held = _memory(s, sm)
        except SimkitError as e:
            msg = "; ".join(e.messages)
            return ("weights do not fit: " + msg.split(": ", 1)[-1] if "does not fit" in msg
                    else msg) + where, 0.0
        if cap <= 0:
            return f"weights do not fit: the draft's weights leave no KV memory{where}", 0.0
        caps[pool] = (cap, held)
    sm_first, sm = pools[0][1], pools[-1][1]
    cap, held = caps[pools[-1][0]]
    try:  # the rest of what a simulation checks before it starts (an eviction budget
        # within its sinks, no room for one KV block): the same rules, from the same place
        from simkit.sim.setup import prepare

        prepare(s, sm if len(pools) == 1 else None)
    except SimkitError as e:
        return "; ".join(e.messages), cap
    if sample is None:
        return None, cap
    longest = sample.prompt_tokens + sample.output_tokens - 1
    for pool, _, _ in pools:
        c, h = caps[pool]
        need = sample.prompt_tokens if pool == "prefill" else longest
        too_big = h(need.astype(np.float64)) > c
        if too_big.mean() > MAX_UNSERVABLE_FRACTION:
            where = "" if pool == "replicas" else f" of the {pool} pool"
            return (f"{too_big.mean():.0%} of requests need more KV memory than one replica"
                    f"{where} holds ({c / 2**30:.3g} GiB after the weights)"), cap
    slo = s.slo.targets()
    ttft = _floors(sm_first, sample)[0]
    tpot = _floors(sm, sample)[1]
    d = _draft(s, sm)
    if d is not None and tpot.size:  # at most k + 1 tokens per iteration of one
        k = int(s.serving.speculative.tokens)
        pm = sample.prompt_tokens[sample.output_tokens > 1]
        it = np.array([float(sm.verify_time_s([x], [k + 1])) + sum(
            float(d.inner_step_time_s([x + 1 + j])) for j in range(k)) for x in np.unique(pm)])
        tpot = _expand(pm, it) / (k + 1)
    multi_step = int(getattr(s.serving, "scheduler_steps", 1)) > 1 \
        and hasattr(sm, "fixed_costs_s")
    if multi_step:  # a multi-step round's later steps skip the per-sequence cost (a floor)
        tpot = tpot - sm.fixed_costs_s()[1]
    if "ttft_s" in slo and ttft.size:
        q = float(np.percentile(ttft, 99))
        if q > slo["ttft_s"]:
            return (f"SLOs cannot be met at any load: p99 TTFT is at least {q:.3g} s (each "
                    f"prefill alone) > slo.ttft_p99_s = {slo['ttft_s']:g} s"), cap
    if "tpot_s" in slo and tpot.size:
        q = float(np.percentile(tpot, 99))
        if q > slo["tpot_s"]:
            what = ("a decode step of one" + (" in a multi-step round" if multi_step else "")
                    if d is None else "an iteration of one over k + 1 tokens")
            return (f"SLOs cannot be met at any load: p99 TPOT is at least {q * 1e3:.3g} ms "
                    f"({what}) > slo.tpot_p99_s = {slo['tpot_s'] * 1e3:g} ms"), cap
    return None, cap


def _expand(x: np.ndarray, per_unique: np.ndarray) -> np.ndarray:
    """Values of a function given on `np.unique(x)`, mapped back onto `x`."""
    return per_unique[np.searchsorted(np.unique(x), x)]
