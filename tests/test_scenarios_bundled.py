"""Every bundled scenario loads, answers its question's shape, and runs (reduced requests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from simkit.scenario import load_scenario
from simkit.sim import simulate

ROOT = Path(__file__).resolve().parent.parent

BUNDLED = sorted((ROOT / "scenarios").glob("*.toml"))
#: requests per simulated point here; the bundled counts are for real use
REQUESTS = 40


def test_there_are_bundled_scenarios_with_a_question_header():
    names = {p.name for p in BUNDLED}
    assert "chatbot-llama3-8b-h100.toml" in names and len(BUNDLED) >= 9
    for p in BUNDLED:
        text = p.read_text()
        assert text.startswith("# Question:"), p.name
        s = load_scenario(p)
        assert s.question and s.name == p.stem


@pytest.mark.parametrize("path", BUNDLED, ids=[p.stem for p in BUNDLED])
def test_bundled_scenario_runs(path):
    s = load_scenario(path)
    points = s.points() or [{}]
    for params in points:
        sp = s.at_point(params) if params else s
        n = min(sp.workload.requests, REQUESTS)
        res = simulate(sp, requests=n)
        m = res.summary
        assert m["requests_arrived"] == n, params
        assert m["requests_completed"] + m["requests_rejected"] == n, params
        assert m["kv_peak_bytes"] <= m["kv_capacity_bytes"], params


def test_32_requests_of_500_hold_the_memory_of_one_16k_document():
    s = load_scenario(ROOT / "scenarios" / "memory-32x500-vs-16k-document.toml")
    chat = simulate(s.at_point({"workload.requests": 32, "workload.prompt_tokens.value": 500}))
    doc = simulate(s.at_point({"workload.requests": 1, "workload.prompt_tokens.value": 16000}))
    # same tokens held (32 x (500 + 16) vs 16000 + 16), so the peaks agree within 5%
    ratio = chat.summary["kv_peak_bytes"] / doc.summary["kv_peak_bytes"]
    assert 0.95 < ratio < 1.1


def test_linear_attention_state_does_not_grow_with_the_contract():
    s = load_scenario(ROOT / "scenarios" / "news-vs-contracts.toml")
    peak = {}
    for p in s.points():
        r = simulate(s.at_point(p), requests=2)
        peak[(p["model.attention"], p["workload.prompt_tokens.value"])] = r.summary["kv_peak_bytes"]
    assert peak[("full", 40000)] > 50 * peak[("full", 267)]
    assert peak[("linear", 40000)] < 1.5 * peak[("linear", 267)]


def test_chatbot_capacity_plan_runs_reduced():
    from simkit.plan.capacity import plan

    s = load_scenario(ROOT / "scenarios" / "chatbot-llama3-8b-h100.toml")
    r = plan(s, requests=150)
    assert r.max_qps > 0 and r.replicas >= 1 and r.slo["met"]
    assert r.gpus == r.replicas * s.hardware.gpus_per_replica


def test_architecture_comparison_plan_runs_reduced():
    from simkit.plan.capacity import plan

    s = load_scenario(ROOT / "scenarios" / "plan-compare-attention.toml")
    r = plan(s, requests=112)
    assert {c["attention"] for c in r.comparison} == {"full", "window", "linear"}
    assert r.best_attention in {"full", "window", "linear"}


def test_interleaved_stack_holds_a_fifth_of_the_uniform_kv_at_128k():
    # gpt-oss-20b: 12 full layers x 2 (K, V) x 8 heads x 64 x 2 B per position, plus 12
    # window layers holding 128 positions each; Llama-3.1-8B: 32 x 2 x 8 x 128 x 2 B
    from simkit.costs.compiled import step_model_for

    s = load_scenario(ROOT / "scenarios" / "interleaved-vs-uniform-128k.toml")
    t = 131072
    kv = {}
    for p in s.points():
        sm = step_model_for(s.at_point(p))
        kv[p["model.name"]] = float(sm.kv_bytes([t])[0])
    assert kv["llama-3.1-8b"] == 32 * 2 * 8 * 128 * 2 * t
    assert kv["gpt-oss-20b"] == 12 * 2 * 8 * 64 * 2 * t + 12 * 2 * 8 * 64 * 2 * 128
    assert kv["llama-3.1-8b"] / kv["gpt-oss-20b"] > 5
    runs = {p["model.name"]: simulate(s.at_point(p), requests=12).summary for p in s.points()}
    assert runs["gpt-oss-20b"]["ttft_s"]["p50"] < runs["llama-3.1-8b"]["ttft_s"]["p50"]
    assert runs["gpt-oss-20b"]["kv_peak_bytes"] < runs["llama-3.1-8b"]["kv_peak_bytes"]


def test_a_shared_system_prompt_is_prefilled_once():
    # every request opens with the same 3,000-token system prompt: with 16-token blocks the
    # cache serves its 187 full blocks (2,992 tokens) to every request after the first
    # prefill, and nothing more (each user's own tokens differ)
    s = load_scenario(ROOT / "scenarios" / "system-prompt-caching.toml")
    on = simulate(s, requests=600)
    off = simulate(s.with_(**{"serving.prefix_caching": False}), requests=600)
    r = on.requests
    assert set(r["cached_tokens"].tolist()) <= {0, 3000 // 16 * 16}
    assert (r["cached_tokens"] == 0).sum() <= 2  # admitted before the first prefill ended
    assert on.summary["prefill_tokens_computed"] == int((r["prompt_tokens"]
                                                         - r["cached_tokens"]).sum())
    # what the cache saves at 10 requests/s on one H100: prefill FLOPs, and the queueing a
    # saturated prefill causes (TTFT)
    assert on.summary["prefill_flops"] < 0.2 * off.summary["prefill_flops"]
    # without the cache every prompt is prefilled whole, more than once when preempted
    assert off.summary["prefill_flops"] >= on.summary["prefill_flops_without_cache"]
    assert on.summary["ttft_s"]["p99"] < 0.2 * off.summary["ttft_s"]["p99"]
    # at a load that preempts nothing, exactly what the cached run says it saved
    calm = s.with_(**{"workload.arrival.rate": 3.0})
    c_on = simulate(calm, requests=600)
    c_off = simulate(calm.with_(**{"serving.prefix_caching": False}), requests=600)
    assert c_off.summary["preemptions"] == 0
    assert c_off.summary["prefill_flops"] == c_on.summary["prefill_flops_without_cache"]


def test_prefix_caching_serves_the_system_prompt_load_with_fewer_gpus():
    from simkit.plan.capacity import plan

    s = load_scenario(ROOT / "scenarios" / "system-prompt-caching.toml")
    on = plan(s, requests=400)
    off = plan(s.with_(**{"serving.prefix_caching": False}), requests=400)
    assert on.slo["met"] and off.slo["met"]
    assert on.max_qps > 2 * off.max_qps
    assert on.gpus < off.gpus


def test_growing_conversations_hit_their_history():
    s = load_scenario(ROOT / "scenarios" / "chatbot-growing-conversations.toml")
    hit = {}
    for p in s.points():
        r = simulate(s.at_point(p), requests=300)
        hit[p["workload.sessions.turns.high"]] = r.summary["prefix_hit_rate"]
        assert r.summary["sessions"] < 300
    # the longer the conversations, the more of each prompt is history the cache holds
    assert hit[4] < hit[16] < hit[48]
