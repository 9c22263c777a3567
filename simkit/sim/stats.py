"""Output analysis of one run: the steady-state window, percentile confidence intervals, and a
warning where a percentile rests on too few requests.

- **Warm-up and drain.** A run starts with empty replicas: the first requests see no queue
  and a small batch, so they flatter the latencies. After the last arrival the replicas only
  drain what is left, so tokens per second over that tail measure the drain, not the load.
  The steady state is therefore taken as: requests from index ``ceil(WARMUP_FRACTION x n)``
  on (arrival order; the same requests at every point of a sweep or search, which share
  their arrivals), and for rates the window from the first such arrival to the last arrival.
  A fixed fraction (not a detected truncation point such as MSER-5) keeps the counted
  requests identical across the points being compared.
- **Confidence interval of a percentile by sectioning** (Asmussen & Glynn, "Stochastic
  Simulation: Algorithms and Analysis", 2007, section III.5a; Nakayama, "Confidence
  intervals for quantiles using sectioning", ACM TOMACS 24(4), 2014): the counted requests,
  in arrival order, are cut into k contiguous sections; the point estimate is the percentile
  of all counted requests, and the 95% interval is
  ``estimate +- t(k-1, 0.975) x sqrt(sum_j (q_j - estimate)^2 / (k - 1)) / sqrt(k)``,
  q_j the percentile within section j. Contiguous sections keep most of the correlation
  between neighbouring requests (they queue behind each other) inside a section, which an
  i.i.d. order-statistic interval would ignore. Sections hold at least `MIN_SECTION`
  requests and there are at most `MAX_SECTIONS`; with fewer than two sections there is no
  interval (None).
- **Tail support.** A p-quantile of m values rests on m (1 - p) values at or beyond it; a p99
  from 40 requests rests on 0.4 of one. Below `MIN_TAIL_SAMPLES` the run carries a warning;
  a planner probe below one such request is refused (`too_few_for_p99`).
"""

from __future__ import annotations

import math

import numpy as np

#: the first fraction of arrivals counted as warm-up (left out of steady-state figures)
WARMUP_FRACTION = 0.1
#: a percentile should rest on at least this many values at or beyond it
MIN_TAIL_SAMPLES = 10
MAX_SECTIONS = 10
MIN_SECTION = 100
#: t(df, 0.975), df = 1..9 (two-sided 95%; any statistics table, e.g. NIST/SEMATECH
#: e-Handbook of Statistical Methods, table 1.3.6.7.2)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262)


def warmup_count(n: int) -> int:
    """Requests (in arrival order) treated as warm-up."""
    return int(math.ceil(WARMUP_FRACTION * n))


def requests_for_tail(q: float = 0.99, tail: int = MIN_TAIL_SAMPLES) -> int:
    """Requests a run needs so that its steady-state q-quantile rests on `tail` values."""
    counted = math.ceil(tail / (1.0 - q) - 1e-9)
    return int(math.ceil(counted / (1.0 - WARMUP_FRACTION) - 1e-9))


def quantile_ci(x: np.ndarray, q: float = 0.99) -> dict[str, float | int | None]:
    """The q-quantile of `x` (values in arrival order) with its 95% sectioning interval:
    {"p99" (for q = 0.99; "p90" ...), "ci_low", "ci_high", "samples", "tail_samples"}."""
    x = np.asarray(x, dtype=np.float64)
    m = int(x.size)
    name = f"p{100 * q:g}"
    out: dict[str, float | int | None] = {name: None, "ci_low": None, "ci_high": None,
                                         "samples": m, "tail_samples": round(m * (1.0 - q), 9)}
    if m == 0:
        return out
    est = float(np.percentile(x, 100 * q))
    out[name] = est
    k = min(MAX_SECTIONS, m // MIN_SECTION)
    if k >= 2:
        parts = np.array_split(x, k)
        qs = np.array([np.percentile(p, 100 * q) for p in parts])
        s = math.sqrt(float(np.sum((qs - est) ** 2)) / (k - 1))
        half = _T975[k - 2] * s / math.sqrt(k)
        out["ci_low"], out["ci_high"] = est - half, est + half
    return out


def tail_warning(samples: int, q: float = 0.99, what: str = "p99 latencies") -> str | None:
    """One line when a q-quantile of `samples` values rests on fewer than MIN_TAIL_SAMPLES."""
    tail = samples * (1.0 - q)
    if tail >= MIN_TAIL_SAMPLES:
        return None
    return (f"{what} rest on {tail:.3g} request(s) at or beyond them ({samples:,} counted "
            f"after the warm-up); simulate at least {requests_for_tail(q):,} requests for "
            f"{MIN_TAIL_SAMPLES}")


def too_few_for_p99(requests: int) -> str | None:
    """Why a planner probe of `requests` cannot measure a p99, or None when it can.

    A planner decides on steady-state p99s; with fewer than 100 requests counted after the
    warm-up, not even one request lies at or beyond the "p99" -- it is the largest latency
    seen, interpolated, and a probe of a few requests (all in one batch, no queue) can pass
    at any rate or fail at every one. So a probe needs `requests_for_tail(0.99, 1)` = 112
    requests at least (the planner's default, `requests_for_tail(0.99)` = 1,112, rests it
    on 10)."""
    need = requests_for_tail(0.99, 1)
    if requests >= need:
        return None
    counted = requests - warmup_count(requests)
    return (f"{requests} requests per probe cannot measure a p99: after the warm-up (the "
            f"first {WARMUP_FRACTION:.0%}) {counted} count, and a p99 needs at least 100 (one "
            f"at or beyond it); use at least {need} ({requests_for_tail(0.99):,} rest it on "
            f"{MIN_TAIL_SAMPLES})")


def window_rate(times_s: np.ndarray, weights: np.ndarray | None, start_s: float,
                end_s: float) -> float | None:
    """Sum of `weights` (or count) of events at times in (start_s, end_s], per second."""
    if not end_s > start_s:
        return None
    t = np.asarray(times_s, dtype=np.float64)
    inside = (t > start_s) & (t <= end_s)
    total = float(np.sum(weights[inside])) if weights is not None else float(inside.sum())
    return total / (end_s - start_s)
