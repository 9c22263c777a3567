"""What the report gathers: the numbers on its pages agree with the cost layer, the
simulator and the scenario."""

from __future__ import annotations

import numpy as np
import pytest

from simkit.report.pages import calibration, capacity, costmodel, roofline, scaling, simulation
from simkit.report.pages import sweep as sweep_page
from simkit.report.pages.assumptions import assumptions_data
from simkit.scenario import scenario_from_dict

BASE = {
    "name": "data-test", "seed": 3,
    "model": {"name": "llama-3-8b", "attention": "full", "window": 1024},
    "hardware": {"name": "h100-sxm"},
    "workload": {"requests": 40, "arrival": {"process": "poisson", "rate": 2.0},
                 "prompt_tokens": {"dist": "fixed", "value": 600},
                 "output_tokens": {"dist": "fixed", "value": 16}},
}


def scen(**extra):
    d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in BASE.items()}
    d.update(extra)
    return scenario_from_dict(d)


def test_compare_kinds_default_plan_and_sweep():
    assert costmodel.compare_kinds(scen()) == ("full",) + tuple(k for k in costmodel.DEFAULT_COMPARE
                                                        if k != "full")
    s = scen(slo={"ttft_p99_s": 1.0}, plan={"compare": ["linear", "full"]})
    assert costmodel.compare_kinds(s) == ("full", "linear")
    s = scen(sweep={"model.attention": ["memory", "full"]})
    assert costmodel.compare_kinds(s) == ("full", "memory")


def test_scaling_crossovers_are_where_the_costs_cross():
    s = scen()
    sc = scaling.scaling_data(s, ("full", "window"))
    cache = [c for c in sc.crossovers["cache"] if c["b"] == "window"]
    # full and a 1,024-token window hold the same cache up to w tokens, then full grows
    assert [c["length"] for c in cache] == [1025]
    full = dict(zip(sc.lengths.tolist(), sc.cache_bytes["full"]))
    assert full[sc.lengths[0]] == pytest.approx(131072 * sc.lengths[0])  # 128 KiB / token
    # the window's cache stops growing at w; full attention's never does
    assert sc.cache_bytes["window"][-1] == pytest.approx(131072 * 1024)
    assert sc.max_context["window"] is None
    assert sc.max_context["full"] == int(sc.kv_capacity_bytes // 131072)
    # prefill: full attention is quadratic, so its time grows faster than the window's
    assert sc.prefill_s["full"][-1] > 10 * sc.prefill_s["window"][-1]


def test_cost_table_ratio_is_the_square_law():
    s = scen(report={"context_lengths": [512, 2048]})
    c = costmodel.cost_model_data(s, ("full",))
    rows = c.lengths_table["rows"]
    assert rows[0][0] == "512" and rows[1][0] == "2,048"
    # attention prefill FLOPs n(n+1): (2048*2049) / (512*513) = 15.98
    assert rows[1][3] == "16x"
    assert c.big_o_time == "O(n^2)"
    names = {x["name"]: x for x in c.symbols}
    assert names["H_kv"]["value"] == 8 and names["beta_kv"]["meaning"]


def test_simulation_latencies_cover_completed_requests():
    s = scen()
    sim = simulation.simulation_data(s)
    assert sim.summary["requests_completed"] == 40
    assert sim.latencies["ttft_s"].size == 40
    assert np.percentile(sim.latencies["ttft_s"], 99) == pytest.approx(
        sim.summary["ttft_s"]["p99"])
    assert np.all(sim.latencies["tpot_s"] > 0)


def test_roofline_points_lie_under_the_roofs():
    r = roofline.roofline_data(scen())
    assert r.points
    for p in r.points:
        ai = p["flops"] / p["bytes"]
        assert p["flops_per_s"] <= min(r.effective_flops_per_s,
                                       r.effective_bytes_per_s * ai) * (1 + 1e-9)
    kinds = [p["kind"] for p in r.points]
    assert "prefill" in kinds and "decode" in kinds


def test_no_plan_without_slo_or_plan_section():
    assert capacity.plan_data(scen()) is None
    assert sweep_page.sweep_data(scen()) is None


def test_uncalibrated_profile_has_no_calibration_page():
    assert calibration.calibration_data(scen()) is None


def test_assumptions_cite_sources():
    secs = dict(assumptions_data(scen()))
    text = " ".join(sum(secs.values(), []))
    assert "huggingface.co/meta-llama/Meta-Llama-3-8B" in text
    assert "NVIDIA H100 datasheet" in text
    # the catalog H100 carries measured efficiencies: the report quotes where they come from
    from simkit.catalog.hardware import load_hardware
    assert load_hardware("h100-sxm").efficiency_source in text
    assert "arXiv:1804.06826" not in text


def test_assumptions_explain_default_efficiencies(tmp_path):
    """A profile that leaves the efficiencies unset gets the stated defaults and their reasons."""
    p = tmp_path / "plain.toml"
    p.write_text('name = "plain"\nmemory_bandwidth_bytes_per_s = 2e12\n'
                 'memory_capacity_bytes = 80e9\n[peak_flops_per_s]\nbf16 = 1e15\n')
    secs = dict(assumptions_data(scen(hardware={"name": str(p), "engine": "roofline"})))
    text = " ".join(sum(secs.values(), []))
    assert "arXiv:1804.06826" in text  # where the memory efficiency default comes from
    assert "1 ms per forward step" in text  # the roofline engine adds no fixed costs


def test_assumptions_state_the_fixed_costs_the_engine_charges(tmp_path):
    """An engine profile with its own step overhead and all-reduce latency replaces the
    hardware profile's: the page states the engine's, not the hardware's 1 ms and 10 us."""
    p = tmp_path / "fixed.toml"
    p.write_text('name = "fixed"\n[constants]\nstep_overhead_s = 0.0025\n'
                 'allreduce_latency_s = 2e-5\n')
    secs = dict(assumptions_data(scen(hardware={"name": "h100-sxm", "engine": str(p)})))
    line = secs["Efficiency constants of the profile"][0]
    assert "step overhead 2.5 ms, 20 us latency per all-reduce" in line
    assert "engine fixed's" in line
    assert "1 ms per forward step" not in " ".join(sum(secs.values(), []))


def test_the_setup_says_when_decodes_run_in_multi_step_rounds():
    from simkit.report.pages.title import title_data

    def serving_row(**serving):
        s = scenario_from_dict({"model": {"name": "llama-3-8b"},
                                "hardware": {"name": "h100-sxm"}, "serving": serving})
        return dict(title_data(s).rows)["Serving"]

    assert "multi-step rounds of 8 decode steps streamed step by step" in \
        serving_row(scheduler_steps=8)
    assert "rounds of 8 decode steps sent at each round's end" in \
        serving_row(scheduler_steps=8, multi_step_stream_outputs=False)
    assert "multi-step" not in serving_row()
    assert "preemption by recompute" in serving_row()
    no_evict = serving_row(admission="no_evict")
    assert "no eviction" in no_evict and "preemption" not in no_evict
    # the watermark: named when admissions keep memory back (vLLM V0's 1% by default)
    assert "leave 2% of the KV memory free (watermark)" in serving_row(watermark=0.02)
    assert "leave 1% of the KV memory" in serving_row(scheduler="prefill_first")
    assert "watermark" not in serving_row()
    # a cache the scenario sizes (vLLM's --kv-cache-memory-bytes) replaces memory_fraction
    assert "KV cache 16 GiB per GPU" in serving_row(kv_cache_bytes=16 * 2**30)
    assert "memory_fraction" not in serving_row(kv_cache_bytes=16 * 2**30)


def test_the_setup_says_how_a_benchmark_client_sends():
    from simkit.report.pages.title import title_data

    def workload_row(**workload):
        s = scenario_from_dict({"model": {"name": "llama-3-8b"},
                                "hardware": {"name": "h100-sxm"}, "workload": workload})
        return dict(title_data(s).rows)["Workload"]

    closed = workload_row(arrival={"process": "burst"}, max_concurrency=32)
    assert "all at t = 0" in closed and "at most 32 unanswered at once" in closed
    assert "unanswered" not in workload_row(arrival={"process": "poisson", "rate": 3})
