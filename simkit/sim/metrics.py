"""Run metrics: latency distributions, throughput, goodput, KV memory use, a time series.

Latencies: TTFT = first_token_s - arrival_s; TPOT = (finish_s - first_token_s)
/ (output_tokens - 1), undefined (left out) for single-token outputs; e2e = finish_s -
arrival_s; queue wait = start_s (first scheduled) - arrival_s. Distributions are over
completed requests, summarised as mean, p50, p90, p99 (numpy's linear-interpolation
percentiles); an empty distribution is None in every field (null in JSON).

Goodput counts completed requests that met *every* SLO the scenario sets, per simulated
second (DistServe's definition, Zhong et al. 2024, arXiv:2401.09670, applied per request).

KV useful fraction = (integral over time of bytes of token states held) / (integral of bytes
reserved), summed over replicas: under paging the loss is the partly filled last block;
under contiguous reservation it is everything reserved beyond a request's current length.

The whole-run figures above include the warm-up (empty replicas) and the drain after the
last arrival. `steady_state` leaves both out (see `simkit.sim.stats`): p99 latencies with
95% confidence intervals over the requests after the warm-up, and throughputs over the
window from the first counted arrival to the last arrival. `warnings` flags a p99 that rests
on too few requests.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from simkit.sim import stats
from simkit.sim.request import COMPLETED, REJECTED, RequestTable

#: points in the sampled time series handed to reports
TIMESERIES_POINTS = 500


def dist_stats(x: np.ndarray) -> dict[str, float | None]:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return {"mean": None, "p50": None, "p90": None, "p99": None}
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return {"mean": float(x.mean()), "p50": float(p50), "p90": float(p90), "p99": float(p99)}


def latencies(tab: RequestTable) -> dict[str, np.ndarray]:
    """Per-request latency arrays over completed requests (TPOT: outputs > 1 token)."""
    done = tab.status == COMPLETED
    arr = tab.arrival_s[done]
    first = tab.first_token_s[done]
    fin = tab.finish_s[done]
    out = tab.output_tokens[done]
    multi = out > 1
    return {
        "ttft_s": first - arr,
        "tpot_s": (fin[multi] - first[multi]) / (out[multi] - 1),
        "e2e_s": fin - arr,
        "queue_wait_s": tab.start_s[done] - arr,
    }


def slo_mask(tab: RequestTable, targets: dict[str, float]) -> np.ndarray:
    """Completed requests that met every SLO (a single-token output has no TPOT to miss)."""
    ok = tab.status == COMPLETED
    if not targets:
        return ok
    ttft = tab.first_token_s - tab.arrival_s
    e2e = tab.finish_s - tab.arrival_s
    with np.errstate(invalid="ignore", divide="ignore"):
        tpot = np.where(tab.output_tokens > 1, (tab.finish_s - tab.first_token_s)
                        / np.maximum(tab.output_tokens - 1, 1), 0.0)
    if "ttft_s" in targets:
        ok &= ttft <= targets["ttft_s"]
    if "tpot_s" in targets:
        ok &= tpot <= targets["tpot_s"]
    if "e2e_s" in targets:
        ok &= e2e <= targets["e2e_s"]
    return ok


def summarise(tab: RequestTable, replicas, *, simulated_s: float, capacity_bytes: float,
              slo_targets: dict[str, float], iteration_logs: list[dict[str, np.ndarray]],
              extra: dict[str, Any]) -> dict[str, Any]:
    n = tab.n
    completed = int(np.count_nonzero(tab.status == COMPLETED))
    rejected = int(np.count_nonzero(tab.status == REJECTED))
    lat = latencies(tab)
    done = tab.status == COMPLETED
    out_tokens = int(tab.output_tokens[done].sum())
    in_tokens = int(tab.prompt_tokens[done].sum())
    span = simulated_s if simulated_s > 0 else float("nan")
    recomputed = int(sum(r.recomputed_tokens for r in replicas))
    # (a running sequence's count lives in its replica: the table has it as of its last
    # preemption, a completed request's is its whole answer)
    processed = int(tab.prefill_tokens.sum()) + int(
        np.where(done, tab.output_tokens, tab.generated).sum())
    good = slo_mask(tab, slo_targets)
    n_good = int(np.count_nonzero(good))
    peaks = [float(log["reserved"].max()) if len(log["reserved"]) else 0.0
             for log in iteration_logs]
    reserved_int = time_integral(iteration_logs, "reserved")
    useful_int = time_integral(iteration_logs, "useful")
    busy_s = time_integral(iteration_logs, None)
    batch_int = time_integral(iteration_logs, "batch")
    batch_max = max((int(log["batch"].max()) for log in iteration_logs if len(log["batch"])),
                    default=0)

    def rate(x: float) -> float | None:
        return None if not simulated_s > 0 else x / span

    s: dict[str, Any] = {
        "requests_arrived": n,
        "requests_completed": completed,
        "requests_rejected": rejected,
        "requests_in_flight": n - completed - rejected,
        "simulated_seconds": float(simulated_s),
        "throughput_tokens_per_s": rate(out_tokens),
        "prompt_throughput_tokens_per_s": rate(in_tokens),
        "throughput_requests_per_s": rate(completed),
        "ttft_s": dist_stats(lat["ttft_s"]),
        "tpot_s": dist_stats(lat["tpot_s"]),
        "e2e_s": dist_stats(lat["e2e_s"]),
        "queue_wait_s": dist_stats(lat["queue_wait_s"]),
        "goodput_requests_per_s": rate(n_good),
        "slo": dict(slo_targets),
        "slo_attainment": (n_good / n) if n else None,
        "kv_peak_bytes": max(peaks, default=0.0),
        "kv_capacity_bytes": float(capacity_bytes),
        "kv_useful_fraction": (useful_int / reserved_int) if reserved_int > 0 else None,
        "preemptions": int(sum(r.preemptions for r in replicas)),
        # vLLM's "recompute tax" (vllm-project/vllm#54644): tokens prefilled again after a
        # preemption, over every token processed (prompt tokens prefilled, recomputation
        # included, and output tokens generated)
        "recomputed_tokens": recomputed,
        "recompute_fraction": (recomputed / processed) if processed else None,
        # sequences per iteration, time-weighted over busy time, and the largest batch
        "batch_size_mean": (batch_int / busy_s) if busy_s > 0 else None,
        "batch_size_max": batch_max,
        "busy_fraction": (busy_s / (simulated_s * len(replicas))) if simulated_s > 0 else None,
        "swap_bytes": float(sum(r.swap_bytes_total for r in replicas)),
        "iterations": int(sum(r.iterations for r in replicas)),
        "replicas": len(replicas),
        "per_replica_completed": [int(r.completed) for r in replicas],
        "per_replica_kv_peak_bytes": peaks,
    }
    s["steady_state"] = steady_state(tab, iteration_logs)
    s["warnings"] = [w for w in (stats.tail_warning(s["steady_state"]["requests"]),) if w]
    s.update(extra)
    return s


def time_integral(iteration_logs: list[dict[str, np.ndarray]], column: str | None) -> float:
    """Sum over every replica's iterations of column x duration (of the durations alone
    with None), by numpy's pairwise summation over the logs joined in replica order: the
    same bits whatever computes them. A BLAS dot product does not promise that: OpenBLAS
    splits long vectors across its threads, so a run with one BLAS thread (a dask worker
    sets OMP/OPENBLAS_NUM_THREADS=1) and one with several differed in the last digit of
    `batch_size_mean` once a run had more than ~10,000 iterations. Elementwise products
    and `np.add.reduce` run on one thread, in one order."""
    if not iteration_logs:
        return 0.0
    dt = np.concatenate([np.asarray(log["dt"], dtype=np.float64) for log in iteration_logs])
    if column is not None:
        dt = dt * np.concatenate([np.asarray(log[column], dtype=np.float64)
                                  for log in iteration_logs])
    return float(np.add.reduce(dt))


def steady_state(tab: RequestTable, iteration_logs: list[dict[str, np.ndarray]]
                 ) -> dict[str, Any]:
    """Warm-up and drain left out: p99 latencies with 95% intervals over the requests after
    the warm-up (arrival order), throughputs over [first counted arrival, last arrival].
    Output tokens count when the iteration that emits them ends; prompt tokens when their
    request's first token appears (its prompt is processed by then)."""
    n = tab.n
    w = stats.warmup_count(n)
    counted = np.zeros(n, dtype=bool)
    counted[w:] = True
    done = (tab.status == COMPLETED) & counted
    arr, first, fin = tab.arrival_s[done], tab.first_token_s[done], tab.finish_s[done]
    out = tab.output_tokens[done]
    multi = out > 1
    lat = {"ttft_s": first - arr, "tpot_s": (fin[multi] - first[multi]) / (out[multi] - 1),
           "e2e_s": fin - arr}
    start = float(tab.arrival_s[w]) if w < n else float("nan")
    end = float(tab.arrival_s[-1]) if n else float("nan")
    ends = [log["t"] + log["dt"] for log in iteration_logs]
    toks = [log["tokens"] for log in iteration_logs]
    out_rate = stats.window_rate(np.concatenate(ends) if ends else np.zeros(0),
                                 np.concatenate(toks) if toks else np.zeros(0), start, end)
    ok = tab.status == COMPLETED
    prompt_rate = stats.window_rate(tab.first_token_s[ok], tab.prompt_tokens[ok], start, end)
    req_rate = stats.window_rate(tab.finish_s[ok], None, start, end)
    arrived = n - w - 1  # arrivals in (start, end]
    return {
        "warmup_requests": w,
        "requests": int(np.count_nonzero(done)),
        "window_s": [start, end] if end > start else None,
        "throughput_tokens_per_s": out_rate,
        "prompt_throughput_tokens_per_s": prompt_rate,
        "throughput_requests_per_s": req_rate,
        # completions / arrivals over the window: well below 1, the replicas fall behind
        "served_fraction": (req_rate * (end - start) / arrived
                            if req_rate is not None and arrived > 0 else None),
        **{k: _nonnegative(stats.quantile_ci(v, 0.99)) for k, v in lat.items()},
    }


def _nonnegative(ci: dict[str, Any]) -> dict[str, Any]:
    """A latency's interval clipped at 0 (the t-interval is symmetric; a time is not)."""
    if ci.get("ci_low") is not None and ci["ci_low"] < 0:
        ci["ci_low"] = 0.0
    return ci


def timeseries(iteration_logs: list[dict[str, np.ndarray]], queue_times_s: np.ndarray,
               queue_deltas: np.ndarray, end_s: float,
               points: int = TIMESERIES_POINTS) -> dict[str, np.ndarray]:
    """State sampled on an even grid over [0, end_s]: queue length (all replicas), sequences
    in the running iteration, KV reserved and useful bytes (summed over replicas), and output
    tokens per second (tokens finished in each grid interval / its width)."""
    end_s = float(end_s) if end_s > 0 else 1.0
    grid = np.linspace(0.0, end_s, points)
    # queue: step function of cumulative deltas; changes at the same instant all apply
    order = np.argsort(queue_times_s, kind="stable")
    qt = queue_times_s[order]
    qc = np.cumsum(queue_deltas[order])
    pos = np.searchsorted(qt, grid, side="right") - 1
    queue = np.where(pos >= 0, qc[np.maximum(pos, 0)], 0) if len(qc) else np.zeros(points)
    batch = np.zeros(points)
    kv_used = np.zeros(points)
    kv_useful = np.zeros(points)
    tokens_cum = np.zeros(points)
    for log in iteration_logs:
        t0, dt = log["t"], log["dt"]
        if not len(t0):
            continue
        i = np.searchsorted(t0, grid, side="right") - 1
        ic = np.maximum(i, 0)
        inside = (i >= 0) & (grid < t0[ic] + dt[ic])
        batch += np.where(inside, log["batch"][ic], 0)
        kv_used += np.where(inside, log["reserved"][ic], 0.0)
        kv_useful += np.where(inside, log["useful"][ic], 0.0)
        # tokens are produced at each iteration's end
        ends = t0 + dt
        cum = np.cumsum(log["tokens"])
        j = np.searchsorted(ends, grid, side="right") - 1
        tokens_cum += np.where(j >= 0, cum[np.maximum(j, 0)], 0)
    width = grid[1] - grid[0] if points > 1 else end_s
    tps = np.concatenate(([0.0], np.diff(tokens_cum) / width))
    return {"time_s": grid, "queue_len": queue.astype(np.int64), "batch_size": batch,
            "kv_used_bytes": kv_used, "kv_useful_bytes": kv_useful,
            "tokens_per_s": tps}
