"""Benchmark: simulated requests per wall second of `simkit.sim.simulate`.

Continuous batching of Llama-3-8B on one H100 (realistic roofline), paged KV, a long-tailed
stream (lognormal prompts, median 800, and outputs, median 200 tokens, sigma 1), Poisson
arrivals at 8/s: about 80% of what the replica sustains under the `vllm-0.6` engine profile
(pinned, so every run of this benchmark simulates the same server: the default `vllm` moved
to vLLM 0.9-0.10's fit after these figures were first taken), which completes about 9.9
requests/s saturated -- a loaded server, not a queue that grows without bound (at 20/s the
run would measure a saturated batch of 256 and a TTFT p99 of hours). Prints, all measured in
this run:
- simulated requests per wall second (fast path), and for the one-iteration-at-a-time path
  on a smaller stream;
- peak resident memory of the process (ru_maxrss);
- the ratio to a bare heapq loop doing one push + pop per request (the floor any Python
  event simulator pays), and the time spent inside the cost model's step-time functions;
- the same workload on a mixed stack (Gemma-3-27B);
- the same workload under SGLang's admission (`serving.admission = "new_token_ratio"`,
  prompts alone, a per-token pool), against the same loop with greedy admission;
- chat sessions with prefix caching (`session_rate`): --session-turns turns (100,000 by
  default) of multi-turn sessions behind two tenants' system prompts, every turn re-sending
  its history, vLLM-style prefix caching on, as simulated turns per wall second and as a
  ratio to the uniform rate.
These are the simulator's core speed: prefix caching is off in the uniform and mixed-stack
runs (nothing there to share), on in the session run.

Run: python benchmarks/simulate.py [--requests 100000] [--rate 8] [--session-turns 100000]
"""

from __future__ import annotations

import argparse
import heapq
import resource
import time

#: the engine profile every workload here runs under (see the module docstring)
ENGINE = "vllm-0.6"


def bare_heapq_loop(n: int) -> float:
    """Seconds for n events through a heap with a trivial callback (the floor)."""
    import numpy as np

    times = np.cumsum(np.random.default_rng(0).exponential(0.05, n)).tolist()
    heap: list = []
    done = [0]

    def cb(i):
        done[0] += 1

    t0 = time.perf_counter()
    seq = 0
    for t in times:
        seq += 1
        heapq.heappush(heap, (t, 0, seq, cb, seq))
    while heap:
        _t, _p, _s, f, a = heapq.heappop(heap)
        f(a)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=100_000)
    ap.add_argument("--rate", type=float, default=8.0, help="arrivals per second")
    ap.add_argument("--slow-requests", type=int, default=10_000,
                    help="requests for the one-iteration-at-a-time comparison")
    ap.add_argument("--session-turns", type=int, default=100_000,
                    help="turns of the chat-session run with prefix caching")
    ap.add_argument("--session-rate", type=float, default=1.4,
                    help="new sessions per second in the chat-session run")
    args = ap.parse_args()

    from simkit.scenario import scenario_from_dict
    from simkit.sim import simulate
    from simkit.costs.compiled import step_model_for

    d = {"model": {"name": "llama-3-8b"}, "hardware": {"name": "h100-sxm", "engine": ENGINE},
         "workload": {"requests": args.requests,
                      "arrival": {"process": "poisson", "rate": args.rate},
                      "prompt_tokens": {"dist": "lognormal", "median": 800, "sigma": 1.0,
                                        "max": 7000},
                      "output_tokens": {"dist": "lognormal", "median": 200, "sigma": 1.0,
                                        "max": 1000}},
         "serving": {"scheduler": "continuous", "kv_memory": "paged", "max_batch": 256,
                     "prefix_caching": False}}
    sc = scenario_from_dict(d)
    m = step_model_for(sc)  # built (sympy -> numpy) once, outside the timings
    simulate(sc, step_model=m, requests=200)  # warm caches

    # count time inside the cost model's functions (wrapping adds a little overhead)
    spent = [0.0]
    calls = [0]

    def timed(f):
        def call(*a):
            t = time.perf_counter()
            r = f(*a)
            spent[0] += time.perf_counter() - t
            calls[0] += 1
            return r
        return call

    class Timed:
        """The step model with its step-time functions (array and integer-sum forms) timed."""

        def __getattr__(self, name):
            return getattr(m, name)

        step_time_s = staticmethod(timed(m.step_time_s))
        decode_steps_s = staticmethod(timed(m.decode_steps_s))
        step_sum_s = staticmethod(timed(m.step_sum_s))
        decode_steps_sum_s = staticmethod(timed(m.decode_steps_sum_s))

    t0 = time.perf_counter()
    res = simulate(sc, step_model=m)
    wall = time.perf_counter() - t0
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s = res.summary
    bare = bare_heapq_loop(args.requests)

    n_slow = min(args.slow_requests, args.requests)
    t0 = time.perf_counter()
    simulate(sc, step_model=m, requests=n_slow, fast=False)
    wall_slow = time.perf_counter() - t0
    t0 = time.perf_counter()
    simulate(sc, step_model=m, requests=n_slow, fast=True)
    wall_fast_small = time.perf_counter() - t0
    simulate(sc, step_model=Timed(), requests=n_slow)
    model_share = spent[0]

    n = args.requests
    print(f"workload: {n:,} requests, Poisson {args.rate}/s, lognormal prompt median 800 / "
          f"output median 200 (sigma 1), llama-3-8b on h100-sxm, continuous, paged")
    print(f"simulated {s['simulated_seconds']:.0f} s: {s['requests_completed']:,} completed, "
          f"{s['iterations']:,} iterations, {s['events']:,} events, mean batch "
          f"{s['batch_size_mean']:.1f}, TTFT p99 {s['ttft_s']['p99']:.3f} s, "
          f"TPOT p99 {s['tpot_s']['p99'] * 1e3:.1f} ms")
    print(f"fast path: {wall:.2f} s wall = {n / wall:,.0f} simulated requests/s")
    print(f"peak RSS: {rss_mib:,.0f} MiB (whole process, numpy + sympy included)")
    print(f"bare heapq loop, one event per request: {bare:.3f} s = {n / bare:,.0f} events/s;"
          f" simulator / bare = {wall / bare:.1f}x")
    print(f"{n_slow:,} requests: one iteration at a time {wall_slow:.2f} s, fast path "
          f"{wall_fast_small:.2f} s (speed-up {wall_slow / wall_fast_small:.2f}x); cost-model "
          f"calls {calls[0]:,} taking {model_share:.2f} s "
          f"({100 * model_share / wall_fast_small:.0f}% of the fast run)")
    if args.session_turns > 0:
        session_line(args, n / wall)
    stack_rate, stack_it = mixed_stack_rate(d, args.requests)
    full_rate, full_it = mixed_stack_rate(d, args.requests, attention="full")
    print(f"mixed stack (gemma-3-27b on h200: 52 window(1024) + 10 full layers, block-exact "
          f"per-group paging), same workload: {stack_rate:,.0f} simulated requests/s "
          f"({stack_it:,} iterations) = {stack_rate / full_rate:.2f} of the same model run "
          f"uniform (every layer full attention: {full_rate:,.0f}/s, {full_it:,} iterations) "
          f"and {stack_rate / (n / wall):.2f} of the llama-3-8b rate above")
    sg_rate, sg_pre = loop_rate(d, args.requests, "new_token_ratio")
    gr_rate, gr_pre = loop_rate(d, args.requests, "greedy")
    print(f"SGLang's loop (prefill_first, per-token pool), same workload: new_token_ratio "
          f"admission {sg_rate:,.0f} simulated requests/s ({sg_pre:,} preemptions) = "
          f"{sg_rate / gr_rate:.2f} of greedy admission in the same loop ({gr_rate:,.0f}/s, "
          f"{gr_pre:,} preemptions)")


def loop_rate(d: dict, n: int, admission: str) -> tuple[float, int]:
    """Simulated requests per wall second of `d` run as SGLang's loop (prompts alone,
    one-token blocks) under `admission`, and its preemptions."""
    from simkit.costs.compiled import step_model_for
    from simkit.scenario import scenario_from_dict
    from simkit.sim import simulate

    sc = scenario_from_dict({**d, "serving": {**d["serving"], "scheduler": "prefill_first",
                                              "block_size": 1, "admission": admission}})
    m = step_model_for(sc)
    simulate(sc, step_model=m, requests=200)
    t0 = time.perf_counter()
    s = simulate(sc, step_model=m, requests=n).summary
    return n / (time.perf_counter() - t0), int(s["preemptions"])


def session_line(args, uniform_rate: float) -> None:
    rate, cpu_rate, ss = session_rate(args.session_turns, args.session_rate)
    print(f"chat sessions with prefix caching: {ss['requests_completed']:,} turns of "
          f"{ss['sessions']:,} sessions (1-10 turns, 20 s think time, two tenants' 1500- and "
          f"400-token system prompts), {args.session_rate} new sessions/s: "
          f"{rate:,.0f} simulated turns/s ({cpu_rate:,.0f} per CPU second) = "
          f"{rate / uniform_rate:.2f} of the uniform rate; prefix hit rate "
          f"{ss['prefix_hit_rate']:.1%}, mean batch {ss['batch_size_mean']:.1f}, TTFT p99 "
          f"{ss['ttft_s']['p99']:.3f} s")


def session_rate(turns: int, rate: float) -> tuple[float, float, dict]:
    """Simulated turns per wall second and per CPU second (the figure a busy machine
    disturbs less) of a chat-session workload with prefix caching on Llama-3-8B / H100,
    and the run's summary."""
    from simkit.costs.compiled import step_model_for
    from simkit.scenario import scenario_from_dict
    from simkit.sim import simulate

    d = {"model": {"name": "llama-3-8b"}, "hardware": {"name": "h100-sxm", "engine": ENGINE},
         "workload": {"requests": turns, "arrival": {"process": "poisson", "rate": rate},
                      "prompt_tokens": {"dist": "lognormal", "median": 150, "sigma": 1.0,
                                        "max": 2000},
                      "output_tokens": {"dist": "lognormal", "median": 200, "sigma": 1.0,
                                        "max": 1000},
                      "sessions": {"turns": {"dist": "uniform", "low": 1, "high": 10},
                                   "think_time_s": {"dist": "exponential", "mean": 20.0}},
                      "tenants": [{"weight": 0.7, "system_prompt_tokens": 1500},
                                  {"weight": 0.3, "system_prompt_tokens": 400}]},
         "serving": {"scheduler": "continuous", "kv_memory": "paged", "max_batch": 256,
                     "prefix_caching": True}}
    sc = scenario_from_dict(d)
    m = step_model_for(sc)
    simulate(sc, step_model=m, requests=200)
    t0, c0 = time.perf_counter(), time.process_time()
    res = simulate(sc, step_model=m)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    done = res.summary["requests_completed"]
    return done / wall, done / cpu, res.summary


def mixed_stack_rate(d: dict, n: int, attention: str | None = None) -> tuple[float, int]:
    """(simulated requests per wall second, iterations) of the same workload on Gemma-3-27B:
    its own 5:1 window/full stack, or every layer of one `attention` kind (the uniform
    model with the very same shapes, hardware and requests)."""
    from simkit.costs.compiled import step_model_for
    from simkit.scenario import scenario_from_dict
    from simkit.sim import simulate

    model = {"name": "gemma-3-27b"} if attention is None else \
        {"name": "gemma-3-27b", "attention": attention}
    sc = scenario_from_dict(dict(d, model=model, hardware={"name": "h200", "engine": ENGINE}))
    m = step_model_for(sc)
    simulate(sc, step_model=m, requests=200)
    t0 = time.perf_counter()
    res = simulate(sc, step_model=m)
    return n / (time.perf_counter() - t0), int(res.summary["iterations"])


if __name__ == "__main__":
    main()
