"""Prefix-cache figures of a run: hit rate, prefill tokens and FLOPs, a hit-rate series.

Read from the request table and the replicas after the run (`simkit.sim.simulator`); the
cache itself is `simkit.sim.prefix`.
"""

from __future__ import annotations

import numpy as np

from simkit.sim.request import COMPLETED

def summary(table, replicas, enabled: bool, step_model) -> dict:
    """Prefix-cache figures of a run: hit rate (prompt tokens served from the cache at each
    request's first admission / prompt tokens, completed requests), prompt tokens prefilled
    (every admission, recomputation after preemption included) and their FLOPs, with what
    the same admissions would have computed without the cache."""
    done = table.status == COMPLETED
    prompt = int(table.prompt_tokens[done].sum())
    cached = int(np.maximum(table.cached_tokens[done], 0).sum())
    out = {
        "prefix_caching": bool(enabled),
        "prefix_hit_rate": (cached / prompt) if prompt else None,
        "prefix_cached_tokens": cached,
        "prefill_tokens_computed": int(table.prefill_tokens.sum()),
        "prefix_evicted_bytes": float(sum(
            r.cache.evicted_units for r in replicas if r.cache is not None)
            * replicas[0].policy.unit_bytes) if replicas else 0.0,
    }
    out.update(prefill_flops(replicas, step_model))
    return out


def prefill_flops(replicas, step_model) -> dict:
    """FLOPs of every prefill the replicas ran (linear layers + attention over the cached
    prefix; the LM head once per admission), and of the same prompts prefilled from token 0
    (no cache). Empty when the step model is not the cost layer's."""
    if not hasattr(step_model, "roof"):
        return {}
    from simkit.costs.compiled import step_breakdown

    start = np.concatenate([np.frombuffer(r.adm_start, dtype=np.int64) for r in replicas]
                           ) if replicas else np.zeros(0, dtype=np.int64)
    length = np.concatenate([np.frombuffer(r.adm_len, dtype=np.int64) for r in replicas]
                            ) if replicas else np.zeros(0, dtype=np.int64)
    if not len(start):
        return {"prefill_flops": 0.0, "prefill_flops_without_cache": 0.0}

    def flops(ps: np.ndarray, pl: np.ndarray) -> float:
        keep = pl > 0
        b = step_breakdown(step_model, (), ps[keep], pl[keep])
        return float(b["linear_flops"] + b["attention_flops"])

    return {"prefill_flops": flops(start, length),
            "prefill_flops_without_cache": flops(np.zeros_like(start), start + length)}


def hit_timeseries(table, grid_s: np.ndarray) -> dict:
    """Prefix hit rate of the requests first scheduled in each interval of the time grid
    (NaN where none started)."""
    started = table.cached_tokens >= 0
    t = table.start_s[started]
    if not len(grid_s) or not len(t):
        return {"prefix_hit_rate": np.full(len(grid_s), np.nan)}
    edges = np.append(grid_s, np.inf)
    b = np.clip(np.searchsorted(edges, t, side="right") - 1, 0, len(grid_s) - 1)
    hit = np.bincount(b, weights=table.cached_tokens[started], minlength=len(grid_s))
    tot = np.bincount(b, weights=table.prompt_tokens[started], minlength=len(grid_s))
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"prefix_hit_rate": np.where(tot > 0, hit / tot, np.nan)}
