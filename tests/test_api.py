"""The scripting API: load, change with with_, run costs / simulate / plan / sweep."""

from __future__ import annotations

import json

import pytest

from simkit import api
from simkit.errors import SimkitError


@pytest.fixture
def chatbot(repo_root):
    return api.load(repo_root / "scenarios" / "chatbot-llama3-8b-h100.toml")


def test_load_change_and_cost(chatbot):
    longer = chatbot.with_(**{"workload.prompt_tokens.median": 2000.0})
    assert longer.workload.prompt_tokens.median == 2000.0
    assert chatbot.workload.prompt_tokens.median == 1000.0
    c8 = api.costs(chatbot, seq=8192)
    c2 = api.costs(chatbot, seq=2048)
    # full attention: the cache per sequence is linear in the context
    assert c8["kv_cache_bytes_per_sequence"] == pytest.approx(4 * c2["kv_cache_bytes_per_sequence"])
    assert api.applied_model(chatbot)["attention"] == "full"
    w = api.applied_model(chatbot.with_(**{"model.attention": "window", "model.window": 128}))
    assert w["window"] == 128 and w["global_tokens"] is None


def test_simulate_is_deterministic_and_plain(chatbot):
    a = api.simulate(chatbot, requests=40)
    b = api.simulate(chatbot, requests=40)
    assert json.dumps(a.summary, sort_keys=True) == json.dumps(b.summary, sort_keys=True)
    assert a.summary["requests_completed"] == 40
    busier = api.simulate(chatbot.with_(**{"workload.arrival.rate": 40.0}), requests=40)
    assert busier.summary["ttft_s"]["p99"] > a.summary["ttft_s"]["p99"]


def test_plan_and_sweep_through_the_api(chatbot, tmp_path):
    p = api.plan(chatbot.with_(**{"plan.target_qps": 20.0}), requests=150)
    assert p.max_qps > 0 and p.slo["met"]
    # the fewest replicas found by simulation: at least the cost model's bound, and a pool
    # of replicas absorbs bursts one replica cannot, so it may be fewer than 20 / max_qps
    assert p.replicas >= p.replicas_lower_bound
    assert p.replica_probes and any(q.replicas == p.replicas - 1 and not q.met
                                    for q in p.replica_probes) or p.replicas == 1
    assert p.to_dict()["replicas"] == p.replicas
    s = chatbot.with_(sweep={"workload.arrival.rate": [1.0, 2.0]})
    res = api.sweep(s, out_dir=tmp_path / "sw", requests=20, max_workers=1)
    assert [r["params"]["workload.arrival.rate"] for r in res.records] == [1.0, 2.0]
    assert (tmp_path / "sw" / "results.jsonl").exists()
    rows = res.rows()
    assert rows[0]["ttft_s.p99"] == res.records[0]["metrics"]["ttft_s"]["p99"]
    with pytest.raises(SimkitError, match="not both"):
        api.sweep(s, executor=object(), cluster="tcp://127.0.0.1:1")


def test_to_dataframe_when_pandas_is_installed(chatbot):
    s = chatbot.with_(sweep={"workload.arrival.rate": [1.0, 2.0]})
    res = api.sweep(s, requests=10, max_workers=1)
    try:
        import pandas  # noqa: F401
    except ImportError:
        with pytest.raises(SimkitError, match="pandas is not installed"):
            api.to_dataframe(res)
    else:
        df = api.to_dataframe(res)
        assert len(df) == 2 and "workload.arrival.rate" in df.columns
