"""Random valid scenarios (hypothesis strategies) and the invariants every run must keep.

Used by tests/test_fuzz_scenarios.py (a CI-sized run) and benchmarks/fuzz.py (>= 10,000
scenarios). A generated scenario either loads and runs keeping every invariant, or is refused
with a `SimkitError` (one line, exit 2 at the CLI); anything else is a violation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import strategies as st

from conftest import assert_same_run

#: a draft with each fuzzed model's vocabulary (speculative decoding)
_REPO = Path(__file__).resolve().parent.parent
DRAFTS = {"llama-3-8b": str(_REPO / "scenarios/models/llama-3.2-1b/config.json"),
          "mistral-7b": "llama-2-7b", "llama-2-7b": "llama-2-7b", "mamba-2.8b": "mamba-2.8b"}

#: (model, layers): small enough for one H200 / MI300X at bf16 or with TP 2
MODELS = [("llama-3-8b", 32), ("mistral-7b", 32), ("mamba-2.8b", 64), ("llama-2-7b", 32)]
DIVISORS_32 = [1, 2, 4, 8]

_setting = {
    "window": st.fixed_dictionaries({"kind": st.just("window"),
                                     "window": st.integers(8, 3000)}),
    "chunked": st.fixed_dictionaries({"kind": st.just("chunked"),
                                      "chunk": st.integers(8, 3000)}),
    "sparse": st.fixed_dictionaries({"kind": st.just("sparse"), "window": st.integers(8, 2000),
                                     "global_tokens": st.integers(0, 64)}),
    "linear": st.fixed_dictionaries({"kind": st.just("linear"),
                                     "variant": st.sampled_from(["plain", "lightning",
                                                                 "gated_deltanet"])}),
    "ssm": st.fixed_dictionaries({"kind": st.just("ssm"),
                                  "variant": st.sampled_from(["mamba1", "mamba2"])}),
    "full": st.just({"kind": "full"}),
    "memory": st.fixed_dictionaries({"kind": st.just("memory"),
                                     "memory_slots": st.integers(4, 256),
                                     "segment_tokens": st.integers(8, 512)}),
}
layer = st.one_of(*_setting.values())


@st.composite
def layer_patterns(draw):
    length = draw(st.sampled_from(DIVISORS_32))
    return draw(st.lists(layer, min_size=length, max_size=length))


def _lengths(max_tokens: int):
    return st.one_of(
        st.fixed_dictionaries({"dist": st.just("fixed"), "value": st.integers(1, max_tokens)}),
        st.integers(1, max_tokens).flatmap(lambda lo: st.fixed_dictionaries({
            "dist": st.just("uniform"), "low": st.just(lo),
            "high": st.integers(lo, max_tokens)})),
        st.fixed_dictionaries({"dist": st.just("lognormal"),
                               "median": st.floats(4, max_tokens / 2),
                               "sigma": st.floats(0, 1.5),
                               "max": st.integers(max_tokens // 2, max_tokens)}))


@st.composite
def scenarios(draw, max_requests: int = 40):
    """A scenario dict the loader accepts (most of the time: a few combinations are refused
    at load or at run with one clear line, which the caller counts)."""
    name, layers = draw(st.sampled_from(MODELS))
    model: dict = {"name": name, "kv_dtype": draw(st.sampled_from(["bf16", "fp8", "int4"]))}
    shape = draw(st.sampled_from(["own", "kind", "pattern", "hybrid"]))
    if shape == "kind":
        model["attention"] = draw(st.sampled_from(["full", "window", "chunked", "sparse",
                                                   "linear", "ssm", "memory"]))
    elif shape == "pattern" and layers == 32:
        model["layer_pattern"] = draw(layer_patterns())
    elif shape == "hybrid":
        model["attention_every"] = draw(st.sampled_from([2, 4, 8]))
    if draw(st.booleans()):
        model["max_context"] = draw(st.sampled_from([8192, 32768]))
    hardware = {"name": draw(st.sampled_from(["h200", "mi300x", "a100-80gb"])),
                "gpus_per_replica": draw(st.sampled_from([1, 2]))}
    serving = {
        "scheduler": draw(st.sampled_from(["static", "continuous", "chunked",
                                           "prefill_first"])),
        "prefix_caching": draw(st.booleans()),
        "max_batch": draw(st.integers(1, 64)),
        "kv_memory": draw(st.sampled_from(["paged", "contiguous"])),
        "block_size": draw(st.sampled_from([1, 8, 16, 32])),
        "memory_fraction": draw(st.floats(0.3, 0.95)),
        "replicas": draw(st.integers(1, 3)),
        "router": draw(st.sampled_from(["round_robin", "least_loaded", "session_affinity"])),
        "preemption": draw(st.sampled_from(["recompute", "swap"])),
        "chunk_tokens": draw(st.integers(16, 2048)),
    }
    serving["admission"] = draw(st.sampled_from(["greedy", "no_evict", "new_token_ratio"]))
    if serving["admission"] == "new_token_ratio" and draw(st.booleans()):
        serving["schedule_conservativeness"] = draw(st.floats(0, 3))
    if draw(st.booleans()):
        serving["max_batch_tokens"] = draw(st.integers(64, 8192))
    if draw(st.integers(0, 3)) == 0:
        serving["watermark"] = draw(st.floats(0, 0.2))
    if draw(st.integers(0, 5)) == 0:  # a cache sized in bytes (refused where it cannot fit)
        serving["kv_cache_bytes"] = draw(st.integers(2**26, 2**36))
    if draw(st.integers(0, 3)) == 0:  # multi-step rounds (refused where not modelled)
        serving["scheduler_steps"] = draw(st.integers(2, 12))
    if serving["kv_memory"] == "contiguous":
        serving["max_seq_len"] = draw(st.integers(64, 8192))
    if draw(st.integers(0, 5)) == 0:
        serving["sink_tokens"] = draw(st.integers(0, 8))
        serving["kv_budget_tokens"] = serving["sink_tokens"] + draw(st.integers(1, 2000))
    if draw(st.integers(0, 3)) == 0:  # prefill and decode pools
        dis: dict = {"prefill_replicas": draw(st.integers(1, 2)),
                     "decode_replicas": draw(st.integers(1, 2)),
                     "transfer": draw(st.sampled_from(["after_prefill", "layerwise"]))}
        if draw(st.booleans()):
            dis.update(link="network", link_bytes_per_s=draw(st.floats(1e8, 1e11)),
                       link_latency_s=draw(st.floats(0, 1e-3)))
        if draw(st.booleans()):
            dis["decode_gpus_per_replica"] = draw(st.sampled_from([1, 2]))
        if draw(st.booleans()) and dis.get("link") == "network":
            dis["prefill_hardware"] = draw(st.sampled_from(["h200", "mi300x", "a100-80gb"]))
        serving["disaggregation"] = dis
    if draw(st.integers(0, 4)) == 0:  # speculative decoding
        spec: dict = {"draft": DRAFTS[name], "tokens": draw(st.integers(1, 6))}
        if draw(st.booleans()):
            spec["acceptance"] = draw(st.floats(0, 0.99))
        else:
            w = draw(st.lists(st.floats(0.01, 1), min_size=spec["tokens"] + 1,
                              max_size=spec["tokens"] + 1))
            spec["acceptance_lengths"] = [x / sum(w) for x in w]
        serving["speculative"] = spec
    workload = {
        "requests": draw(st.integers(1, max_requests)),
        "arrival": draw(st.one_of(
            st.fixed_dictionaries({"process": st.just("poisson"),
                                   "rate": st.floats(0.1, 200)}),
            st.fixed_dictionaries({"process": st.just("gamma"), "rate": st.floats(0.1, 200),
                                   "cv": st.floats(0.2, 4)}),
            st.fixed_dictionaries({"process": st.just("fixed"),
                                   "rate": st.floats(0.1, 200)}))),
        "prompt_tokens": draw(_lengths(6000)),
        "output_tokens": draw(_lengths(1500)),
    }
    if draw(st.integers(0, 3)) == 0:  # the requests' token limit (answers stop there)
        workload["max_new_tokens"] = draw(st.integers(1, 2000))
    chat = draw(st.sampled_from(["none", "system", "tenants", "sessions"]))
    if chat == "system":
        workload["system_prompt_tokens"] = draw(st.integers(1, 3000))
    elif chat == "tenants":
        workload["tenants"] = [{"weight": draw(st.floats(0.1, 1)),
                                "system_prompt_tokens": draw(st.integers(0, 3000))}
                               for _ in range(draw(st.integers(1, 3)))]
    elif chat == "sessions":
        workload["sessions"] = {
            "turns": draw(st.sampled_from([{"dist": "fixed", "value": 3},
                                           {"dist": "uniform", "low": 1, "high": 8}])),
            "think_time_s": draw(st.sampled_from([
                {"dist": "fixed", "value": 0.0}, {"dist": "exponential", "mean": 5.0},
                {"dist": "lognormal", "median": 2.0, "sigma": 1.0}]))}
        if draw(st.booleans()):
            workload["system_prompt_tokens"] = draw(st.integers(1, 3000))
    if chat != "sessions" and draw(st.integers(0, 4)) == 0:  # a trace's rows, maybe as pairs
        trace = str(_REPO / "scenarios" / "traces" / "azure_llm_2023_conv.csv")
        workload["prompt_tokens"] = {"dist": "empirical", "path": trace,
                                     "column": "num_prefill_tokens", "max": 6000}
        workload["output_tokens"] = {"dist": "empirical", "path": trace,
                                     "column": "num_decode_tokens", "max": 1500,
                                     "paired": draw(st.booleans())}
    return {"name": "fuzz", "seed": draw(st.integers(0, 2**31)), "model": model,
            "hardware": hardware, "workload": workload, "serving": serving,
            "slo": {"ttft_p99_s": 2.0, "tpot_p99_s": 0.1}}


def check_run(d: dict, *, stepped: bool = True) -> str:
    """Load and simulate scenario dict `d`; returns "ran", "refused at load" or "refused at
    run". Raises AssertionError on a broken invariant (and lets any non-SimkitError out)."""
    import warnings

    from simkit.errors import SimkitError, SimkitWarning
    from simkit.scenario import scenario_from_dict
    from simkit.sim import simulate

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SimkitWarning)
        try:
            sc = scenario_from_dict(d)
        except SimkitError as e:
            assert e.messages and all(m and "\n" not in m for m in e.messages)
            return "refused at load"
        try:
            res = simulate(sc)
        except SimkitError as e:
            assert e.messages and all(m and "\n" not in m for m in e.messages)
            return "refused at run"
        check_invariants(res, d["workload"]["requests"])
        if stepped:
            assert_same_run(res, simulate(sc, fast=False))
    return "ran"


def check_invariants(res, n: int) -> None:
    s = res.summary
    if "sessions" in s:  # a rejected turn ends its session: later turns never arrive
        assert s["requests_arrived"] <= n
        n = s["requests_arrived"]
    else:
        assert s["requests_arrived"] == n
    assert s["requests_completed"] + s["requests_rejected"] == n, "a request was lost"
    assert s["requests_in_flight"] == 0
    caps = s.get("per_replica_kv_capacity_bytes") or [s["kv_capacity_bytes"]] * len(
        s["per_replica_kv_peak_bytes"])
    assert all(p <= c * (1 + 1e-12) for p, c in zip(s["per_replica_kv_peak_bytes"], caps)), \
        "KV beyond capacity"
    assert s["kv_units_allocated"] == s["kv_units_freed"], "KV units leaked"
    if s["kv_useful_fraction"] is not None:
        assert 0 < s["kv_useful_fraction"] <= 1 + 1e-12
    r = res.requests
    done = r["status"] == "completed"
    assert np.all(r["start_s"][done] >= r["arrival_s"][done])
    assert np.all(r["first_token_s"][done] > r["start_s"][done])
    assert np.all(r["finish_s"][done] >= r["first_token_s"][done])
    assert np.all(r["preemptions"] >= 0)
    started = r["cached_tokens"] >= 0  # prefix hits: short of the prompt, prefills the rest
    assert np.all(r["cached_tokens"][started] <= r["prompt_tokens"][started] - 1)
    assert np.all(r["prefill_tokens_computed"][started]
                  >= r["prompt_tokens"][started] - r["cached_tokens"][started])
    if "kv_transfer_bytes" in r:  # disaggregated: a move per multi-token answer, after its
        # first token, within its life
        moved = ~np.isnan(r["kv_transfer_end_s"])
        assert np.all(moved[done] == (r["output_tokens"][done] > 1)), "a KV move missing"
        # (layer by layer, a move starts before the prefill ends, never before the request
        # started; it ends after the first token)
        lw = s["disaggregation"]["transfer"] == "layerwise"
        assert np.all(r["kv_transfer_start_s"][moved] >= (r["start_s"] if lw else
                                                          r["first_token_s"])[moved])
        assert np.all(r["kv_transfer_end_s"][moved] >= r["first_token_s"][moved])
        assert np.all(r["kv_transfer_end_s"][moved] >= r["kv_transfer_start_s"][moved])
        assert np.all(r["finish_s"][moved & done] >= r["kv_transfer_end_s"][moved & done])
        assert s["kv_transfer_bytes"] == float(r["kv_transfer_bytes"][moved].sum())
    if "speculative" in s and s["speculative"]["tokens_per_step"] is not None:
        assert 1 <= s["speculative"]["tokens_per_step"] <= s["speculative"]["tokens"] + 1
