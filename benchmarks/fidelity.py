"""How close simkit's times are to measured serving engines, for every shipped dataset.

    PYTHONPATH=. python benchmarks/fidelity.py [--quick] [--markdown]

Prints, per dataset, measured engine, GPU and simkit engine profile, the median |error|,
the signed median and the worst error (error = simkit / measured - 1: positive means simkit
is slower; for throughputs, positive means simkit's throughput is higher), and how each
dataset was compared:

- `splitwise.csv` (step times): every row through THE step-time formula
  (`simkit.calibrate.measurements.Design.predict`, the same functions `StepCostModel` calls).
  The engine is not named by the source, so every profile is shown; `splitwise-2023` is
  fitted on this very data (its held-out errors: `simkit engines splitwise-2023`).
- `throughput_llm_inference_bench.csv` (static batches: wall time of B requests of L input
  and L output tokens started together, and the mean TTFT of 16 prompts of 1024): through
  the simulator (`simkit.sim.simulate`): B requests arriving at t = 0, continuous batching,
  at most 8192 prompt tokens per step, KV cache in 90% of memory (vLLM's default
  gpu_memory_utilization) -- so batches whose cache does not fit run in waves, as the engine
  did. The wall time is the simulated makespan.
- `throughput_tensorrt_llm_perf_overview.csv` (and the held-out
  `throughput_tensorrt_llm_1.0_perf_overview.csv`, the same page for TensorRT-LLM 1.0's
  PyTorch backend, FP8 and NVFP4 with an FP8 KV cache): offline throughput (all requests queued at
  once, output tokens/s) through the simulator with four batches' worth of requests (the
  largest batch the KV cache and the 2048 batch limit allow; at least 1,000, at most 30,000:
  the source ran 1,000-30,000), KV cache in 95% of memory
  (trtllm-bench's kv_cache_free_gpu_mem_fraction), at most 8192 tokens per step
  (TensorRT-LLM's default max_num_tokens), batch at most 2048, admission `no_evict`
  (trtllm-bench's `--scheduler_policy` default, GUARANTEED_NO_EVICT: a request joins only
  with room for its whole answer, and nothing is preempted; NVIDIA's MLPerf harness, below,
  sets MAX_UTILIZATION, simkit's `greedy`); online rows (Triton's backend, whose policy the
  page does not state: `greedy`; Poisson arrivals
  at the stated QPS, 500 requests as the source) through the simulator, comparing mean TTFT,
  mean ITL (simkit's mean TPOT), request and token throughputs.
- dataset-driven serving runs -- `throughput_mlperf_inference_v4.1.csv` (TensorRT-LLM, vLLM
  0.4.3 for ROCm), `throughput_mlperf_inference_v5.0_krai.csv` (vLLM 0.6.4 and 0.7.3 on H200),
  `throughput_mlperf_inference_v5.1_redhat.csv` (vLLM 0.10.0, the V1 engine, Llama-3.1-8B on
  one H100 and one L40S), `throughput_mlperf_inference_v5.1_krai.csv` (vLLM 0.9.2 and SGLang
  0.4.9, Llama-3.1-70B on H200 and H100), `throughput_mlperf_inference_v5.1_rocm.csv` (vLLM
  0.6.5-0.9 for ROCm on MI300X and MI325X: Llama-2-70B, Llama-3.1-70B, Mixtral-8x7B),
  `throughput_mlperf_inference_v5.0_nvidia_b200.csv` (TensorRT-LLM, Llama-2-70B in NVFP4 on
  one and eight B200s), `throughput_sglang_vllm_0.6.0.csv` (vLLM 0.6.0 and SGLang 0.3.0 on
  ShareGPT): through the simulator with the run's request lengths (`_workloads`: MLPerf's
  OpenOrca, CNN/DailyMail and Mixtral prompts, ShareGPT as a clipped log-normal at the
  source's means) and the engine settings the source states (`max_batch`,
  `max_batch_tokens`, `memory_fraction` columns; where empty, the engine's defaults,
  `_published.engine_settings`; vLLM's V1 engine with every prompt chunked within the token
  budget, `chunked`; SGLang as its scheduler runs: prompts in iterations of their own within
  the chunked-prefill budget, `prefill_first`, its admission, `new_token_ratio`, and its
  per-token KV pool, `block_size` 1, each request's token limit the MLPerf reference's 1,024
  (`_published.MLPERF_MAX_NEW_TOKENS`) or, on ShareGPT, its own output length, as
  sglang.bench_serving sends it). One data-parallel instance (`tensor_parallel` GPUs) is
  simulated and its rates multiplied by the instances (`num_gpus / tensor_parallel`, each
  fed 1/instances of the traffic, as MLPerf's harnesses and Krai's load balancer spread
  it). Offline runs: every
  request at t = 0 (MLPerf: one whole sample set per instance -- an Offline query holds its
  expected rate x 1.1 x its minimum duration of samples, 124,080 on one B200 in NVIDIA's
  v5.0 logs (47/s x 2,640 s), so each instance runs the set several times and its
  throughput is the steady batch's, not a drain's; ShareGPT: the stated prompt count),
  throughputs compared. Server/online runs: Poisson arrivals at the scheduled rate (MLPerf:
  600 s of traffic, its minimum duration; ShareGPT: the stated prompt count), latency means
  and percentiles and completed rates compared. MLPerf Server rows are also
  planned: `simkit.plan.capacity.max_qps` under the run's own SLOs (TTFT p99 <= 2 s, TPOT p99
  <= 200 ms for Llama-2-70B and Mixtral, 100 ms for Llama-3.1-8B; Interactive runs 450 ms
  and 40 ms: the logs' `ttft_latency`/`tpot_latency`)
  against the rate the submitter scheduled (metric `plan max_qps`; the scheduled rate met the
  SLOs, so it is at most the true maximum).
  A Server run sits close to its system's capacity (MLPerf: 92-97% of the Offline rate), where
  latency grows without bound as the load nears capacity: a few percent of throughput error
  becomes a several-fold latency error. So its latencies are compared twice: at the
  scheduled rate (`server ...`) and at the same load (`server@load ...`: the rate scaled by
  simkit's Offline throughput of that system over the measured one, so simkit runs as close
  to its own capacity as the system ran to its). Both views measure a latency where it is
  least defined, so each Server run with a mean TPOT also gets the load at which simkit's
  mean TPOT equals the measured one, as a multiple of the measured load (`server
  tpot-matched load`, `tpot_matched_load`: bisected over 0.5-1.5x, its ends when simkit
  never gets as slow there or is always slower): an error of a few percent there means the
  latency error is the capacity error magnified; one at the range's end means simkit's
  steps themselves are off at the engine's batch.
  vLLM's V0 engine runs are simulated with `prefill_first` (vLLM V0's default scheduler:
  without chunked prefill, which V0 turns on by itself only past 32K tokens of
  max_model_len, prompts run alone; none of these runs turns it on); one whose engine
  version names `--num-scheduler-steps N` (vLLM 0.6-0.9 multi-step) also with
  `serving.scheduler_steps = N`. ITL
  medians (`itl_p50_s`: the gaps between streamed chunks, which multi-step makes N tokens
  long) are compared with simkit's `itl_s`, which counts a burst as one chunk. The ShareGPT
  medians of end-to-end latency are not compared: they are set by the median output length,
  which the sources do not state (the log-normal's median is an assumption).
- `throughput_vllm_mi300x_oracle.csv`: static batches and offline throughput of Llama 3.1
  405B through the simulator, when the model catalog has llama-3.1-405b.
- `preemptions_vllm_pr44594.csv`: vLLM V1's preemptions under KV-cache pressure, with and
  without its watermark (vllm-project/vllm#44594: Qwen2.5-7B-Instruct, 16 GiB of KV cache,
  450 requests of 800-1,200 prompt and 4,000-6,000 output tokens, at most 128 in flight),
  through the simulator with V1's loop (`pr44594_scenario`: chunked prefill, 256 sequences,
  8,192 tokens per step, `serving.kv_cache_bytes` 16 GiB, `serving.watermark`). Compared:
  the preemption count, which with a closed-loop client depends on token counts and memory
  only, not on the GPU or the step times; each watermark's throughput over the run without
  one; and the output tokens/s and latencies (TTFT p50/p99, ITL p99, end-to-end p50; the
  run was on a GB200, which the catalog lacks: simulated on a B200, whose fp8 peak and HBM
  bandwidth are the GB200's -- 4.5 PFLOPS dense and 7.7 TB/s, at 1 kW against 1.2 kW:
  Verda's per-GPU table, verda.com/blog/gb300-nvl72-architecture). The engine, vLLM's main
  of 2026-06, runs async scheduling by default: measured engine "vllm async", its own
  profile `vllm-async`.

- `steps_h200_pytorch.csv` (step times this project measured on one H200 with PyTorch,
  `benchmarks/gpu/measure.py`: Llama-3.1-8B and Qwen2.5-7B, bf16): no engine profile models
  a plain PyTorch implementation, so its own fit is judged held out -- `simkit calibrate
  --measurements`'s fit (`calibrate_engine`, the roofline as base) predicting each row from
  the other folds (5-fold; `own fit (held out)`) -- beside the shipped profiles of engines
  without host costs between steps (`vllm-async`), with them (`vllm`) and `roofline`. The
  profile fitted on every row then predicts what it never saw:
  `steps_mixed_h200_pytorch.csv` (decodes beside a prompt's prefill in one step: metric
  `mixed`), `steps_chunked_h200_pytorch.csv` (prompts of 256-2,048 tokens after 2,048-32,768
  cached ones, as chunked prefill and prefix caching run them: `prefill after cache`) and
  the rows of `steps_detail_h200_pytorch.csv` that are one GPU's share of
  Llama-3.1-70B at tensor parallelism 8 (80 layers of its heads and FFN columns, no
  all-reduce: predicted with the all-reduce terms at zero; metrics `TP-8 share ...`).

Rows whose model or GPU the catalog lacks are counted as skipped. Each simkit profile is
compared with the measurements of its own engine (`PROFILES_FOR`: vLLM 0.8 and later with
`vllm`, earlier versions with `vllm-0.6` and, to show what the default does on them, with
`vllm`; SGLang 0.4 and later with `sglang`, which is `vllm`'s constants without host costs,
and with `vllm`); `roofline` (no engine terms) is shown beside it as the baseline;
DeepSpeed-MII and SGLang 0.3 (before its overlap scheduler) have no profile and are compared
with the vLLM profile of their time. The last table
gives, per simkit engine profile and metric kind, the errors over every dataset of the
engine it models (the issue's targets apply to it).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _runs import serving_scenario  # noqa: E402
from _published import (DATA, MAX_BATCH, MLPERF_SET, instances,  # noqa: E402
                        loadable, read_rows, setup_of, steady_batch, trtllm_tokens,
                        version_of)

from simkit.errors import SimkitError  # noqa: E402

#: the profile label of a dataset judged by its own fit, held out (`h200_steps`)
OWN_FIT = "own fit (held out)"
#: measured engine (`engine_label`) -> simkit profiles compared with it (its own first):
#: each vLLM generation against its own fit (vLLM 0.4-0.7 also against the default `vllm`:
#: how the current engine's fit does on small batches), SGLang 0.4+ against `sglang` and
#: the vLLM of its time, SGLang 0.3 and DeepSpeed-MII (no profiles) against the vLLM of theirs
PROFILES_FOR = {"vllm 0.4-0.7": ("vllm-0.6", "vllm", "roofline"),
                "vllm 0.8+": ("vllm", "roofline"),
                # vLLM of 2026, async scheduling on by default (vllm-project/vllm#44594's runs)
                "vllm async": ("vllm-async", "vllm", "roofline"),
                "tensorrt-llm": ("tensorrt-llm", "roofline"),
                "deepspeed-mii": ("vllm-0.6", "roofline"),
                "sglang 0.3": ("vllm-0.6", "roofline"),
                "sglang 0.4": ("sglang", "vllm", "roofline"),
                # this project's H200 steps in plain PyTorch (benchmarks/gpu/measure.py)
                "pytorch (measured here)": (OWN_FIT, "vllm-async", "vllm", "roofline")}
SPLITWISE_PROFILES = ("splitwise-2023", "vllm", "vllm-0.6", "tensorrt-llm", "roofline")


class Table:
    """Errors collected per (dataset, measured engine, GPU, simkit engine, metric)."""

    def __init__(self):
        self.err: dict[tuple, list[float]] = defaultdict(list)
        self.method: dict[str, str] = {}
        self.skipped: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def add(self, key: tuple, simkit: float, measured: float) -> None:
        self.err[key].append(simkit / measured - 1.0)

    def rows(self):
        for key in sorted(self.err, key=lambda k: tuple(str(x) for x in k)):
            yield (key, *_stats(self.err[key]))

    def by_engine(self):
        """Per (measured engine, simkit profile, metric kind), over every dataset: each
        measured engine against its own profile (`PROFILES_FOR`; Splitwise's unnamed engine
        against `splitwise-2023`), the GPUs pooled but AMD's apart (vLLM built for ROCm is
        another kernel stack), MLPerf Server latencies at the same load."""
        pooled: dict[tuple, list[float]] = defaultdict(list)
        for (ds, eng, gpu, prof, metric), errs in self.err.items():
            own = "splitwise-2023" if eng == "unnamed" else PROFILES_FOR[eng][0]
            if prof != own or (metric.startswith("server ") and "matched" not in metric):
                continue  # MLPerf Server latencies count at the same load (server@load)
            label = eng + (" (ROCm)" if gpu.startswith("mi") else "")
            pooled[(label, prof, metric_kind(metric))] += errs
        for key in sorted(pooled):
            yield (key, *_stats(pooled[key]))


def _stats(errs) -> tuple[int, float, float, float]:
    e = np.asarray(errs, dtype=float)
    return len(e), float(np.median(np.abs(e))), float(np.median(e)), \
        float(e[np.argmax(np.abs(e))])


def metric_kind(metric: str) -> str:
    """The kind of a table metric: step phases as they are, then TTFT, TPOT/ITL, end-to-end
    latency, throughput and planned capacity; MLPerf Server latencies (at the same load) as
    their own kind, "near capacity", and the load at which simkit's TPOT matches theirs."""
    if metric in ("decode", "prefill", "mixed", "prefill after cache"):
        return "step " + metric
    if metric.startswith("TP-8 share "):
        return "step " + metric.removeprefix("TP-8 share ") + ", one GPU's TP-8 share"
    if metric in ("preemptions", WATERMARK_GAIN):
        return metric
    if metric == "server tpot-matched load":
        return "load at the measured TPOT"
    if metric.startswith("server@load "):
        return metric_kind(metric.removeprefix("server@load ")) + ", near capacity"
    if "ttft" in metric:
        return "TTFT"
    if "tpot" in metric or "itl" in metric:
        return "TPOT / ITL"
    if "e2e" in metric:
        return "end-to-end latency"
    if metric.startswith("plan"):
        return "planned max rate"
    return "throughput"


def splitwise(table: Table) -> None:
    from simkit.calibrate.measurements import Design, read_measurements
    from simkit.costs.engine import load_engine

    d = Design(read_measurements(DATA / "splitwise.csv"))
    hw = d.labels("hardware")
    table.method["splitwise.csv"] = "step rows through THE step-time formula (closed form)"
    for name in SPLITWISE_PROFILES:
        e = d.predict(load_engine(name))
        for i in range(len(d)):
            table.add(("splitwise.csv", "unnamed", hw[i], name, d.phase[i]), e[i],
                      d.seconds[i])


H200_STEPS = "steps_h200_pytorch.csv"
H200_ENGINE = "pytorch (measured here)"


def without_allreduce(profile):
    """`profile` with no all-reduce cost: one GPU's share of a tensor-parallel step, less its
    communication (the TP-8 share rows ran none)."""
    from dataclasses import replace

    return replace(profile, allreduce_latency_s=0.0, allreduce_step_latency_s=0.0,
                   allreduce_efficiency=math.inf)


def h200_unseen() -> list:
    """(measurement, metric) of this project's H200 rows a fit on the uniform steps never
    sees: mixed steps (`mixed`), prompts after a cached prefix (`prefill after cache`) and
    one GPU's share of Llama-3.1-70B at TP 8 (`TP-8 share decode|prefill`)."""
    from simkit.calibrate.measurements import Measurement, Setup, Step, read_measurements

    out = [(Measurement(Setup(r["model"], r["hardware"], 1), "mixed", float(r["seconds"]),
                        ((1.0, Step(decode_batch=int(r["decodes"]),
                                    decode_context=int(r["decode_context"]), prefill_batch=1,
                                    prompt_tokens=int(r["prefill_tokens"]))),)), "mixed")
           for r in read_rows("steps_mixed_h200_pytorch.csv")]
    out += [(m, "prefill after cache")
            for m in read_measurements(DATA / "steps_chunked_h200_pytorch.csv")]
    out += [(Measurement.step(Setup(r["model"], "h200", int(r["tensor_parallel"])), r["phase"],
                              int(r["batch_size"]), int(r["prompt_tokens"]),
                              int(r["context_tokens"]), float(r["seconds"])),
             f"TP-8 share {r['phase']}")
            for r in read_rows("steps_detail_h200_pytorch.csv") if r["shard_only"] == "1"]
    return out


def h200_steps(table: Table) -> None:
    """This project's H200 steps (see the module docstring): the shipped profiles, the
    file's own fit held out by 5 folds, and that fit on every row predicting the rows it
    never saw (`h200_unseen`)."""
    from simkit.calibrate.engine_fit import calibrate_engine
    from simkit.calibrate.measurements import Design, read_measurements
    from simkit.costs.engine import ROOFLINE, load_engine

    d = Design(read_measurements(DATA / H200_STEPS))
    table.method[H200_STEPS] = "step rows through THE step-time formula; own fit 5-fold"
    others = PROFILES_FOR[H200_ENGINE][1:]
    for name in others:
        for i, t in enumerate(d.predict(load_engine(name))):
            table.add((H200_STEPS, H200_ENGINE, "h200", name, d.phase[i]), t, d.seconds[i])
    cal = calibrate_engine(d, ROOFLINE, "h200-pytorch")
    for i, e in enumerate(cal.errors_heldout["k-fold"]):
        table.add((H200_STEPS, H200_ENGINE, "h200", OWN_FIT, d.phase[i]), (1 + e) * d.seconds[i],
                  d.seconds[i])
    unseen = h200_unseen()
    du = Design([m for m, _ in unseen])
    for name, prof in ((OWN_FIT, cal.profile), *((n, load_engine(n)) for n in others)):
        for i, t in enumerate(du.predict(without_allreduce(prof))):
            table.add((H200_STEPS, H200_ENGINE, "h200", name, unseen[i][1]), t, du.seconds[i])


def _scenario(setup, engine, *, requests, rate, prompt, output, max_batch, fraction,
              batch_tokens, admission="greedy"):
    from simkit import api

    return api.from_dict({
        "name": "fidelity", "seed": 0,
        "model": {"name": setup.model, "kv_dtype": setup.kv_dtype,
                  "weight_dtype": setup.weight_dtype},
        "hardware": {"name": setup.hardware, "gpus_per_replica": setup.tensor_parallel,
                     "engine": engine},
        "workload": {"requests": requests, "arrival": {"process": "poisson", "rate": rate},
                     "prompt_tokens": {"dist": "fixed", "value": prompt},
                     "output_tokens": {"dist": "fixed", "value": output}},
        "serving": {"scheduler": "continuous", "max_batch": max_batch,
                    "memory_fraction": fraction, "max_batch_tokens": batch_tokens,
                    "max_seq_len": prompt + output, "admission": admission}})


def _simulate(s):
    from simkit.sim import simulate

    return simulate(s).summary


def argonne(table: Table, quick: bool) -> None:
    name = "throughput_llm_inference_bench.csv"
    table.method[name] = ("simulator: B requests at t = 0 (static batch makespan; mean TTFT "
                          "of 16 x 1024 tokens)")
    rows = read_rows(name)
    if quick:
        rows = rows[::7]
    for row in rows:
        setup = setup_of(row)
        why = loadable(setup)
        if why:
            table.skipped[name][why] += 1
            continue
        b = int(row["concurrency_or_batch"])
        n_in, n_out = int(row["input_tokens"]), int(row["output_tokens"])
        for prof in PROFILES_FOR[engine_label(row)]:
            try:
                s = _scenario(setup, prof, requests=b, rate=1e9, prompt=n_in, output=n_out,
                              max_batch=max(b, 1), fraction=0.9,
                              batch_tokens=max(8192, n_in))
                summ = _simulate(s)
            except SimkitError as e:
                table.skipped[name][e.messages[0][:80]] += 1
                break
            got = summ["simulated_seconds"] if row["metric"] == "e2e_s" \
                else summ["ttft_s"]["mean"]
            table.add((name, engine_label(row), row["hardware"], prof, row["metric"]), got,
                      float(row["value"]))


_ONLINE = {"ttft_s": lambda s: s["ttft_s"]["mean"], "itl_s": lambda s: s["tpot_s"]["mean"],
           "requests_per_s": lambda s: s["throughput_requests_per_s"],
           "output_tokens_per_s": lambda s: s["throughput_tokens_per_s"],
           "total_tokens_per_s": lambda s: s["throughput_tokens_per_s"]
           + s["prompt_throughput_tokens_per_s"]}


TRTLLM_OVERVIEWS = ("throughput_tensorrt_llm_perf_overview.csv",
                    "throughput_tensorrt_llm_1.0_perf_overview.csv")  # (the second held out)


def trtllm_overview(table: Table, quick: bool, name: str) -> None:
    table.method[name] = ("simulator: offline max-load throughput (1,000-30,000 requests at "
                          "t = 0) and "
                          "online Poisson runs at the stated QPS (500 requests); offline "
                          "admission no_evict (trtllm-bench's default GUARANTEED_NO_EVICT)")
    rows = read_rows(name)
    if quick:
        rows = rows[::9]
    runs: dict[tuple, dict] = {}
    for row in rows:
        setup = setup_of(row)
        why = loadable(setup)
        if why:
            table.skipped[name][why] += 1
            continue
        n_in, n_out = int(row["input_tokens"]), int(row["output_tokens"])
        offline = row["concurrency_or_batch"] == "max"
        rate = row["request_rate_per_s"]
        rate = 1e9 if offline or rate == "inf" else float(rate)
        for prof in PROFILES_FOR[engine_label(row)]:
            key = (setup, prof, n_in, n_out, offline, rate)
            if key not in runs:
                try:
                    runs[key] = _simulate(_scenario(
                        setup, prof, rate=rate,
                        requests=_offline_requests(setup, n_in, n_out) if offline else 500,
                        prompt=n_in, output=n_out, max_batch=MAX_BATCH, fraction=0.95,
                        batch_tokens=trtllm_tokens(n_in),
                        admission="no_evict" if offline else "greedy"))
                except SimkitError as e:
                    runs[key] = None
                    table.skipped[name][e.messages[0][:80]] += 1
            summ = runs[key]
            if summ is None:
                break
            metric = row["metric"]
            got = _ONLINE[metric](summ)
            if got is None or (isinstance(got, float) and math.isnan(got)):
                continue
            label = ("offline " if offline else "online ") + metric
            table.add((name, row["engine"], row["hardware"], prof, label), got,
                      float(row["value"]))


def _offline_requests(setup, prompt: int, output: int) -> int:
    """Enough requests that the run spends most of its time at the largest batch the KV
    cache (95% of memory) and the batch limit allow (`_published.steady_batch`): four
    batches' worth, at least 1,000 and at most 30,000 (the source's range)."""
    return int(min(30000, max(1000, 4 * steady_batch(setup, prompt + output,
                                                         prompt=prompt))))


#: the watermark sweep's relative metric: throughput with the watermark over without one
WATERMARK_GAIN = "throughput over no watermark"
PR44594 = "preemptions_vllm_pr44594.csv"


def pr44594_scenario(watermark: float, profile: str = "vllm", seed: int = 0):
    """vllm-project/vllm#44594's benchmark as a scenario: Qwen/Qwen2.5-7B-Instruct, TP 1, 16
    GiB of KV cache, prefix caching off, max-model-len 8192, max-num-seqs 256, chunked
    prefill (V1) within `vllm serve`'s 8,192-token default budget (`EngineArgs`, GPUs of 70
    GiB or more); the random dataset's 450 prompts of 1,000 +- 20% tokens answered with
    5,000 +- 20% (--ignore-eos), at most 128 in flight (--max-concurrency). The run was on
    a GB200; B200 stands in (the preemptions do not depend on it)."""
    from simkit import api

    return api.from_dict({
        "name": "vllm-pr44594", "seed": seed, "model": {"name": "qwen2.5-7b"},
        "hardware": {"name": "b200", "engine": profile},
        "workload": {"requests": 450, "arrival": {"process": "burst"}, "max_concurrency": 128,
                     "prompt_tokens": {"dist": "uniform", "low": 800, "high": 1200},
                     "output_tokens": {"dist": "uniform", "low": 4000, "high": 6000}},
        "serving": {"scheduler": "chunked", "max_batch": 256, "kv_cache_bytes": 16 * 2**30,
                    "max_batch_tokens": 8192, "chunk_tokens": 8192, "prefix_caching": False,
                    "max_seq_len": 8192, "watermark": watermark}})


def pr44594_errors(profile: str) -> list[tuple[str, float]]:
    """(watermark, simulated / measured output tokens/s - 1) of the PR's five runs under
    `profile` (a name or an ENGINE.toml path), as `offline_errors` gives its runs'."""
    return [(r["watermark"], _simulate(pr44594_scenario(float(r["watermark"]), profile))[
        "throughput_tokens_per_s"] / float(r["output_tokens_per_s"]) - 1.0)
        for r in read_rows(PR44594)]


#: the measured engine of vllm-project/vllm#44594's runs (vLLM main of 2026-06)
PR44594_ENGINE = "vllm async"
#: the PR's latency columns -> simkit's (distribution, quantile); `vllm bench serve`'s ITL is
#: the gap between streamed chunks, simkit's `itl_s`
PR44594_LATENCIES = {"ttft_p50_s": ("ttft_s", "p50"), "ttft_p99_s": ("ttft_s", "p99"),
                     "itl_p99_s": ("itl_s", "p99"), "e2e_p50_s": ("e2e_s", "p50")}


def watermark_sweep(table: Table) -> None:
    """`preemptions_vllm_pr44594.csv` through the simulator: see the module docstring."""
    table.method[PR44594] = ("simulator: V1's loop on the PR's setup (a closed loop of 128 "
                             "requests in flight), one run per watermark; preemptions, "
                             "output tokens/s and latencies, and throughput relative to the "
                             "run without a watermark")
    rows = read_rows(PR44594)
    for prof in PROFILES_FOR[PR44594_ENGINE]:
        key = (PR44594, PR44594_ENGINE, "gb200 (b200)", prof)
        base = None
        for row in rows:
            s = _simulate(pr44594_scenario(float(row["watermark"]), prof))
            table.add((*key, "preemptions"), s["preemptions"], float(row["preemptions"]))
            ours, theirs = s["throughput_tokens_per_s"], float(row["output_tokens_per_s"])
            table.add((*key, "closed-loop output_tokens_per_s"), ours, theirs)
            for col, (dist, q) in PR44594_LATENCIES.items():
                if row[col]:  # (the 0.15 row's latencies are cut off in the source)
                    table.add((*key, f"closed-loop {col}"), s[dist][q], float(row[col]))
            if base is None:
                base = (ours, theirs)
                continue
            table.add((*key, WATERMARK_GAIN), ours / base[0], theirs / base[1])


def oracle(table: Table) -> None:
    name = "throughput_vllm_mi300x_oracle.csv"
    table.method[name] = "simulator: static batches (makespan) and offline throughput"
    for row in read_rows(name):
        setup = setup_of(row)
        why = loadable(setup)
        if why:
            table.skipped[name][why] += 1
            continue
        n_in, n_out = int(row["input_tokens"]), int(row["output_tokens"])
        offline = row["concurrency_or_batch"] == "max"
        b = 400 if offline else int(row["concurrency_or_batch"])
        for prof in PROFILES_FOR[engine_label(row)]:
            try:
                summ = _simulate(_scenario(setup, prof, requests=b, rate=1e9, prompt=n_in,
                                           output=n_out, max_batch=max(b, 256), fraction=0.9,
                                           batch_tokens=8192))
            except SimkitError as e:
                table.skipped[name][e.messages[0][:80]] += 1
                break
            m = row["metric"]
            got = summ["simulated_seconds"] if m == "e2e_s" else summ["throughput_tokens_per_s"]
            table.add((name, engine_label(row), row["hardware"], prof,
                       ("offline " if offline else "batch ") + m), got, float(row["value"]))


#: files of dataset-driven serving runs (rows with a `dataset`)
SERVING_FILES = ("throughput_mlperf_inference_v4.1.csv",
                 "throughput_mlperf_inference_v5.0_krai.csv",
                 "throughput_mlperf_inference_v5.1_redhat.csv",
                 "throughput_mlperf_inference_v5.1_krai.csv",
                 "throughput_mlperf_inference_v5.1_rocm.csv",
                 "throughput_mlperf_inference_v5.0_nvidia_b200.csv",
                 "throughput_sglang_vllm_0.6.0.csv")
#: MLPerf latency limits at the 99th percentile, per dataset (the logs' ttft_latency and
#: tpot_latency: Llama-2-70B 2 s and 200 ms, Llama-3.1-8B 2 s and 100 ms, Mixtral-8x7B 2 s
#: and 200 ms), and of the Interactive scenario (a Server run under the
#: llama2-70b-interactive limits: 450 ms and 40 ms)
MLPERF_SLOS = {"openorca": {"ttft_p99_s": 2.0, "tpot_p99_s": 0.2},
               "cnn_dailymail": {"ttft_p99_s": 2.0, "tpot_p99_s": 0.1},
               "mlperf_mixtral": {"ttft_p99_s": 2.0, "tpot_p99_s": 0.2},
               "interactive": {"ttft_p99_s": 0.45, "tpot_p99_s": 0.04}}
MLPERF_SERVER_S = 600.0  # min_duration of a Server run (the logs: 600000 ms)

_SERVING_METRICS = {
    "requests_per_s": lambda s: s["throughput_requests_per_s"],
    "output_tokens_per_s": lambda s: s["throughput_tokens_per_s"],
    "e2e_s": lambda s: s["e2e_s"]["mean"], "e2e_p50_s": lambda s: s["e2e_s"]["p50"],
    "e2e_p99_s": lambda s: s["e2e_s"]["p99"],
    "ttft_s": lambda s: s["ttft_s"]["mean"], "ttft_p50_s": lambda s: s["ttft_s"]["p50"],
    "ttft_p90_s": lambda s: s["ttft_s"]["p90"], "ttft_p99_s": lambda s: s["ttft_s"]["p99"],
    "itl_p50_s": lambda s: s["itl_s"]["p50"],
    "tpot_s": lambda s: s["tpot_s"]["mean"], "tpot_p50_s": lambda s: s["tpot_s"]["p50"],
    "tpot_p90_s": lambda s: s["tpot_s"]["p90"], "tpot_p99_s": lambda s: s["tpot_s"]["p99"]}
_RATES = ("requests_per_s", "output_tokens_per_s")


def engine_label(row) -> str:
    """The measured engine as the tables name it: vLLM and SGLang by generation (vLLM 0.8+:
    the kernels of 2025, V1 engine by default; a version the source does not state is of
    2024, the older)."""
    e = row["engine"]
    v = version_of(row)
    if e == "vllm":
        return "vllm 0.8+" if v >= (0, 8) else "vllm 0.4-0.7"
    if e == "sglang":
        return "sglang 0.4" if v >= (0, 4) else "sglang 0.3"
    return e


def offline_errors(engine: str, profile: str) -> list[tuple[str, float]]:
    """(source, simulated / measured requests/s - 1) of every MLPerf Offline run of the
    measured `engine` in `SERVING_FILES`, simulated as `serving` does with `profile` (a name
    or an ENGINE.toml path): what `benchmarks/fit_engines.py` reports for a profile that is
    checked, not fitted."""
    out = []
    for name in SERVING_FILES:
        runs: dict[str, list[dict]] = defaultdict(list)
        for row in read_rows(name):
            if row["engine"] == engine and row["concurrency_or_batch"] == "max" and \
                    row["dataset"] in MLPERF_SET:
                runs[row["source"]].append(row)
        for source, rows in runs.items():
            row = rows[0]
            if loadable(setup_of(row)):
                continue
            summ = _simulate(serving_scenario(row, profile, requests=MLPERF_SET[row["dataset"]],
                                               rate=1e9))
            out.append((source, _capacity_ratio(summ, rows) - 1.0))
    return out


def _capacity_ratio(summ: dict, rows: list[dict]) -> float:
    """An Offline run's simulated requests/s (one instance's, times the instances) over the
    measured."""
    meas = next(float(r["value"]) for r in rows if r["metric"] == "requests_per_s")
    return summ["throughput_requests_per_s"] * instances(rows[0]) / meas


def serving(table: Table, quick: bool) -> None:
    """Dataset-driven serving runs through the simulator (and MLPerf Server runs through
    `max_qps`): see the module docstring."""
    from simkit.plan.capacity import max_qps

    for name in SERVING_FILES:
        table.method[name] = ("simulator: one instance per data-parallel replica, the run's "
                              "request lengths and engine settings; offline (all at t = 0) "
                              "and Poisson server/online runs; MLPerf Server also planned "
                              "(max_qps under its SLOs)")
        # one run per source and engine (SGLang's benchmark has both engines' rows under one
        # source: each runs with its own engine's settings)
        runs: dict[tuple[str, str], list[dict]] = defaultdict(list)
        for row in read_rows(name):
            runs[(row["source"], row["engine"])].append(row)
        # offline runs first: a Server run is also compared at its system's load (below)
        items = sorted(runs.items(), key=lambda kv: kv[1][0]["concurrency_or_batch"] != "max")
        if quick:
            items = items[::3]
        capacity: dict[tuple, float] = {}  # (system, profile) -> simulated / measured rate
        for (source, _), rows in items:
            row = rows[0]
            why = loadable(setup_of(row))
            if why:
                table.skipped[name][why] += len(rows)
                continue
            inst = instances(row)
            offline = row["concurrency_or_batch"] == "max"
            mlperf = row["dataset"] in MLPERF_SET
            if offline:
                rate = 1e9
                n = MLPERF_SET[row["dataset"]] if mlperf else _prompts(source)
            else:
                rate = float(row["request_rate_per_s"]) / inst
                n = int(rate * MLPERF_SERVER_S) if mlperf else _prompts(source)
            if quick:
                n = min(n, 1500)
            kind = "offline " if offline else ("server " if mlperf else "online ")
            system = _system(source)
            for prof in PROFILES_FOR[engine_label(row)]:
                try:
                    summ = _simulate(serving_scenario(row, prof, requests=n, rate=rate))
                except SimkitError as e:
                    table.skipped[name][e.messages[0][:80]] += len(rows)
                    break
                _compare(table, name, rows, prof, kind, summ, inst)
                if offline:
                    capacity[(system, prof)] = _capacity_ratio(summ, rows)
                if mlperf and not offline:
                    cap = max_qps(serving_scenario(row, prof, requests=n, rate=rate,
                                                    slo=MLPERF_SLOS[_slo_key(row)]))
                    table.add((name, engine_label(row), row["hardware"], prof, "plan max_qps"),
                              cap.max_qps * inst, float(row["request_rate_per_s"]))
                    tpot = next((float(r["value"]) for r in rows if r["metric"] == "tpot_s"),
                                None)
                    if tpot is not None and prof == PROFILES_FOR[engine_label(row)][0]:
                        s = tpot_matched_load(row, prof, rate, tpot,
                                              max_requests=1500 if quick else None)
                        table.add((name, engine_label(row), row["hardware"], prof,
                                   "server tpot-matched load"), s * rate, rate)
                    scale = capacity.get((system, prof))
                    if scale is not None:
                        summ = _simulate(serving_scenario(row, prof, requests=n,
                                                           rate=rate * scale))
                        _compare(table, name, rows, prof, "server@load ", summ, inst,
                                 rates=False)


#: the loads `tpot_matched_load` searches, as multiples of the measured one
MATCH_RANGE = (0.5, 1.5)


def tpot_matched_load(row, prof: str, rate: float, tpot_s: float, steps: int = 8,
                      max_requests: int | None = None) -> float:
    """The load, as a multiple of the measured `rate` (per instance), at which simkit's mean
    TPOT equals the measured `tpot_s`: bisected over `MATCH_RANGE` (its ends when simkit is
    never as slow or always slower there). Near capacity TPOT grows without bound with the
    load, so a latency error there is mostly a small error of capacity; this states it as
    one, the load simkit needs to be as slow as the engine was (above 1: simkit has more
    headroom at that load than the engine had). Each probe simulates the Server run's 600 s
    of traffic (at most `max_requests` requests: `--quick`)."""
    def tpot_at(scale: float) -> float:
        r = rate * scale
        n = int(r * MLPERF_SERVER_S)
        summ = _simulate(serving_scenario(row, prof, rate=r,
                                           requests=n if max_requests is None
                                           else min(n, max_requests)))
        return summ["tpot_s"]["mean"]

    lo, hi = MATCH_RANGE
    if tpot_at(hi) < tpot_s:
        return hi
    if tpot_at(lo) > tpot_s:
        return lo
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        if tpot_at(mid) < tpot_s:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _compare(table: Table, name: str, rows, prof: str, kind: str, summ, inst: int,
             rates: bool = True) -> None:
    """Add every comparable metric of one run's rows (`rates`: also its throughputs)."""
    for r in rows:
        m = r["metric"]
        if m not in _SERVING_METRICS or (r["dataset"] == "sharegpt" and m == "e2e_p50_s"):
            continue  # ShareGPT e2e medians: see the module docstring
        if m in _RATES and not rates:
            continue
        got = _SERVING_METRICS[m](summ)
        if got is None:
            continue
        if m in _RATES:
            got *= inst
        table.add((name, engine_label(r), r["hardware"], prof, kind + m), got,
                  float(r["value"]))


def _slo_key(row) -> str:
    """Which latency limits a run was held to: its scenario's (Interactive) or dataset's."""
    src = row["source"].lower()  # (v5.0 names the benchmark llama3_1-70b-interactive-...)
    return "interactive" if "/interactive/" in src or "-interactive-" in src else row["dataset"]


def _system(source: str) -> str:
    """A run's system: its source path without the scenario (Offline/Server) part."""
    for scen in ("/Offline/", "/Server/", "/Interactive/", "/offline/", "/server/",
                 "/interactive/"):
        source = source.replace(scen, "/")
    return source


def _prompts(source: str) -> int:
    """The prompt count a ShareGPT row's source names ('..., 1200 prompts)')."""
    return int(source.rsplit(", ", 1)[1].split()[0])


def _markdown_rows(table: Table) -> None:
    """The README's table: every dataset, measured engine, GPU and metric against the
    measured engine's own profile, with `roofline`'s median |error| beside it (Splitwise's
    unnamed engine: `splitwise-2023`)."""
    base = {(k[0], k[1], k[2], k[4]): mae for k, n, mae, med, worst in table.rows()
            if k[3] == "roofline"}
    print("| dataset | measured engine | GPU | phase / metric | n | simkit engine | "
          "median \\|err\\| | signed median | worst | `roofline` median \\|err\\| |")
    print("| --- | --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |")
    for key, n, mae, med, worst in table.rows():
        ds, eng, gpu, prof, metric = key
        own = "splitwise-2023" if eng == "unnamed" else PROFILES_FOR[eng][0]
        if prof != own:
            continue
        r = base.get((ds, eng, gpu, metric))
        rcol = f"{r:.1%}" if r is not None else ""
        print(f"| {ds.removesuffix('.csv')} | {eng} | {gpu} | {metric} | {n} | {prof} | "
              f"{mae:.1%} | {med:+.1%} | {worst:+.1%} | {rcol} |")


def main(argv=None) -> int:
    import warnings

    warnings.simplefilter("ignore")  # what-if notes (prompts past a model's context) per row
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="every 7th/9th throughput row only")
    ap.add_argument("--markdown", action="store_true", help="print a markdown table")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    table = Table()
    splitwise(table)
    h200_steps(table)
    argonne(table, args.quick)
    for name in TRTLLM_OVERVIEWS:
        trtllm_overview(table, args.quick, name)
    oracle(table)
    watermark_sweep(table)
    serving(table, args.quick)
    if args.markdown:
        _markdown_rows(table)
    else:
        print(f"{'dataset':42} {'engine':13} {'GPU':10} {'simkit':14} {'phase/metric':28} "
              f"{'n':>5} {'med|err|':>9} {'median':>8} {'worst':>8}")
        for key, n, mae, med, worst in table.rows():
            ds, eng, gpu, prof, metric = key
            print(f"{ds:42} {eng:13} {gpu:10} {prof:14} {metric:28} {n:5d} {mae:9.1%} "
                  f"{med:+8.1%} {worst:+8.1%}")
    print()
    if args.markdown:
        print("| measured engine | simkit engine | metric kind | n | median abs err | "
              "signed median | worst |")
        print("| --- | --- | --- | ---: | ---: | ---: | ---: |")
        for (eng, prof, kind), n, mae, med, worst in table.by_engine():
            print(f"| {eng} | {prof} | {kind} | {n} | {mae:.1%} | {med:+.1%} | {worst:+.1%} |")
    else:
        print(f"{'measured engine':15} {'simkit':14} {'metric kind':20} {'n':>5} "
              f"{'med|err|':>9} {'median':>8} {'worst':>8}")
        for (eng, prof, kind), n, mae, med, worst in table.by_engine():
            print(f"{eng:15} {prof:14} {kind:20} {n:5d} {mae:9.1%} {med:+8.1%} {worst:+8.1%}")
    print()
    for ds, how in table.method.items():
        print(f"{ds}: {how}")
    for ds, reasons in table.skipped.items():
        for why, k in sorted(reasons.items()):
            print(f"{ds}: skipped {k} row(s): {why.split(';')[0]}")
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
