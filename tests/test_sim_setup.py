"""The simulator's set-up checks (`simkit.sim.setup`): one function that `simulate`,
`Scenario.with_()` and the loader's check of every [sweep] point call, so a setting that
cannot run on its model and hardware fails the same way everywhere -- and a sweep fails
before it writes anything (issue 14)."""

from __future__ import annotations

import pytest

from simkit.errors import SimkitError
from simkit.scenario import scenario_from_dict
from simkit.sim import simulate
from simkit.sim.setup import runtime_check


def base(**sections):
    d = {"name": "setup", "workload": {"requests": 8}}
    for k, v in sections.items():
        d[k] = {**d.get(k, {}), **v}
    return d


# (sections of a scenario that loads, the dotted key and value that cannot run, the key path
# the error names, a phrase of the reason). Arithmetic behind each case:
# - 32 query heads do not split over 3 GPUs;
# - Llama-3-70B holds ~70.6e9 parameters = ~141 GB of bf16 weights > 0.9 x 79.6 GiB (H100);
# - a budget of 4 tokens with 4 sink tokens leaves no recent window;
# - Llama-3.1-8B reserving 131,072 positions x 128 KiB (32 layers x 8 KV heads x 128 x 2 x
#   2 bytes) = 16 GiB per request, but an L4 keeps 0.9 x 22.5 GiB - ~15 GiB of weights.
CASES = [
    ({}, "hardware.gpus_per_replica", 3, "hardware.gpus_per_replica", "cannot split"),
    ({"model": {"name": "llama-3-70b"}, "hardware": {"gpus_per_replica": 2}},
     "hardware.gpus_per_replica", 1, "hardware.gpus_per_replica", "does not fit"),
    ({"serving": {"kv_budget_tokens": 4, "sink_tokens": 2}}, "serving.sink_tokens", 4,
     "serving.kv_budget_tokens", "must exceed sink_tokens"),
    ({"model": {"name": "llama-3.1-8b"}, "hardware": {"name": "l4"},
      "serving": {"kv_memory": "contiguous", "max_seq_len": 4096}}, "serving.max_seq_len", 131072,
     "serving.memory_fraction", "reserving 131072 tokens"),
]


@pytest.mark.parametrize("sections, key, value, path, reason", CASES,
                         ids=[c[4] for c in CASES])
def test_simulate_with_and_sweep_reject_the_same_setting(sections, key, value, path, reason):
    ok = scenario_from_dict(base(**sections))
    runtime_check(ok)  # the base runs
    with pytest.raises(SimkitError) as run_err:
        simulate(scenario_from_dict(_set(base(**sections), key, value)))
    msg = run_err.value.messages[0]
    assert msg.startswith(f"{path}: ") and reason in msg
    with pytest.raises(SimkitError) as with_err:
        ok.with_(**{key: value})
    assert with_err.value.messages == run_err.value.messages
    with pytest.raises(SimkitError) as runtime_err:
        runtime_check(scenario_from_dict(_set(base(**sections), key, value)))
    assert runtime_err.value.messages == run_err.value.messages
    # a [sweep] holding the value fails when it loads, naming the point, once per problem
    with pytest.raises(SimkitError) as sweep_err:
        scenario_from_dict({**base(**sections), "sweep": {"seed": [1, 2], key: [value]}})
    lines = sweep_err.value.messages
    assert len(lines) == 1
    assert lines[0] == f"sweep (point seed = 1, {key} = {value!r}): {msg}"


def _set(d, key, value):
    sec, _, leaf = key.partition(".")
    d[sec] = {**d.get(sec, {}), leaf: value}
    return d


def test_a_grid_may_vary_what_makes_its_base_runnable():
    # Llama-3-70B on one H100 cannot run, but every point of this sweep uses more GPUs
    s = scenario_from_dict({**base(model={"name": "llama-3-70b"}),
                            "sweep": {"hardware.gpus_per_replica": [2, 4]}})
    with pytest.raises(SimkitError, match="does not fit"):
        simulate(s)  # the base itself
    assert [p["hardware.gpus_per_replica"] for p in s.points()] == [2, 4]
    assert s.at_point(s.points()[0]).hardware.gpus_per_replica == 2
    # with_ on a scenario that keeps its sweep checks the points, not the base
    assert s.with_(**{"workload.requests": 9}).workload.requests == 9


def test_a_search_keeps_configurations_that_cannot_run():
    s = scenario_from_dict({**base(slo={"ttft_p99_s": 5.0}),
                            "plan": {"target_qps": 1.0,
                                     "search": {"hardware.gpus_per_replica": [1, 3]}}})
    assert len(s.plan.search.points()) == 2  # TP 3 is an infeasible row, not a load error


def test_a_trace_that_cannot_be_read_fails_every_check(tmp_path):
    (tmp_path / "t.csv").write_text("arrived_at,num_prefill_tokens,num_decode_tokens\n"
                                    "0.0,10,5\nsoon,12,5\n")
    d = {**base(), "workload": {"requests": 4,
                                "arrival": {"process": "trace", "path": "t.csv"}}}
    s = scenario_from_dict(d, base_dir=tmp_path)  # the file exists: the loader accepts it
    with pytest.raises(SimkitError) as e:
        runtime_check(s)
    assert e.value.messages[0] == ("workload.arrival.path: t.csv line 3: column 'arrived_at' "
                                   "is not a number: 'soon'")
    with pytest.raises(SimkitError) as e2:
        scenario_from_dict({**d, "sweep": {"seed": [1]}}, base_dir=tmp_path)
    assert e2.value.messages[0].endswith(e.value.messages[0])
