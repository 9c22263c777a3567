"""Multi-turn sessions and system prompts in the simulator (simkit.sim.sessions), with the
prefix cache serving what they re-send. Expected hits are derived by hand from the block
size and the token counts."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_same_run
from simkit.errors import SimkitError
from simkit.sim import simulate
from test_sim_toymodel import ToyStepModel, duration, length, sessions, toy_scenario

BLOCK = 16
SYSTEM = 100
USER, ANSWER = 40, 20


def _chat(n_sessions=3, turns=4, think=2.0, rate=0.2, caching=True, **over):
    """Sessions of `turns` turns (USER new tokens, ANSWER tokens each) behind a SYSTEM-token
    system prompt, first turns every 1/rate s, on a toy model with room for everything."""
    sc = toy_scenario(**{"workload.requests": n_sessions * turns,
                         "workload.arrival.process": "fixed", "workload.arrival.rate": rate,
                         "workload.prompt_tokens": length(value=USER),
                         "workload.output_tokens": length(value=ANSWER),
                         "workload.sessions": sessions(length(value=turns),
                                                       duration(value=think)),
                         "workload.system_prompt_tokens": SYSTEM,
                         "serving.prefix_caching": caching, **over})
    return sc


def test_each_turn_resends_the_history_and_arrives_after_the_answer():
    res = simulate(_chat(), step_model=ToyStepModel(capacity_bytes=1e7), seed=1)
    r = res.requests
    assert res.summary["requests_arrived"] == 12 and res.summary["requests_completed"] == 12
    assert res.summary["sessions"] == 3
    for s in range(3):
        mine = np.flatnonzero(r["session_id"] == s)
        mine = mine[np.argsort(r["turn"][mine])]
        assert r["turn"][mine].tolist() == [1, 2, 3, 4]
        # turn k: system prompt + (k - 1) x (user + answer) + the new user tokens
        assert r["prompt_tokens"][mine].tolist() == [SYSTEM + k * (USER + ANSWER) + USER
                                                     for k in range(4)]
        # the next turn arrives the think time (2 s) after the previous answer ended
        fin, arr = r["finish_s"][mine], r["arrival_s"][mine]
        assert np.array_equal(arr[1:], fin[:-1] + 2.0)


def test_a_token_limit_shortens_every_answer_and_so_the_history():
    """workload.max_new_tokens = 12 < ANSWER: each answer stops at 12 tokens, and turn k
    re-sends k earlier answers of 12."""
    res = simulate(_chat(**{"workload.max_new_tokens": 12}),
                   step_model=ToyStepModel(capacity_bytes=1e7), seed=1)
    r = res.requests
    assert set(r["output_tokens"].tolist()) == {12}
    mine = np.flatnonzero(r["session_id"] == 0)
    mine = mine[np.argsort(r["turn"][mine])]
    assert r["prompt_tokens"][mine].tolist() == [SYSTEM + k * (USER + 12) + USER
                                                 for k in range(4)]


def _expected_hits(r):
    """Hits derived by hand: the first turn of the first session finds nothing; a later
    session's first turn (arriving 5 s later, long after that prefill) the full blocks of
    the system prompt; turn k + 1 the full blocks of turn k's computed tokens (its prompt
    and its answer but the answer's last token, which is never fed back)."""
    hits = np.zeros(len(r["id"]), dtype=np.int64)
    for i in range(len(hits)):
        s, k = r["session_id"][i], r["turn"][i]
        if k == 1:
            hits[i] = 0 if s == 0 else SYSTEM // BLOCK * BLOCK
        else:
            prev = SYSTEM + (k - 2) * (USER + ANSWER) + USER  # turn k - 1's prompt
            hits[i] = (prev + ANSWER - 1) // BLOCK * BLOCK
    return hits


@pytest.mark.parametrize("scheduler,steps", [("continuous", 1), ("chunked", 1),
                                             ("prefill_first", 1), ("static", 1),
                                             ("continuous", 8), ("prefill_first", 6)])
def test_exact_hit_counts_when_nothing_is_evicted(scheduler, steps):
    """(Multi-step rounds included: an answer that ends mid-round computes throw-away
    tokens, which must not join its cache.)"""
    res = simulate(_chat(**{"serving.scheduler": scheduler,
                            "serving.scheduler_steps": steps}),
                   step_model=ToyStepModel(capacity_bytes=1e7), seed=1)
    r, s = res.requests, res.summary
    hits = _expected_hits(r)
    assert r["cached_tokens"].tolist() == hits.tolist()
    # e.g. turn 2: 160-token prompt, turn 1 computed 140 + 19 = 159 tokens: 9 blocks = 144
    assert 144 in hits.tolist()
    assert s["prefix_cached_tokens"] == int(hits.sum())
    assert s["prefix_hit_rate"] == pytest.approx(hits.sum() / r["prompt_tokens"].sum())
    assert s["prefill_tokens_computed"] == int((r["prompt_tokens"] - hits).sum())
    assert r["prefill_tokens_computed"].tolist() == (r["prompt_tokens"] - hits).tolist()
    assert s["preemptions"] == 0


def test_without_prefix_caching_every_prompt_is_prefilled():
    on = simulate(_chat(), step_model=ToyStepModel(capacity_bytes=1e7), seed=1)
    off = simulate(_chat(caching=False), step_model=ToyStepModel(capacity_bytes=1e7), seed=1)
    assert off.summary["prefix_hit_rate"] == 0.0 and not off.summary["prefix_caching"]
    assert off.summary["prefill_tokens_computed"] == int(off.requests["prompt_tokens"].sum())
    # what the cache saves: the toy's prefill costs 1e-5 s per token
    assert on.summary["ttft_s"]["mean"] < off.summary["ttft_s"]["mean"]


def test_turns_are_conserved_across_replicas_and_schedulers():
    rng_turns = length("uniform", low=1, high=6)
    for sched in ("continuous", "prefill_first"):
        sc = toy_scenario(**{"workload.requests": 120, "workload.arrival.rate": 4.0,
                             "workload.sessions": sessions(rng_turns,
                                                           duration("exponential", mean=0.3)),
                             "serving.replicas": 3, "serving.scheduler": sched,
                             "serving.router": "session_affinity",
                             "workload.prompt_tokens": length("uniform", low=5, high=60),
                             "workload.output_tokens": length("uniform", low=1, high=40)})
        res = simulate(sc, step_model=ToyStepModel(capacity_bytes=1e7), seed=2)
        r, s = res.requests, res.summary
        assert s["requests_arrived"] == 120 == s["requests_completed"]
        for sid in np.unique(r["session_id"]):
            mine = np.flatnonzero(r["session_id"] == sid)
            t = r["turn"][mine]
            assert sorted(t.tolist()) == list(range(1, len(mine) + 1))
            order = mine[np.argsort(t)]
            # a turn never arrives before its previous answer is complete
            assert np.all(r["arrival_s"][order[1:]] >= r["finish_s"][order[:-1]])
            # sticky sessions: every turn on its first turn's replica
            assert len(set(r["replica"][mine].tolist())) == 1


def test_fast_path_equals_stepping_with_sessions_and_unforeseen_arrivals():
    # several replicas: a turn created by one replica's completion may land on another
    # replica in the middle of a planned decode run, which must stop where stepping would
    for sched in ("continuous", "chunked", "prefill_first", "static"):
        sc = toy_scenario(**{"workload.requests": 150, "workload.arrival.rate": 3.0,
                             "serving.replicas": 3, "serving.scheduler": sched,
                             "workload.sessions": sessions(length("uniform", low=1, high=6),
                                                           duration("exponential", mean=0.5)),
                             "workload.tenants": (
                                 _tenant(0.6, 120), _tenant(0.4, 40))})
        m = ToyStepModel(capacity_bytes=1e6)
        a, b = simulate(sc, step_model=m, seed=4), simulate(sc, step_model=m, seed=4,
                                                              fast=False)
        assert_same_run(a, b)
        assert a.summary["prefix_hit_rate"] > 0.1  # the cache did serve turns
        assert a.summary["events"] < b.summary["events"]


def _tenant(weight, system):
    from types import SimpleNamespace

    return SimpleNamespace(weight=weight, system_prompt_tokens=system)


def test_tenants_share_the_traffic_and_open_every_prompt():
    sc = toy_scenario(**{"workload.requests": 2000, "workload.arrival.rate": 50.0,
                         "workload.prompt_tokens": length(value=30),
                         "workload.output_tokens": length(value=2),
                         "workload.tenants": (_tenant(0.7, 64), _tenant(0.3, 200))})
    res = simulate(sc, step_model=ToyStepModel(capacity_bytes=1e7), seed=3)
    r = res.requests
    share = np.mean(r["tenant"] == 0)
    # 2000 draws at p = 0.7: standard deviation sqrt(0.7 x 0.3 / 2000) = 0.010
    assert abs(share - 0.7) < 0.04
    system = np.where(r["tenant"] == 0, 64, 200)
    assert np.array_equal(r["prompt_tokens"], system + 30)
    # every request of a tenant after its first can hit the tenant's full system blocks
    # (64 = 4 blocks, 200 -> 12 blocks = 192 tokens); none hits more (streams differ)
    assert set(r["cached_tokens"].tolist()) <= {0, 64, 192}
    assert np.mean(r["cached_tokens"] > 0) > 0.9


def test_a_session_trace_replays_its_turns(tmp_path):
    # session 7: turns of 50 and 50 + 10 + 15 = 75 tokens (extends the history); session 3:
    # a second turn shorter than its history (the client cut it): a new stream, no hit
    # beyond nothing; recorded times 0, 0.1, 0.2, 0.3
    f = tmp_path / "trace.csv"
    f.write_text("arrival_s,prompt_tokens,output_tokens,session_id\n"
                 "0.0,50,10,7\n0.1,40,5,3\n0.2,75,4,7\n0.3,30,4,3\n")
    sc = toy_scenario(**{"workload.requests": 4,
                         "workload.arrival.process": "trace", "workload.arrival.rate": None,
                         "workload.arrival.path": str(f),
                         "workload.prompt_tokens": length("trace"),
                         "workload.output_tokens": length("trace")})
    res = simulate(sc, step_model=ToyStepModel(capacity_bytes=1e7), seed=0)
    r = res.requests
    by = {(int(s), int(t)): i for i, (s, t) in enumerate(zip(r["session_id"], r["turn"]))}
    s7 = [by[(0, 1)], by[(0, 2)]]
    s3 = [by[(1, 1)], by[(1, 2)]]
    assert r["prompt_tokens"][s7].tolist() == [50, 75]
    # turn 1 of session 7 computed 50 + 10 - 1 = 59 tokens: 3 blocks of 16 = 48
    assert r["cached_tokens"][s7].tolist() == [0, 48]
    assert r["cached_tokens"][s3].tolist() == [0, 0]
    # a later turn arrives at its recorded time, but not before its previous answer
    for a, b in (s7, s3):
        rec = {s7[1]: 0.2, s3[1]: 0.3}[b]
        assert r["arrival_s"][b] == max(rec, r["finish_s"][a])


def test_a_session_trace_needs_its_recorded_lengths(tmp_path):
    f = tmp_path / "trace.csv"
    f.write_text("arrival_s,prompt_tokens,output_tokens,session_id\n0.0,50,10,7\n")
    sc = toy_scenario(**{"workload.requests": 1, "workload.arrival.process": "trace",
                         "workload.arrival.rate": None, "workload.arrival.path": str(f),
                         "workload.output_tokens": length("trace")})
    with pytest.raises(SimkitError, match="prompt_tokens.dist"):
        simulate(sc, step_model=ToyStepModel(), seed=0)


def test_a_conversation_ends_before_it_outgrows_the_context():
    # context 400: turns of 40 + 20 behind a 100-token system prompt: prompts 140, 200,
    # 260, 320, 380, and a sixth (440) would not fit: sessions end after five turns
    sc = _chat(n_sessions=4, turns=8)
    res = simulate(sc, step_model=ToyStepModel(capacity_bytes=1e7, max_context=400), seed=1)
    r = res.requests
    assert r["turn"].max() == 5
    assert r["prompt_tokens"].max() == 380
    assert res.summary["requests_arrived"] == 4 * 8  # more sessions fill the budget


def test_session_affinity_keeps_the_history_in_one_cache():
    def run(router):
        sc = _chat(n_sessions=30, turns=4, rate=2.0, **{"serving.replicas": 3,
                                                         "serving.router": router})
        return simulate(sc, step_model=ToyStepModel(capacity_bytes=1e7), seed=1).summary
    sticky, spread = run("session_affinity"), run("round_robin")
    assert sticky["prefix_hit_rate"] > spread["prefix_hit_rate"]


def test_a_turn_answered_mid_round_starts_its_think_time_at_its_last_token():
    """Streamed multi-step rounds (the default) complete an answer at its last token, before
    the round ends: the next turn arrives a think time after that token, or when the round
    ends if the think time is shorter (the replica takes nothing before then anyway)."""
    for think in (0.0, 2.0):
        res = simulate(_chat(think=think, **{"serving.scheduler_steps": 8}),
                       step_model=ToyStepModel(capacity_bytes=1e7), seed=1)
        r = res.requests
        assert res.summary["requests_completed"] == 12
        for s in range(3):
            mine = np.flatnonzero(r["session_id"] == s)
            mine = mine[np.argsort(r["turn"][mine])]
            gaps = r["arrival_s"][mine[1:]] - r["finish_s"][mine[:-1]]
            assert np.all(gaps >= think - 1e-12)
            if think:
                assert np.allclose(gaps, think, rtol=0, atol=1e-9)
