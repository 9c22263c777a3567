"""Output analysis: percentile intervals that cover, warnings on thin tails, steady-state
rates without the warm-up and the drain."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simkit.scenario import scenario_from_dict
from simkit.sim import simulate
from simkit.sim import stats


def test_requests_for_a_p99_with_ten_tail_requests_after_the_warm_up():
    # 10 requests beyond a p99 need 1,000 counted; 10% warm-up: ceil(1000 / 0.9) = 1,112
    assert stats.requests_for_tail(0.99) == 1112
    assert stats.warmup_count(1112) == 112 and 1112 - 112 == 1000


def _coverage(draw, truth, reps=200, q=0.99):
    hit = 0
    for r in range(reps):
        ci = stats.quantile_ci(draw(np.random.default_rng(r)), q)
        hit += ci["ci_low"] <= truth <= ci["ci_high"]
    return hit / reps


def test_sectioning_interval_covers_the_true_p99_of_independent_draws():
    # exponential, mean 1: p99 = ln(100)
    cov = _coverage(lambda g: g.exponential(1.0, 2000), math.log(100))
    assert 0.88 <= cov <= 0.995, cov


def test_sectioning_interval_covers_under_autocorrelation():
    """Queued requests' latencies are correlated; contiguous sections keep coverage where an
    i.i.d. order-statistic interval would not. AR(1), phi = 0.9, normal noise: stationary
    sd 1 / sqrt(1 - phi^2), p99 = 2.3263 sd."""
    phi, m = 0.9, 5000

    def ar1(g):
        e = g.standard_normal(m + 200)
        x = np.empty_like(e)
        x[0] = e[0] / math.sqrt(1 - phi * phi)
        for i in range(1, len(e)):
            x[i] = phi * x[i - 1] + e[i]
        return x[200:]

    truth = 2.326348 / math.sqrt(1 - phi * phi)
    assert _coverage(ar1, truth, reps=150) >= 0.85


def test_no_interval_below_two_sections_and_the_tail_warning():
    assert stats.quantile_ci(np.arange(150.0))["ci_low"] is None
    assert stats.quantile_ci(np.arange(200.0))["ci_low"] is not None
    w = stats.tail_warning(36)
    assert w.startswith("p99 latencies rest on 0.36 request(s)") and "1,112" in w
    assert stats.tail_warning(1000) is None


def scen(**over):
    d = {"seed": 2, "model": {"name": "llama-3-8b"},
         "workload": {"requests": 1112, "arrival": {"process": "fixed", "rate": 4.0},
                      "prompt_tokens": {"dist": "fixed", "value": 500},
                      "output_tokens": {"dist": "fixed", "value": 100}}}
    d.update(over)
    return scenario_from_dict(d)


def test_a_p99_from_40_requests_carries_a_warning():
    assert simulate(scen(), requests=40).summary["warnings"]
    assert not simulate(scen()).summary["warnings"]


def test_steady_state_throughput_leaves_out_warm_up_and_drain():
    """4 req/s, 100 output tokens each, far below capacity: the load is 400 tokens/s. The
    whole-run figure divides by the drain after the last arrival too, so it is lower."""
    m = simulate(scen()).summary
    st = m["steady_state"]
    assert st["warmup_requests"] == 112
    assert st["throughput_tokens_per_s"] == pytest.approx(400, rel=0.01)
    assert st["prompt_throughput_tokens_per_s"] == pytest.approx(2000, rel=0.01)
    assert st["served_fraction"] == pytest.approx(1.0, abs=0.01)
    assert m["throughput_tokens_per_s"] < 0.999 * st["throughput_tokens_per_s"]
    # the window is [first counted arrival, last arrival]: arrivals every 0.25 s
    assert st["window_s"] == pytest.approx([112 * 0.25, 1111 * 0.25])
    # p99 intervals bracket their estimates
    for k in ("ttft_s", "tpot_s", "e2e_s"):
        assert st[k]["ci_low"] <= st[k]["p99"] <= st[k]["ci_high"]
