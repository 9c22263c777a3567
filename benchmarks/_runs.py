"""The scenario a dataset-driven serving run is simulated as (`benchmarks/fidelity.py`), and
the iterations an Offline run's engine runs (`offline_schedule`, which the engine fits in
`benchmarks/fit_engines.py` read through `_published.mlperf_runs` -- for every engine but
vLLM V1, whose Offline schedules, preempting at the memory limit as the engine does, the step
formula prices above the measured runs' wall time: `_published.mlperf_runs`).

An Offline run has every request queued at t = 0, so what its scheduler does in each iteration
(which sequences decode, which prompts or chunks prefill, whom memory preempts) depends on
token counts and memory only, never on how long an iteration takes: the same run under any
engine profile that sizes its cache the same way (`EngineProfile.reserves_activations`) runs
the same iterations, and its wall time is the sum of their step times.
A fit can therefore take the iterations from one simulation and weigh them with whatever
constants it tries -- the step-time formula applied to what the engine actually ran,
preemptions and recomputed prompts included, rather than to one assumed mean iteration.
"""

from __future__ import annotations

import functools
import re

import numpy as np

import _workloads
from _published import (MLPERF_LENGTHS, MLPERF_MAX_NEW_TOKENS, caches_prefixes,
                        engine_settings, is_vllm_v1,
                        reserving_roofline, runs_prompts_alone, setup_of, version_of)


def serving_scenario(row, engine, *, requests, rate, slo=None):
    """One data-parallel instance of a dataset-driven run: `requests` of the run's lengths
    (`_workloads`) arriving as a Poisson stream at `rate` per second (1e9: all at once, an
    Offline run), on engine profile `engine`, in the loop and with the settings the run's
    engine had (`engine_settings`); `slo`: a capacity plan's limits."""
    from simkit import api

    setup = setup_of(row)
    mb, mbt, mf = engine_settings(row)
    # V1 prefills every prompt in chunks within the token budget; vLLM V0 without chunked
    # prefill (off below 32K tokens of max_model_len: vllm/engine/arg_utils.py of 0.4-0.7,
    # "enable chunked prefill by default for long context (> 32K) models") and SGLang run
    # prompts alone (`runs_prompts_alone`; prefill_first, V0 with its watermark); TensorRT-LLM
    # mixes prompts and decodes in one iteration (in-flight batching)
    scheduler = "chunked" if is_vllm_v1(row) else \
        "prefill_first" if runs_prompts_alone(row) else "continuous"
    if row["dataset"] in MLPERF_LENGTHS:
        lengths = _workloads.mlperf(row["dataset"], float(row["mean_output_tokens"]),
                                    row["model"])
    else:
        lengths = _workloads.sharegpt(float(row["mean_input_tokens"] or
                                            _workloads.SGLANG_SHAREGPT_MEAN_PROMPT),
                                      float(row["mean_output_tokens"] or
                                            _workloads.SGLANG_SHAREGPT_MEAN_OUTPUT))
    d = {"name": "fidelity", "seed": 0,
         "model": {"name": setup.model, "kv_dtype": setup.kv_dtype,
                   "weight_dtype": setup.weight_dtype},
         "hardware": {"name": setup.hardware, "gpus_per_replica": setup.tensor_parallel,
                      "engine": engine},
         "workload": {"requests": requests, "arrival": {"process": "poisson", "rate": rate},
                      **lengths},
         "serving": {"scheduler": scheduler,
                     "max_batch": mb, "memory_fraction": mf, "max_batch_tokens": mbt}}
    steps = re.search(r"--num-scheduler-steps (\d+)", row["engine_version"])
    if steps:  # vLLM 0.6 multi-step scheduling (prompts alone, as every V0 run above)
        d["serving"]["scheduler_steps"] = int(steps.group(1))
        # vLLM streams each step's tokens since v0.6.3 (`--multi-step-stream-outputs`, on by
        # default: PR #9047; no run here turns it off); 0.6.0-0.6.2 sent a round's at its end
        d["serving"]["multi_step_stream_outputs"] = version_of(row) >= (0, 6, 3)
    if slo:
        d["slo"] = dict(slo)
        d["plan"] = {"requests": requests, "qps_rel_tol": 0.02}
    # prefix caching (simkit's default: on) finds the workload's shared openings
    # (`_workloads.openorca_system_prompts`) as vLLM V1 (its default since 0.8) and SGLang's
    # radix cache do; vLLM V0 had it off (EngineArgs.enable_prefix_caching = False, 0.4-0.7)
    if not caches_prefixes(row):
        d["serving"]["prefix_caching"] = False
    if scheduler == "chunked":  # V1: the token budget is also the prefill chunk
        d["serving"]["chunk_tokens"] = d["serving"]["max_batch_tokens"]
    if row["engine"] == "sglang":
        # (prompts alone within chunked_prefill_size:) SGLang's admission, its token pool
        d["serving"].update(admission="new_token_ratio", block_size=1)
        if row["dataset"] in MLPERF_LENGTHS:
            d["workload"]["max_new_tokens"] = MLPERF_MAX_NEW_TOKENS
    return api.from_dict(d)


class _Recorder:
    """A step model that notes what each iteration holds (decodes, their summed context,
    prefill chunks, their tokens and their summed start) and times it with the model it
    wraps."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.log: list[tuple[int, float, int, float, float]] = []

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def step_time_s(self, decode_ctx=(), prefill_start=(), prefill_len=()) -> float:
        d = np.asarray(decode_ctx).reshape(-1)
        ps = np.asarray(prefill_start).reshape(-1)
        pl = np.asarray(prefill_len).reshape(-1)
        self.log.append((d.size, float(d.sum()), ps.size, float(pl.sum()), float(ps.sum())))
        return self._inner.step_time_s(d, ps, pl)


#: iterations of one kind (decode only, prefill only, both) are grouped in this many
#: quantiles of their token count, each counted at its mean composition: on Krai's v5.1
#: H200 Offline run (13,236 iterations) the grouped sum is within 0.11% of the exact one
GROUPS = 16


@functools.lru_cache(maxsize=None)
def _schedule(key: tuple, requests: int) -> tuple[int, tuple]:
    row = dict(key)
    from simkit.calibrate.measurements import Step
    from simkit.costs.compiled import step_model_for
    from simkit.sim.simulator import build

    s = serving_scenario(row, "roofline", requests=requests, rate=1e9)
    rec = _Recorder(step_model_for(s, engine=reserving_roofline()))
    run = build(s, step_model=rec, fast=False)  # one iteration per step_time_s call
    run.engine.run()
    a = np.array(rec.log, dtype=float).reshape(-1, 5)
    steps = []
    for kind in ((a[:, 0] > 0) & (a[:, 2] == 0), (a[:, 0] == 0) & (a[:, 2] > 0),
                 (a[:, 0] > 0) & (a[:, 2] > 0)):
        b = a[kind]
        if not len(b):
            continue
        order = np.argsort(b[:, 0] + b[:, 3], kind="stable")
        for idx in np.array_split(order, min(GROUPS, len(b))):
            g = b[idx]
            n = len(g)
            chunks = g[:, 2].mean()
            pb = max(int(round(chunks)), 1) if chunks else 0
            steps.append((float(n), Step(
                decode_batch=int(round(g[:, 0].mean())),
                decode_context=int(round(g[:, 1].sum() / max(g[:, 0].sum(), 1))),
                prefill_batch=pb,
                # (the group's prefill tokens per iteration kept, over pb chunks)
                prompt_tokens=int(round(g[:, 3].sum() / n / pb)) if pb else 0,
                cached_tokens=int(round(g[:, 4].sum() / max(g[:, 2].sum(), 1))) if pb else 0)))
    return len(a), tuple(steps)


def offline_schedule(row: dict, requests: int) -> tuple[int, tuple]:
    """(iterations, ((count, Step), ...)) of an Offline run of `requests` as its engine runs
    them (the module docstring): one simulation, cached per run."""
    return _schedule(tuple(sorted(row.items())), int(requests))
