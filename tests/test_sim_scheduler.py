"""Batching policies (simkit.sim.scheduler): prefill_first stalls decodes as vLLM v0 and
Vidur's ``vllm`` scheduler do, and ``max_batch_tokens`` is vLLM's per-iteration budget."""

from __future__ import annotations

import numpy as np
import pytest

from simkit.sim import simulate
from test_sim_toymodel import ToyStepModel, length, toy_scenario

scenario = pytest.importorskip("simkit.scenario")


def _real_dict(sched: str, rate: float = 4.0) -> dict:
    return {"model": {"name": "llama-3-8b"}, "hardware": {"name": "h100-sxm"},
         "workload": {"requests": 600, "arrival": {"process": "poisson", "rate": rate},
                      "prompt_tokens": {"dist": "lognormal", "median": 1500, "sigma": 0.5,
                                        "max": 6000},
                      "output_tokens": {"dist": "lognormal", "median": 200, "sigma": 0.5,
                                        "max": 1000}},
         "serving": {"scheduler": sched, "max_batch": 256, "chunk_tokens": 512}}


def _real(sched: str, rate: float = 4.0):
    return simulate(scenario.scenario_from_dict(_real_dict(sched, rate)), seed=1).summary


def test_prefill_first_stalls_decodes_as_vllm_v0_does():
    # Llama-3-8B on an H100 at 4 requests/s (1500-token prompts, 200-token answers): TTFT
    # stays far below a second, yet every prompt's prefill iteration (tens of ms) stops the
    # running decodes: time between tokens has a p99 several times its p50. Sarathi-Serve
    # (Agrawal et al. 2024, arXiv:2403.02310, Sec. 2 and Fig. 1) shows the same for vLLM's
    # prefill-prioritising scheduler, and that chunked prefills bound it.
    from simkit.costs.compiled import step_model_for

    pf, co, ch = _real("prefill_first"), _real("continuous"), _real("chunked")
    assert pf["ttft_s"]["p99"] < 0.5
    assert pf["tbt_s"]["p99"] > 4 * pf["tbt_s"]["p50"]
    # continuous batching runs a whole prompt beside the decodes: they still wait for it,
    # though they advance in that iteration instead of being stopped by it
    assert ch["tbt_s"]["p99"] < co["tbt_s"]["p99"] < pf["tbt_s"]["p99"]
    # chunked: a decode waits at most one iteration, which carries at most one 512-token
    # chunk beside the decodes: its p99 gap stays within a typical decode iteration plus the
    # longest chunk alone (the prompt's last 512 of at most 6000 tokens, timed by the cost
    # model), whatever the engine's per-iteration overheads
    m = step_model_for(scenario.scenario_from_dict(_real_dict("chunked")))
    chunk_s = float(m.step_time_s((), [6000 - 512], [512]))
    assert ch["tbt_s"]["p99"] < ch["tbt_s"]["p50"] + chunk_s
    assert pf["tbt_s"]["p99"] > 3 * ch["tbt_s"]["p99"]
    # the p50 is one decode iteration either way
    assert pf["tbt_s"]["p50"] == pytest.approx(ch["tbt_s"]["p50"], rel=0.1)


class RecordingModel(ToyStepModel):
    """The toy step model, recording every iteration it times: (decodes, prompt chunks)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.calls: list[tuple[int, list[int]]] = []

    def step_time_s(self, decode_ctx=(), prefill_start=(), prefill_len=()):
        self.calls.append((int(np.size(decode_ctx)), [int(x) for x in np.ravel(prefill_len)]))
        return super().step_time_s(decode_ctx, prefill_start, prefill_len)


def _iterations(sched, budget, **over):
    sc = toy_scenario(**{"workload.requests": 80, "workload.arrival.rate": 40.0,
                         "workload.prompt_tokens": length("uniform", low=20, high=150),
                         "workload.output_tokens": length("uniform", low=5, high=60),
                         "serving.max_batch": 32, "serving.scheduler": sched,
                         "serving.max_batch_tokens": budget, **over})
    m = RecordingModel(capacity_bytes=1e7)
    res = simulate(sc, step_model=m, seed=3, fast=False)  # every iteration through the model
    assert res.summary["requests_completed"] == 80
    return m.calls


@pytest.mark.parametrize("caching", [True, False])
def test_prefill_first_runs_prompts_alone_within_the_budget(caching):
    calls = _iterations("prefill_first", 200, **{"serving.prefix_caching": caching})
    prefill_iters = [(d, p) for d, p in calls if p]
    assert prefill_iters and any(d for d, _ in calls)
    for d, p in prefill_iters:
        assert d == 0  # the running decodes stall
        assert sum(p) <= 200 or len(p) == 1  # a prompt over the budget runs alone
    # several prompts share a prefill iteration when they fit
    assert any(len(p) > 1 for _, p in prefill_iters)


def test_continuous_budget_counts_decode_and_prompt_tokens():
    calls = _iterations("continuous", 150)
    for d, p in calls:
        # prompt + decode tokens within the budget, unless one prompt runs with no decodes
        assert d + sum(p) <= 150 or (d == 0 and len(p) == 1)
    assert any(d and p for d, p in calls)  # prompts do join running decodes


def test_chunked_budget_is_the_smaller_of_chunk_tokens_and_max_batch_tokens():
    calls = _iterations("chunked", 60, **{"serving.chunk_tokens": 128})
    assert all(d + sum(p) <= 60 for d, p in calls)
    assert max(d + sum(p) for d, p in calls) == 60


def test_max_batch_tokens_counts_decode_tokens():
    # one long-running decode (output 400) and a queue of 90-token prompts with a budget
    # of 100 tokens: continuous admits a prompt beside 1 decode (90 + 1 <= 100) but never
    # two (180 + 1); with a budget of 90, none fits beside the decode
    def run(budget):
        sc = toy_scenario(**{"workload.requests": 6, "workload.arrival.process": "fixed",
                             "workload.arrival.rate": 1000.0,
                             "workload.prompt_tokens": length(value=90),
                             "workload.output_tokens": length(value=40),
                             "serving.max_batch_tokens": budget,
                             "serving.prefix_caching": False})
        return simulate(sc, step_model=ToyStepModel(capacity_bytes=1e7), seed=0)
    r100 = run(100).requests
    starts = np.sort(r100["start_s"])
    # one admission per iteration at most (each later start is a distinct boundary)
    assert len(np.unique(starts)) == 6
    r90 = run(90).requests
    # the first prompt runs alone (the batch is empty); the next waits for it to finish
    order = np.argsort(r90["start_s"])
    assert r90["start_s"][order[1]] >= r90["finish_s"][order[0]]


@pytest.mark.parametrize("prompt, waits", [(800, True), (784, False)])
def test_prefill_first_keeps_vllm_v0_watermark_free(prompt, waits):
    """vLLM v0 admits a prompt only if 1% of the KV blocks stay free after it
    (`BlockSpaceManager(watermark=0.01)`). 1.6 MB of cache at 1,000 B per token = 1,600
    tokens = 100 blocks of 16, so the watermark is 1 block. Two prompts arrive together: the
    first takes an empty replica; a second of 800 tokens (50 blocks) would leave 0 of the 50
    free and waits for the first to finish, one of 784 (49 of the 51) leaves 2 and joins it.
    `continuous` (no watermark) admits two of 800 at once."""
    def run(sched, prompt):
        sc = toy_scenario(**{"workload.requests": 2, "workload.arrival.process": "burst",
                             "workload.prompt_tokens": length(value=prompt),
                             "workload.output_tokens": length(value=20),
                             "serving.scheduler": sched, "serving.prefix_caching": False})
        return simulate(sc, step_model=ToyStepModel(capacity_bytes=1.6e6), seed=0).requests

    r = run("prefill_first", prompt)
    first, second = np.argsort(r["start_s"])
    if waits:
        assert r["start_s"][second] >= r["finish_s"][first]
    else:
        assert r["start_s"][second] == r["start_s"][first] == 0.0
    r = run("continuous", 800)
    assert np.all(r["start_s"] == 0.0)


@pytest.mark.parametrize("sched", ["continuous", "chunked"])
@pytest.mark.parametrize("prompt, waits", [(736, True), (720, False)])
def test_watermark_keeps_its_share_of_the_blocks_free(sched, prompt, waits):
    """`serving.watermark` (vLLM's KV-manager watermark, vllm-project/vllm#44594): an
    admission beside running requests must leave int(watermark x blocks) free. 1.6 MB at
    1,000 B per token = 100 blocks of 16; watermark 0.1 keeps 10. Two prompts arrive
    together: the first takes the empty replica; a second of 736 tokens (46 blocks) would
    leave 54 - 46 = 8 < 10 and waits, one of 720 (45) leaves 55 - 45 = 10 and joins. Without
    a watermark both 736-token prompts (92 blocks) start at once."""
    def run(prompt, watermark):
        sc = toy_scenario(**{"workload.requests": 2, "workload.arrival.process": "burst",
                             "workload.prompt_tokens": length(value=prompt),
                             "workload.output_tokens": length(value=20),
                             "serving.scheduler": sched, "serving.chunk_tokens": 4096,
                             "serving.watermark": watermark,
                             "serving.prefix_caching": False})
        res = simulate(sc, step_model=ToyStepModel(capacity_bytes=1.6e6), seed=0)
        assert res.summary["watermark"] == watermark
        return res.requests

    r = run(prompt, 0.1)
    first, second = np.argsort(r["start_s"])
    if waits:
        assert r["start_s"][second] >= r["finish_s"][first]
    else:
        assert r["start_s"][second] == r["start_s"][first] == 0.0
    assert np.all(run(736, 0.0)["start_s"] == 0.0)


def test_watermark_defaults_are_each_engines():
    """vLLM v0's block manager keeps 1% (prefill_first), v1 none (the other loops), unless
    the scenario sets it; 0 turns v0's off."""
    from types import SimpleNamespace

    from simkit.sim.scheduler import watermark_of

    assert watermark_of(SimpleNamespace(scheduler="prefill_first")) == 0.01
    for sched in ("continuous", "chunked", "static"):
        assert watermark_of(SimpleNamespace(scheduler=sched)) == 0.0
    assert watermark_of(SimpleNamespace(scheduler="prefill_first", watermark=0.0)) == 0.0
    assert watermark_of(SimpleNamespace(scheduler="chunked", watermark=0.02)) == 0.02


def test_watermark_curbs_preemption_at_the_memory_limit():
    """Every request queued at once, greedy admission: without a watermark the batch fills
    the memory and the decodes' growth preempts freshly admitted requests over and over
    (vLLM v1's behaviour that #44594's watermark targets: "to avoid frequent preemptions");
    with 5% of the blocks kept back at admission the growth finds room, so fewer are
    preempted and less work is recomputed, and every request still completes."""
    def run(watermark):
        sc = toy_scenario(**{"workload.requests": 300, "workload.arrival.process": "burst",
                             "workload.prompt_tokens": length("uniform", low=50, high=150),
                             "workload.output_tokens": length("uniform", low=50, high=400),
                             "serving.scheduler": "chunked", "serving.chunk_tokens": 2048,
                             "serving.max_batch": 256, "serving.watermark": watermark,
                             "serving.prefix_caching": False})
        s = simulate(sc, step_model=ToyStepModel(capacity_bytes=1e7), seed=0).summary
        assert s["requests_completed"] == 300
        return s

    bare, kept = run(0.0), run(0.05)
    assert bare["preemptions"] > 0
    assert kept["preemptions"] < bare["preemptions"] / 2
    assert kept["recompute_fraction"] < bare["recompute_fraction"]


# ---- admission = "no_evict" (TensorRT-LLM's GUARANTEED_NO_EVICT) ----

def _pair(admission: str, output: int):
    """Two 400-token prompts at t = 0 into 1.6 MB of cache at 1,000 B per token: 100 blocks
    of 16."""
    sc = toy_scenario(**{"workload.requests": 2, "workload.arrival.process": "burst",
                         "workload.prompt_tokens": length(value=400),
                         "workload.output_tokens": length(value=output),
                         "serving.admission": admission, "serving.prefix_caching": False})
    return simulate(sc, step_model=ToyStepModel(capacity_bytes=1.6e6), seed=0)


@pytest.mark.parametrize("output, waits", [(401, False), (402, True)])
def test_no_evict_admits_only_what_can_run_to_the_end(output, waits):
    """A sequence caches prompt + output - 1 tokens by its last step: 800 tokens = 50 blocks
    with 401 output tokens, 801 = 51 blocks with 402. The first prompt takes the empty
    replica (25 blocks; 75 free). The second needs its own 25 blocks plus the 25 or 26 it
    will grow by, beside the first's 25 or 26 still to come: 75 - 25 - 25 = 25 >= 25 fits
    (both end at exactly 100 blocks), 75 - 26 - 26 = 23 < 25 waits for the first to finish.
    Greedy admission takes both at once either way, and at 402 runs out of blocks near the
    end (51 + 51 > 100): it preempts, where no_evict never does."""
    r = _pair("no_evict", output)
    first, second = np.argsort(r.requests["start_s"], kind="stable")
    assert r.summary["preemptions"] == 0
    if waits:
        assert r.requests["start_s"][second] >= r.requests["finish_s"][first]
    else:
        assert r.requests["start_s"][second] == r.requests["start_s"][first] == 0.0
    g = _pair("greedy", output)
    assert np.all(g.requests["start_s"] == 0.0)
    assert (g.summary["preemptions"] > 0) == waits


def test_recomputed_tokens_are_the_victims_prompt_and_answer_so_far():
    """Greedy, 402-token answers (above): both sequences hold 50 blocks at 800 cached tokens
    (400 + 400 decoded), 401 tokens generated each; the next token needs a 51st block each,
    102 > 100, so the later one is preempted and later prefills its prompt and the 401
    tokens it had: 801 tokens recomputed, its last token coming from that prefill. Tokens
    processed: 400 + 400 + 801 prefilled, 2 x 402 generated -- vLLM's "recompute tax" is
    801 / 2,405."""
    s = _pair("greedy", 402).summary
    assert s["preemptions"] == 1
    assert s["recomputed_tokens"] == 400 + 401
    assert s["recompute_fraction"] == pytest.approx(801 / (400 + 400 + 801 + 2 * 402))
    calm = _pair("no_evict", 402).summary
    assert calm["recomputed_tokens"] == 0 and calm["recompute_fraction"] == 0.0


def test_no_evict_never_preempts_and_is_the_same_planned_or_stepped():
    """A load that preempts under greedy admission: no_evict holds fewer sequences, never
    preempts, serves every request, and the fast path plans the same run as stepping."""
    from conftest import assert_same_run

    d = _real_dict("continuous", rate=50.0)
    d["workload"]["requests"] = 300
    # (H100: 0.21 x 81,559 MiB less Llama-3-8B's 16.06 GB and vLLM's 0.84 GB activation
    # reserve for 8,192 tokens leaves ~1.1 GB of KV memory)
    d["serving"]["memory_fraction"] = 0.21
    greedy = simulate(scenario.scenario_from_dict(d), seed=4).summary
    assert greedy["preemptions"] > 0
    assert greedy["admission"] == "greedy"
    d["serving"]["admission"] = "no_evict"
    sc = scenario.scenario_from_dict(d)
    fast = simulate(sc, seed=4)
    assert fast.summary["preemptions"] == 0
    assert fast.summary["admission"] == "no_evict"
    assert fast.summary["requests_completed"] == 300
    assert fast.summary["batch_size_mean"] < greedy["batch_size_mean"]
    assert_same_run(fast, simulate(sc, seed=4, fast=False))


# ---- multi-step scheduling (serving.scheduler_steps: vLLM 0.6's --num-scheduler-steps) ----

def _multi_step(steps: int, requests: int = 1, gap_s: float = 1.0, prompt: int = 100,
                output: int = 7, **serving):
    """Llama-3-8B on an H100: fixed-length requests every `gap_s`, the first at t = 0."""
    d = {"model": {"name": "llama-3-8b"}, "hardware": {"name": "h100-sxm"},
         "workload": {"requests": requests, "arrival": {"process": "fixed",
                                                        "rate": 1.0 / gap_s},
                      "prompt_tokens": {"dist": "fixed", "value": prompt},
                      "output_tokens": {"dist": "fixed", "value": output}},
         "serving": {"scheduler": "continuous", "prefix_caching": False,
                     "scheduler_steps": steps, **serving}}
    return scenario.scenario_from_dict(d)


def test_a_round_runs_whole_and_only_its_first_step_pays_the_per_sequence_host_work():
    """Not streamed (vLLM 0.6.0-0.6.2): one request, 100-token prompt, 7-token answer,
    rounds of 4: the prefill emits token 1; round 1 (contexts 101-104) tokens 2-5; round 2
    (105-108) tokens 6-7 and two thrown away. Each round's first step is the formula's step,
    the others that minus the engine's per-sequence host costs; every token of a round
    reaches the client at its end."""
    from simkit.costs.compiled import step_model_for

    sc = _multi_step(4, multi_step_stream_outputs=False)
    m = step_model_for(sc)
    host = m.sequence_host_time_s(1)
    t = m.step_time_s((), [0], [100])
    ttft = t
    for j in range(8):
        step = m.step_time_s([101 + j])
        t += step if j % 4 == 0 else step - host
    s = simulate(sc).summary
    assert s["ttft_s"]["p50"] == ttft
    assert s["e2e_s"]["p50"] == t
    assert s["iterations"] == 9
    # six decode tokens in two bursts: gaps (round 1), 0, 0, 0, (round 2), 0
    assert s["tbt_s"]["p50"] == 0.0
    assert s["tbt_s"]["mean"] == (t - ttft) / 6
    # a streaming client sees two chunks after the first token
    assert s["itl_s"]["mean"] == pytest.approx((t - ttft) / 2, rel=1e-12)
    assert s["itl_s"]["p50"] > 3 * host


def test_a_streamed_round_delivers_each_step():
    """Streamed (vLLM's default since v0.6.3, PR #9047): the same request's tokens 2-7 reach
    the client at the ends of decode steps 1-6 (the rounds' steps timed as above), so the
    answer is complete after six steps; the round still runs its last two steps for nothing
    and the sequence leaves the batch after them."""
    from simkit.costs.compiled import step_model_for

    sc = _multi_step(4)
    assert sc.serving.multi_step_stream_outputs is True
    m = step_model_for(sc)
    host = m.sequence_host_time_s(1)
    ttft = m.step_time_s((), [0], [100])
    steps = [m.step_time_s([101 + j]) - (host if j % 4 else 0.0) for j in range(8)]
    res = simulate(sc)
    s = res.summary
    assert s["ttft_s"]["p50"] == ttft
    t = ttft
    for x in steps[:6]:
        t += x
    assert s["e2e_s"]["p50"] == t  # the seventh token's step, not the round's end
    assert s["iterations"] == 9
    assert s["tbt_s"]["mean"] == pytest.approx((t - ttft) / 6, rel=1e-12)
    assert s["tbt_s"]["p50"] > 0.0  # no bursts
    assert s["itl_s"]["mean"] == pytest.approx((t - ttft) / 6, rel=1e-12)
    # a second request arriving during the first round is admitted at that round's end
    two = simulate(_multi_step(4, requests=2, gap_s=ttft + steps[0] / 2, output=40))
    assert two.requests["start_s"][1] == pytest.approx(ttft + sum(steps[:4]), rel=1e-12)


def test_an_arrival_waits_for_the_running_round_to_end():
    """B arrives 5 ms into A's first 8-step round (steps of ~7 ms); it is admitted only when
    the round ends, where A's first token time plus the round's steps put it."""
    from simkit.costs.compiled import step_model_for

    m = step_model_for(_multi_step(8))
    a_first = m.step_time_s((), [0], [100])
    round_end = a_first
    for j in range(8):
        step = m.step_time_s([101 + j])
        round_end += step if j == 0 else step - m.sequence_host_time_s(1)
    sc = _multi_step(8, requests=2, gap_s=a_first + 0.005, output=40,
                     multi_step_stream_outputs=False)
    res = simulate(sc)
    start = res.requests["start_s"]
    assert start[1] == round_end
    assert res.summary["requests_completed"] == 2


@pytest.mark.parametrize("sched", ["continuous", "chunked", "prefill_first"])
def test_rounds_are_the_same_planned_or_stepped(sched):
    """A round is planned whole on both paths; what stepping checks is everything around
    it: admissions, prefill iterations, memory growth and preemption between rounds."""
    from conftest import assert_same_run

    d = _real_dict(sched, rate=3.0)
    d["workload"]["requests"] = 150
    d["serving"]["scheduler_steps"] = 8
    sc = scenario.scenario_from_dict(d)
    assert_same_run(simulate(sc, seed=2), simulate(sc, seed=2, fast=False))


def test_multi_step_trades_first_token_time_for_decode_speed():
    """The point of multi-step (vLLM RFC #6854): the per-sequence host work is done once a
    round, so a loaded replica decodes faster; the price is first tokens that wait for the
    round in flight. At 4 requests/s, 10-step rounds raise TTFT p50 and cut TPOT p50, under
    the engine that had it (vLLM 0.6: `vllm-0.6`; V1 dropped multi-step)."""
    base = _real_dict("continuous")
    one, ten = (simulate(scenario.scenario_from_dict(
        {**base, "hardware": {**base["hardware"], "engine": "vllm-0.6"},
         "serving": {"scheduler": "continuous", "max_batch": 256, "scheduler_steps": k}}),
        seed=1).summary for k in (1, 10))
    assert ten["ttft_s"]["p50"] > one["ttft_s"]["p50"] + 0.02
    assert ten["tpot_s"]["p50"] < one["tpot_s"]["p50"]
    assert ten["requests_completed"] == one["requests_completed"] == 600


def test_simulate_prints_the_recomputed_tokens_beside_the_preemptions(run_cli):
    """A cache too small for the chatbot's load preempts; the text summary states the
    preemptions, the tokens recomputed and their share, as --json has them."""
    from conftest import ROOT

    args = ("simulate", ROOT / "scenarios" / "chatbot-llama3-8b-h100.toml", "--requests", "200",
            "--set", "serving.memory_fraction=0.23")
    d = run_cli(*args, "--json").json()
    assert d["preemptions"] > 0 and d["recomputed_tokens"] > 0
    text = run_cli(*args).out
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("preemptions"))
    assert line.split() == ["preemptions", str(d["preemptions"]),
                            f"({d['recomputed_tokens']:,}", "tokens", "recomputed,",
                            f"{100 * d['recompute_fraction']:.1f}%", "of", "the", "tokens",
                            "processed)"]


# ---- admission = "new_token_ratio" (SGLang's scheduler) ----

def _sglang(requests: int, prompt: int, output: int, admission: str = "new_token_ratio",
            **over):
    """Prompts alone then decodes (SGLang's loop), 1,000 one-token blocks (SGLang's token
    pool), no prefix cache."""
    sc = toy_scenario(**{"workload.requests": requests, "workload.arrival.process": "burst",
                         "workload.prompt_tokens": length(value=prompt),
                         "workload.output_tokens": length(value=output),
                         "serving.scheduler": "prefill_first", "serving.block_size": 1,
                         "serving.max_batch": 64, "serving.admission": admission,
                         "serving.prefix_caching": False, **over})
    return simulate(sc, step_model=ToyStepModel(capacity_bytes=1e6), seed=0)


def test_new_token_ratio_reserves_each_admitted_answers_whole_limit():
    """SGLang's PrefillAdder: a request joins while prompt + min(limit, 4096) < the free
    tokens less what the pass already reserved. With k admitted (100-token prompts, limit =
    the 100-token answer): 200 < 1000 - 200 k holds for k = 0..3, so four run at once, and
    the pass that stopped for memory marks the batch full until they finish (together).
    Greedy takes all eight prompts (800 tokens) and preempts as the answers grow."""
    r = _sglang(8, 100, 100)
    start, finish = r.requests["start_s"], r.requests["finish_s"]
    assert r.summary["batch_size_max"] == 4 and r.summary["preemptions"] == 0
    assert np.count_nonzero(start == 0.0) == 4
    assert np.min(start[start > 0]) == pytest.approx(np.max(finish[start == 0.0]))
    g = _sglang(8, 100, 100, "greedy")
    assert g.summary["batch_size_max"] == 8 and g.summary["preemptions"] > 0


@pytest.mark.parametrize("conservativeness, joins", [(1.0, True), (1.5, False)])
def test_new_token_ratio_reserves_a_share_of_the_running_answers_rest(conservativeness,
                                                                      joins):
    """A (150-token prompt, 400-token answer) runs; B (the same) arrives 0.1 s later, after
    j < 10 decode iterations of ~11 ms, A having generated g = j + 1 tokens. B joins if
    150 + 400 < 1000 - (150 + g) - ratio x (400 - g): at ratio 0.7 - j x 0.602 / 600 that
    leaves 168-169 tokens where B's prompt needs 150. --schedule-conservativeness 1.5 starts
    the ratio at min(1.05, 1) = 1, falling by 0.86 / 600 per iteration: A's reservation (~386
    tokens) leaves ~54, so B waits, and the pass that turned it away marks the batch full:
    B starts only when A has finished. Where B joins, the two answers end at 2 x 550 > 1000
    tokens: memory runs short and SGLang retracts the answer with fewer tokens generated,
    B's."""
    sc = toy_scenario(**{"workload.requests": 2,
                         "workload.arrival.process": "fixed", "workload.arrival.rate": 10.0,
                         "workload.prompt_tokens": length(value=150),
                         "workload.output_tokens": length(value=400),
                         "serving.scheduler": "prefill_first", "serving.block_size": 1,
                         "serving.admission": "new_token_ratio",
                         "serving.schedule_conservativeness": conservativeness,
                         "serving.prefix_caching": False})
    r = simulate(sc, step_model=ToyStepModel(capacity_bytes=1e6), seed=0)
    (ta, tb), (fa, _) = r.requests["arrival_s"], r.requests["finish_s"]
    sa, sb = r.requests["start_s"]
    assert tb - ta == pytest.approx(0.1) and sa == ta
    if joins:
        assert sb == pytest.approx(tb, abs=0.02)  # at the first boundary after its arrival
        assert list(r.requests["preemptions"]) == [0, 1]
    else:
        assert sb == pytest.approx(fa)
        assert r.summary["preemptions"] == 0
