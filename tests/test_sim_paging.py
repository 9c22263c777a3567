"""Paged KV blocks hold more requests than contiguous reservation on long-tailed lengths.

vLLM (Kwon et al. 2023, arXiv:2309.06180, Sec. 2.3 / Fig. 2) measured that only 20.4%-38.2%
of KV memory holds token states under reservation-based allocation (Orca-style), and under
4% is wasted with paging (Sec. 6). Here the real OPT-13B / A100-40GB cost model serves the
same long-tailed stream with both managers.
"""

from __future__ import annotations

import pytest

from simkit.sim import simulate

scenario = pytest.importorskip("simkit.scenario")


def _run(kind: str):
    d = {"model": {"name": "opt-13b"}, "hardware": {"name": "a100-40gb"},
         "workload": {"requests": 400, "arrival": {"process": "poisson", "rate": 50.0},
                      "prompt_tokens": {"dist": "lognormal", "median": 200, "sigma": 1.0,
                                        "max": 1024},
                      "output_tokens": {"dist": "lognormal", "median": 100, "sigma": 1.0,
                                        "max": 1024}},
         "serving": {"kv_memory": kind, "max_batch": 256}}
    return simulate(scenario.scenario_from_dict(d)).summary


def test_paged_holds_more_requests_and_wastes_little():
    paged, contiguous = _run("paged"), _run("contiguous")
    for s in (paged, contiguous):
        assert s["requests_completed"] == 400
        assert s["kv_peak_bytes"] <= s["kv_capacity_bytes"]
    # more sequences per iteration, and more tokens per second, with paging
    assert paged["batch_size_mean"] > 2 * contiguous["batch_size_mean"]
    assert paged["batch_size_max"] > contiguous["batch_size_max"]
    assert paged["throughput_tokens_per_s"] > contiguous["throughput_tokens_per_s"]
    # vLLM: under 4% waste with paging (only the last block is partly empty)
    assert paged["kv_useful_fraction"] > 0.96
    # reservation to OPT-13B's 2048-token context: most of it is empty; vLLM's measured
    # range for reservation-based systems is 20.4%-38.2% useful
    assert contiguous["kv_useful_fraction"] < 0.4
