"""A client with a concurrency cap (`simkit.sim.concurrency`): a closed loop sends each
request when an answer frees a slot, in order, and measures from the moment it sends."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_same_run
from simkit.sim import simulate
from test_sim_toymodel import ToyStepModel, length, toy_scenario


def _closed(c: int, n: int, **over):
    return toy_scenario(**{"workload.arrival.process": "burst", "workload.max_concurrency": c,
                           "workload.requests": n,
                           "workload.prompt_tokens": length(value=100),
                           "workload.output_tokens": length(value=10), **over})


def test_equal_requests_run_in_waves_of_the_cap():
    # C identical requests sent at once finish together; their answers release the next C
    # at that instant: N = 3 C requests are three identical static batches back to back
    m = ToyStepModel(capacity_bytes=1e8)
    wave = simulate(_closed(4, 4), step_model=m, seed=0)
    t_wave = wave.summary["simulated_seconds"]
    res = simulate(_closed(4, 12), step_model=m, seed=0)
    r = res.requests
    assert res.summary["requests_completed"] == 12
    assert r["arrival_s"].tolist() == [0.0] * 4 + [t_wave] * 4 + [2 * t_wave] * 4
    assert res.summary["simulated_seconds"] == pytest.approx(3 * t_wave, rel=1e-12)
    e2e = r["finish_s"] - r["arrival_s"]
    assert np.allclose(e2e, t_wave, rtol=1e-12)
    # Little's law for a loop that always holds C requests: throughput = C / latency
    assert res.summary["throughput_requests_per_s"] == pytest.approx(4 / e2e.mean(), rel=1e-9)


def test_a_cap_that_never_binds_changes_nothing():
    m = ToyStepModel(capacity_bytes=2e6)
    open_loop = toy_scenario(**{"workload.arrival.rate": 5.0})
    capped = toy_scenario(**{"workload.arrival.rate": 5.0, "workload.max_concurrency": 10_000})
    a, b = simulate(open_loop, step_model=m, seed=4), simulate(capped, step_model=m, seed=4)
    for k in ("arrival_s", "start_s", "first_token_s", "finish_s", "status"):
        assert np.array_equal(a.requests[k], b.requests[k], equal_nan=k != "status"), k


def test_one_slot_serialises_requests():
    # a fast Poisson client behind one slot: each request is sent when the previous answer
    # arrives, so at most one is ever in the server
    sc = toy_scenario(**{"workload.arrival.rate": 100.0, "workload.max_concurrency": 1,
                         "workload.requests": 60})
    res = simulate(sc, step_model=ToyStepModel(capacity_bytes=2e6), seed=2)
    r = res.requests
    assert res.summary["requests_completed"] == 60
    assert np.all(r["arrival_s"][1:] == r["finish_s"][:-1])
    assert res.summary["batch_size_max"] == 1
    assert res.summary["queue_wait_s"]["p99"] == 0.0


@pytest.mark.parametrize("c", [1, 3, 8])
def test_the_loop_is_full_until_the_last_send(c):
    # every slot is busy from t = 0 to the last send: the requests' latencies cover at
    # least c x that span, and at most c x the whole run (integral of requests in flight)
    sc = toy_scenario(**{"workload.arrival.process": "burst", "workload.max_concurrency": c,
                         "workload.requests": 80})
    res = simulate(sc, step_model=ToyStepModel(capacity_bytes=2e6), seed=7)
    r = res.requests
    busy_s = float(np.sum(r["finish_s"] - r["arrival_s"]))
    assert busy_s >= c * float(r["arrival_s"].max()) * (1 - 1e-12)
    assert busy_s <= c * res.summary["simulated_seconds"] * (1 + 1e-12)


def test_rejected_requests_free_their_slot():
    # prompts of 10-300 tokens on a replica that holds 150 positions: the long ones are
    # rejected at once and the loop moves on; every request is accounted for
    sc = toy_scenario(**{"workload.arrival.process": "burst", "workload.max_concurrency": 2,
                         "workload.requests": 50, "workload.output_tokens.high": 20})
    res = simulate(sc, step_model=ToyStepModel(capacity_bytes=1.5e5), seed=1)
    s = res.summary
    assert s["requests_rejected"] > 0 and s["requests_completed"] > 0
    assert s["requests_completed"] + s["requests_rejected"] == 50


def test_closed_loop_fast_path_on_the_real_cost_model():
    scenario = pytest.importorskip("simkit.scenario")
    d = {"model": {"name": "llama-3.1-8b"}, "hardware": {"name": "h100-sxm"},
         "workload": {"requests": 120, "max_concurrency": 16, "arrival": {"process": "burst"},
                      "prompt_tokens": {"dist": "lognormal", "median": 500, "sigma": 0.8,
                                        "max": 4000},
                      "output_tokens": {"dist": "lognormal", "median": 150, "sigma": 0.8,
                                        "max": 1000}},
         "serving": {"replicas": 2}}
    sc = scenario.scenario_from_dict(d)
    fast = simulate(sc, seed=3)
    assert_same_run(fast, simulate(sc, seed=3, fast=False))
    assert fast.summary["batch_size_max"] <= 16
