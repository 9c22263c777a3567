"""Fit the shipped engine profiles (`simkit/data/engines/*.toml`) to published measurements.

    PYTHONPATH=. python benchmarks/fit_engines.py [--check]

Each profile is fitted by `simkit.calibrate.engine_fit` (least squares on log time, weak
physical priors) to measurements OF THAT ENGINE, then judged held out (5-fold, leave one
model / TP degree / GPU out). `--check` fits and prints without writing.

- `vllm` (the default): vLLM 0.9-0.10, the V1 engine -- what is deployed today. Its MLPerf
  Inference v5.1 serving runs (`_published.mlperf_runs`, the V1 ones): Krai's vLLM 0.9.2
  Llama-3.1-70B fp8 on 8-24 H200 and 8 H100 (TP 2), Red Hat's vLLM 0.10.0 Llama-3.1-8B fp8
  on one H100 and one L40S, and Krai's vLLM 0.9.2 for ROCm on 8 MI300X -- 17 runs, each its
  mean steady-state iteration (an Offline run: the batch its memory holds, not the
  simulated iterations, which preempt at the memory limit as V1 does but which the step
  formula prices above the measured runs' wall time: `_published.mlperf_runs`). Large
  batches on one or two GPUs show the GEMM and fp8 rates, streaming, decode attention and
  fixed costs (the eight constants `VLLM_FITTED`); the shape factors, the prefill attention
  kernel and the all-reduce terms, which they cannot show, are `vllm-0.6`'s. AMD's own v5.1 runs (vLLM 0.9 for ROCm with the V0 engine
  and multi-step scheduling) are held out: `benchmarks/fidelity.py` simulates them as run.
- `vllm-0.6`: vLLM 0.6-0.7 on NVIDIA GPUs. (a) The static-batch wall times of Argonne's
  LLM-Inference-Bench (A100-40GB, H100 SXM; fp16; results last changed 2024-09-27). Its
  README says `pip install vllm`, without a version; the A100 scripts' environment file
  (`vLLM/A100/Throughput_measurement/requirements-*.txt`, added 2024-09-20) is vLLM's own
  requirements list as it stood between v0.6.1.post2 (2024-09-13: that release pins gguf
  0.9.1 and lacks the setuptools line the file has) and v0.6.2 (2024-09-25: that one asks
  for transformers >= 4.45 where the file has 4.43.2), so the runs most likely used vLLM
  0.6.1.x, the release pip installed then -- after 0.6.0's asynchronous output processing
  (on by default), with multi-step scheduling off (opt-in, not passed by the scripts).
  Each batch = its prefill steps + its decode steps (`Measurement.static_batch`); the same
  benchmark's mean time to first token of 16 x 1024-token prompts = its prefill steps
  (`_published.static_ttfts`), which pins the prefill constants. (b) Krai's
  MLPerf Inference v5.0 runs of vLLM 0.6.4 (two attention backends) and 0.7.3 on 8x H200:
  Llama-2-70B with fp8 weights, OpenOrca, Offline and Server (`_published.mlperf_runs`: an
  Offline run as the iterations V0 ran, a Server run as its mean steady-state iteration by
  Little's law), prompts in iterations of their own as V0 runs them without chunked prefill
  (`runs_prompts_alone`). The same benchmark's MI300X
  runs (vLLM 0.6.1 built for ROCm) are NOT fitted: relative to the hardware they are 2-20x
  slower than vLLM on NVIDIA (e.g. Llama-2-70B on one MI300X at batch 256 takes 1.1 s per
  decode step, ~2.5% of the GPU's dense peak), a different kernel stack; nor is AMD's MLPerf
  v4.1 vLLM 0.4.3 (ROCm); `benchmarks/fidelity.py` reports how far the NVIDIA-fitted profile
  is from them.
- `tensorrt-llm`: TensorRT-LLM 0.11.0's static batches and times to first token in the same
  benchmark (A100-40GB, H100 SXM), TensorRT-LLM 0.17's offline throughput at maximum load in
  NVIDIA's performance overview (H100 SXM, H200, L40S in fp8; A100-80GB in fp16), each as the static
  batch the engine keeps in flight (`_published.offline_throughputs`), TensorRT-LLM 0.14's
  online Triton runs in the same page (Llama-3.1-8B and 70B, bf16, H100 and H200, Poisson
  arrivals at 2-32 QPS) at the rates whose queue stays short, as the mean iteration a
  decoding request sees (`_published.online_runs`: the only serving measurements of small
  and mid-size batches), and the MLPerf
  Inference v4.1 Llama-2-70B runs (NVIDIA's H100 and H200, Fujitsu's L40S; fp8) as their
  iterations (Offline) and mean steady-state iterations (Server) (`_published.mlperf_runs`;
  L40S Offline left out: its batch limit is not stated). The Argonne Mixtral
  rows are not fitted: the benchmark's `run.py` builds every request of a
  batch from the same input text, so with greedy decoding every sequence routes to the same
  two experts, while simkit's MoE weight traffic assumes routing spread over the experts
  (at batch 16 all eight are read); those rows run ~1.5x faster than any uniform-routing
  model predicts.
- `sglang`: SGLang 0.4 and later, derived from `vllm`, not fitted: the same kernel families
  (FlashInfer / FlashAttention-3 attention, CUTLASS fp8 GEMMs, CUDA graphs), so `vllm`'s
  constants, with no host costs per step or per sequence: SGLang 0.4's overlap scheduler
  prepares the next batch while the GPU runs this one, and its Nsight profile of five
  consecutive decode batches shows no GPU idle time between them (LMSYS, "SGLang v0.4",
  2024-12-04, "Zero-Overhead Batch Scheduler"). Its only published serving measurements
  (Krai's MLPerf v5.0 SGLang 0.4.3 and v5.1 SGLang 0.4.9 runs: two checkpoints of
  Llama-3.1-70B fp8 on 8x H200, whose speeds differ by 16% with the same shapes) are too few
  to fit eight constants. They judge it held out, through the simulator with SGLang's
  scheduler (`fidelity.offline_errors`: the five Offline runs' throughput). Not as
  Little's-law mean iterations: SGLang runs its prompts in iterations of their own, each
  streaming the weights again, which a mean iteration of decodes and prompts together
  leaves out.
- `vllm-async`: vLLM with async scheduling (its default since late 2025: the scheduler's
  host work overlaps the GPU's step), derived from `vllm` as `sglang` is -- the same kernel
  constants, no host costs per step or per sequence -- but keeping vLLM's profiling pass and
  its L40S fp8 factor. Checked held out on vllm-project/vllm#44594's five closed-loop runs
  (vLLM main of 2026-06, Qwen2.5-7B-Instruct on a GB200 simulated as a B200:
  `fidelity.pr44594_errors`, output tokens/s).
- `splitwise-2023`: the unnamed engine of Splitwise's step-level DGX-A100/H100 profiles
  (`simkit/data/measurements/splitwise.csv`), fitted exactly as `simkit calibrate
  --measurements` does.

In every fit, a static batch whose KV cache does not fit beside the weights is left out of
the closed form (the engine ran it in waves); the simulator models those in
`benchmarks/fidelity.py`. Every source file weighs the same in the fit
(`engine_fit.source_weights`), and besides the splits `simkit calibrate` reports, each fit is
judged leaving one source file out.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _published import (is_vllm_v1, mlperf_runs, offline_throughputs,  # noqa: E402
                        online_runs, static_batches, static_ttfts)

from simkit.calibrate.engine_fit import FITTED, PRIORS, calibrate_engine  # noqa: E402
from simkit.calibrate.measurements import Design, read_measurements  # noqa: E402
from simkit.costs.engine import (ENGINE_DIR, ROOFLINE, engine_to_toml,  # noqa: E402
                                 read_engine)

ARGONNE = ("Argonne LLM-Inference-Bench (Chitty-Venkata et al., arXiv:2411.00136), "
           "github.com/argonne-lcf/LLM-Inference-Bench@4211f5d4e9bc Plots/All_results.csv: "
           "wall time of static batches (batch 1-64, input = output = 128-2048 tokens, fp16); "
           "simkit/data/measurements/throughput_llm_inference_bench.csv")
PERF_OVERVIEW = ("NVIDIA's TensorRT-LLM performance overview, version 0.17 'Throughput "
                 "Measurements' (docs/source/performance/perf-overview.md of "
                 "github.com/NVIDIA/TensorRT-LLM@258c7540c035): offline output tokens/s at "
                 "maximum load, H100 SXM / H200 / L40S in fp8, A100-80GB in fp16; and its "
                 "version 0.14.0 'Online Serving Measurements' (Triton, Llama-3.1-8B/70B "
                 "bf16 on H100 SXM and H200, Poisson arrivals; mean ITL at the rates whose "
                 "TTFT stays within 1.5x of the 2-QPS one); "
                 "simkit/data/measurements/throughput_tensorrt_llm_perf_overview.csv "
                 "(catalog models only)")
SPLITWISE = ("Splitwise step times (Patel et al., ISCA 2024, arXiv:2311.18677), "
             "github.com/Mutinifni/splitwise-sim@8f99e7dc9b40 data/perf_model.csv: prefill and "
             "decode iterations of Llama-2-70B (TP 2/4/8) and BLOOM-176B (TP 8), fp16; "
             "simkit/data/measurements/splitwise.csv")

KRAI = ("Krai's MLPerf Inference v5.0 open-division runs (ntuhpc/mlperf_inference_results_v5.0"
        "@cf354115915e, a copy of mlcommons/inference_results_v5.0: open/Krai/results/"
        "xd670_h200_x8_vllm_{064,064_flashinfer,073}/llama2-70b-fp8_dyn): vLLM 0.6.4 and "
        "0.7.3, Llama-2-70B fp8 weights, 8x H200, OpenOrca Offline and Server; "
        "simkit/data/measurements/throughput_mlperf_inference_v5.0_krai.csv")
MLPERF41 = ("MLPerf Inference v4.1 closed Llama-2-70B runs (mlcommons/inference_results_v4.1"
            "@198fc46799b3): NVIDIA DGX-H100 and H200, Fujitsu L40S, fp8, OpenOrca Offline and "
            "Server; simkit/data/measurements/throughput_mlperf_inference_v4.1.csv")
NVIDIA = ("a100-40gb", "a100-80gb", "h100-sxm", "h100-pcie", "h200", "l40s", "l4", "b200")
SPLITS = (("leave one model out", "model"), ("leave one TP degree out", "tensor_parallel"),
          ("leave one GPU out", "hardware"), ("leave one source out", "source"))

KRAI51 = ("Krai's MLPerf Inference v5.1 open-division vLLM 0.9.2 runs (mlcommons/"
          "inference_results_v5.1@965182b03376: open/Krai/results/{xd670_h200_x8,x16,x24,"
          "xe9680_h100_x8}_vllm_092): Llama-3.1-70B fp8 on 8-24 H200 (TP 1) and 8 H100 (TP 2), "
          "OpenOrca Offline, Server and Interactive; simkit/data/measurements/"
          "throughput_mlperf_inference_v5.1_krai.csv")
REDHAT51 = ("Red Hat's MLPerf Inference v5.1 closed vLLM 0.10.0 runs (mlcommons/"
            "inference_results_v5.1: closed/RedHat): Llama-3.1-8B fp8 on one H100 and one L40S, "
            "CNN/DailyMail Offline and Server; simkit/data/measurements/"
            "throughput_mlperf_inference_v5.1_redhat.csv")
ROCM51 = ("Krai's MLPerf Inference v5.1 open-division vLLM 0.9.2 runs for ROCm 6.4.1 "
          "(mlcommons/inference_results_v5.1@965182b03376: open/Krai/results/"
          "xe9680_mi300x_x8_vllm_091): Llama-3.1-70B fp8 on 8 MI300X (TP 1), OpenOrca Offline "
          "and Server; the V1 runs of simkit/data/measurements/"
          "throughput_mlperf_inference_v5.1_rocm.csv (AMD's own, V0 with multi-step "
          "scheduling, are held out)")
KRAI_SGLANG = ("Krai's MLPerf Inference v5.0 and v5.1 open-division SGLang 0.4.3 and 0.4.9 "
               "runs (ntuhpc/mlperf_inference_results_v5.0@cf354115915e: open/Krai/results/"
               "xd670_h200_x8_sglang; mlcommons/inference_results_v5.1@965182b03376: open/Krai/"
               "results/xd670_h200_x8_sglang_049): Llama-3.1-70B fp8 (fp8_dyn, fp8_pre) on 8 "
               "H200 (TP 1), OpenOrca Offline; simkit/data/measurements/"
               "throughput_mlperf_inference_v5.0_krai.csv, "
               "throughput_mlperf_inference_v5.1_krai.csv")
SGLANG_OVERLAP = ("LMSYS, 'SGLang v0.4: Zero-Overhead Batch Scheduler, ...' "
                  "(lmsys.org/blog/2024-12-04-sglang-v0-4/, 2024-12-04): the scheduler runs "
                  "one batch ahead; no GPU idle time between five consecutive decode batches")
#: constants the overlap scheduler takes off the step: host work per step and per sequence
HOST_COSTS = ("step_overhead_s", "sequence_overhead_s")
VLLM_ASYNC = ("vLLM's async scheduling (vllm-project/vllm#19970, 2025-06-23: 'overlapping "
              "scheduling with model execution ... the scheduler operate[s] one step ahead'), "
              "made the default by #27614 (vllm-project/vllm#27679, 'Async Scheduling Plan', "
              "2025-10-28) and extended to EAGLE/MTP speculative decoding by #31998 "
              "(2026-01-08)")
PR44594 = ("vllm-project/vllm#44594 (2026-06-05): Qwen2.5-7B-Instruct on one GB200, 16 GiB of "
           "KV cache, 450 random requests of ~1,000 + ~5,000 tokens at 128 in flight, five "
           "watermarks; simulated on a B200 (GB200 is not in the catalog); "
           "simkit/data/measurements/preemptions_vllm_pr44594.csv")

#: the vLLM 0.6-0.7 fit, whose constants the current vLLM's fit keeps where its data are blind
VLLM_06 = "vllm-0.6"
VLLM_FITTED = ("gemm_efficiency", "gemm_fp8_efficiency", "memory_efficiency",
               "gemm_serial_fraction", "attn_decode_efficiency", "step_overhead_s",
               "layer_overhead_s", "sequence_overhead_s")

#: vLLM's fp8 GEMM (`cutlass_scaled_mm`) against SGLang's sm_89 kernels on one L40S, bf16
#: output, Llama-3.1-8B shapes, from sgl-project/sglang#6756 (solrex, 2025-05-30), the "Main
#: (with L40S)" tables of sgl-kernel/benchmark/bench_fp8_gemm.py: (tokens M, N, K) ->
#: (vllm-fp8-bf16, sglang-fp8-bf16). The script reports (2MNK + MN) x 4 bytes (its float32
#: inputs' element size) / s, so both columns are 4x their TFLOP/s and the ratio is the
#: kernels' speed ratio. (The N=4096, M=2048 row's SGLang figure is cut off in the source.)
SGLANG_6756_L40S = {(1024, 6144, 4096): (8.118999e5, 1.266360e6),
                    (2048, 6144, 4096): (1.045980e6, 1.448570e6),
                    (1024, 4096, 4096): (9.870155e5, 1.109373e6)}


def _geomean_ratio(table) -> float:
    """Geometric mean of the first column over the second."""
    return math.exp(sum(math.log(a / b) for a, b in table.values()) / len(table))


#: vLLM's fp8 GEMMs on the L40S (Ada, sm_89): the tuned kernels reach what the fit's
#: `gemm_fp8_efficiency` gives on other GPUs -- TensorRT-LLM's 54 L40S fp8 throughput rows
#: sit at 5.1% median |error| from its own profile on the same hardware constants -- and
#: vLLM's reach this fraction of them
VLLM_FP8_BY_HARDWARE = (("l40s", _geomean_ratio(SGLANG_6756_L40S)),)
VLLM_FP8_SOURCE = ("l40s: vLLM's fp8 GEMM kernel (cutlass_scaled_mm) against SGLang's sm_89 "
                   "kernels on one L40S at Llama-3.1-8B's shapes (1,024-2,048 tokens), "
                   "geometric mean of three speed ratios (0.64, 0.72, 0.89): "
                   "sgl-project/sglang#6756 (2025-05-30), 'Main (with L40S)' tables; "
                   "benchmarks/fit_engines.py SGLANG_6756_L40S")

#: what a profile derived from `vllm` without host costs says it is, and `vllm`'s data date
WITHOUT_HOST_COSTS = ("the constants of `vllm` (" + KRAI51 + "; " + REDHAT51 + "; " + ROCM51 +
                      ") with step_overhead_s and sequence_overhead_s 0: ")
VLLM_DATE = "July-August 2025 (the constants: MLPerf Inference v5.1, published 2025-09)"

PROFILES = {
    VLLM_06: dict(
        rows=lambda: _join(static_batches("vllm", hardware=("a100-40gb", "h100-sxm")),
                           static_ttfts("vllm", hardware=("a100-40gb", "h100-sxm")),
                           mlperf_runs("vllm", hardware=NVIDIA,
                                       keep=lambda row: not is_vllm_v1(row))),
        description="vLLM 0.6-0.7, the V0 engine (fitted on NVIDIA A100/H100 static batches "
        "and H200 MLPerf serving runs)",
        engine_version="vLLM 0.6.1.x (static batches: pip, version not pinned; the scripts' "
        "requirements match vLLM between 0.6.1.post2 and 0.6.2), 0.6.4 and 0.7.3 (MLPerf)",
        source=ARGONNE + "; NVIDIA rows only (A100-40GB, H100 SXM). And " + KRAI,
        data_date="2024-09-27 (static batches); February 2025 (MLPerf v5.0)",
        reserves_activations=True),
    "vllm": dict(
        rows=lambda: mlperf_runs("vllm", keep=is_vllm_v1),
        description="vLLM 0.9-0.10, the V1 engine (fitted on MLPerf v5.1 serving runs on "
        "H100, H200, L40S and MI300X)",
        engine_version="vLLM 0.9.2 (Krai; for ROCm: 0.9.2.dev364), 0.10.0 (Red Hat)",
        source=KRAI51 + ". And " + REDHAT51 + ". And " + ROCM51 + ". The constants these "
        "runs cannot show are `vllm-0.6`'s",
        data_date="July-August 2025 (MLPerf Inference v5.1, published 2025-09)",
        base=VLLM_06, fp8_by_hardware=VLLM_FP8_BY_HARDWARE, fp8_source=VLLM_FP8_SOURCE,
        reserves_activations=True,
        # what large serving batches on one or two GPUs per instance show; the shape factors
        # (few tokens, narrow shards), the prefill attention kernel and the all-reduce terms
        # stay vLLM 0.6's: MLPerf's steps hold hundreds of tokens, short prompts, TP <= 2
        fitted=VLLM_FITTED),
    "tensorrt-llm": dict(
        rows=lambda: _join(_no_moe(static_batches("tensorrt-llm")),
                           static_ttfts("tensorrt-llm"), offline_throughputs(),
                           online_runs(), mlperf_runs("tensorrt-llm")),
        description="TensorRT-LLM 0.11-0.17 (fitted on static batches, max-load throughput, "
        "online Triton runs and MLPerf serving runs)",
        engine_version="TensorRT-LLM 0.11.0 (static batches), 0.17 (max-load throughput), "
        "0.14.0 (online), main@2d234357 of 2024-07-16 (MLPerf v4.1)",
        source=ARGONNE + "; dense models (Mixtral rows left out: identical prompts route "
        "every sequence to the same experts). And " + PERF_OVERVIEW + ". And " + MLPERF41,
        data_date="2024-09-27 (0.11 runs); 0.17 and 0.14.0 tables of "
        "NVIDIA/TensorRT-LLM@258c7540c035; August 2024 (MLPerf v4.1)",
        reserves_activations=True),
    "sglang": dict(
        derive=("vllm", HOST_COSTS),
        check=("offline", "offline_errors", ("sglang",), "offline throughput of {n} sglang runs"),
        # vLLM's L40S factor measures its fp8 GEMMs against SGLang's own sm_89 kernels
        # (sgl-project/sglang#6756): SGLang runs the faster ones
        fp8_by_hardware=(), fp8_source="",
        description="SGLang 0.4 and later (vllm's kernel constants; host costs hidden by its "
        "overlap scheduler; not fitted, checked on MLPerf v5.0 and v5.1 Offline runs). Pair with "
        "serving.scheduler = prefill_first, admission = new_token_ratio, block_size = 1",
        engine_version="SGLang 0.4.3 and 0.4.9 (the runs it is checked on); the constants "
        "are vLLM 0.9.2-0.10.0's",
        source=WITHOUT_HOST_COSTS + SGLANG_OVERLAP + ". Checked, not fitted, on " + KRAI_SGLANG,
        data_date=VLLM_DATE + "; February and July-August 2025 (the SGLang runs)"),
    "vllm-async": dict(
        derive=("vllm", HOST_COSTS), reserves_activations=True,
        check=("closed_loop", "pr44594_errors", (),
               "output throughput of vllm-project/vllm#44594's {n} runs"),
        description="vLLM with async scheduling, on by default in releases of 2026 (vllm's "
        "kernel constants; the scheduler's host work per step and per sequence overlapped "
        "with the GPU's; not fitted, checked on vllm-project/vllm#44594's runs)",
        engine_version="vLLM main of 2026-06 (the runs it is checked on); the constants are "
        "vLLM 0.9.2-0.10.0's",
        source=WITHOUT_HOST_COSTS + VLLM_ASYNC + ". Checked, not fitted, on " + PR44594,
        data_date=VLLM_DATE + "; June 2026 (the runs it is checked on)"),
    "splitwise-2023": dict(
        rows=lambda: (read_measurements(Path(__file__).resolve().parent.parent / "simkit" /
                                        "data" / "measurements" / "splitwise.csv"), []),
        description="the engine of Splitwise's DGX-A100/H100 profiles (not named by the "
        "source; 2023)",
        engine_version="not named by the source",
        source=SPLITWISE, data_date="2023-11"),
}


def derive(name: str, spec: dict):
    """A profile that is another's constants with some set to zero (`spec["derive"]`: the
    base profile, as this run wrote it, and the constants zeroed), and the number of runs
    that judged it: its errors are simulated throughputs of measured runs it was not fitted
    on, all held out. `spec["check"]`: (phase key, the `fidelity` function giving the (run,
    simulated / measured - 1) pairs of those runs under a profile, its arguments before the
    profile, what the runs are) -- SGLang's MLPerf Offline runs (`offline_errors`), vLLM
    #44594's closed-loop runs (`pr44594_errors`)."""
    import tempfile

    import fidelity
    import numpy as np

    from simkit.calibrate.engine_fit import ErrorStats

    base_name, zeroed = spec["derive"]
    base = read_engine(ENGINE_DIR / f"{base_name}.toml")
    prof = replace(base, name=name, description=spec["description"], source=spec["source"],
                   data_date=spec["data_date"], engine_version=spec["engine_version"],
                   errors=(), path="", **{k: 0.0 for k in zeroed},
                   fp8_gemm_by_hardware=spec.get("fp8_by_hardware", base.fp8_gemm_by_hardware),
                   fp8_gemm_source=spec.get("fp8_source", base.fp8_gemm_source),
                   reserves_activations=spec.get("reserves_activations", False))
    phase, check, args, what = spec["check"]
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{name}.toml"
        path.write_text(engine_to_toml(prof))
        err = np.array([e for _, e in getattr(fidelity, check)(*args, str(path))])
    st = ErrorStats.of(err)
    pairs = tuple((f"heldout_simulated.{phase}.{k}", round(getattr(st, k), 4))
                  for k in ("median_abs", "median", "worst"))
    fit = (f"not fitted: {base_name}'s constants, {' and '.join(zeroed)} 0; errors: the "
           f"simulated {what.format(n=len(err))}, all held out")
    return replace(prof, errors=pairs, fit=fit), len(err)


def _join(*found):
    rows, skipped = [], []
    for r, s in found:
        rows += r
        skipped += s
    return rows, skipped


def _no_moe(found):
    from simkit.catalog import load_model

    rows, skipped = found
    kept = [m for m in rows if not load_model(m.setup.model).is_moe]
    skipped = skipped + [(m.where, "MoE with identical prompts") for m in rows
                         if load_model(m.setup.model).is_moe]
    return kept, skipped


def report(cal) -> str:
    lines = []
    c = cal.profile.constants()
    lines.append("  constants: " + ", ".join(f"{k}={v:.4g}" for k, v in c.items()
                                              if v is not None))
    for split, by in [("in-sample", cal.in_sample), *cal.heldout.items()]:
        for phase, st in by.items():
            lines.append(f"  {split:26} {phase:8} n={st.n:5d} median|err|={st.median_abs:6.1%} "
                         f"median={st.median:+6.1%} worst={st.worst:+7.1%}")
    for split, why in cal.skipped.items():
        lines.append(f"  {split:26} not run: {why}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fit and print, write nothing")
    ap.add_argument("--prior", action="append", default=[], metavar="CONSTANT=CENTRE",
                    help="with --check: move a constant's prior centre (a study; "
                    "simkit.calibrate.engine_fit.PRIORS), e.g. gemm_width_half=16")
    ap.add_argument("names", nargs="*", default=list(PROFILES))
    args = ap.parse_args(argv)
    if args.prior and not args.check:
        ap.error("--prior: only with --check (a shipped profile is fitted on the shipped priors)")
    moved = {}
    for item in args.prior:
        key, _, value = item.partition("=")
        if key not in PRIORS:
            ap.error(f"--prior: unknown constant {key!r}")
        try:
            moved[key] = (float(value), *PRIORS[key][1:])
        except ValueError:
            ap.error(f"--prior: {item!r} is not CONSTANT=NUMBER")
    shipped = dict(PRIORS)
    PRIORS.update(moved)
    try:
        return _fit_all(args)
    finally:  # a study's priors end with it
        PRIORS.update(shipped)


def _fit_all(args) -> int:
    for name in args.names:
        spec = PROFILES[name]
        if "derive" in spec:
            prof, n = derive(name, spec)
            print(f"{name}: derived from {spec['derive'][0]}; {n} runs simulated, held out")
            errs = dict(prof.errors)
            for k in sorted({k.rsplit(".", 1)[0] for k in errs}):
                print(f"  {k:30} median|err|={errs[k + '.median_abs']:6.1%} "
                      f"median={errs[k + '.median']:+6.1%} worst={errs[k + '.worst']:+7.1%}")
            if not args.check:
                out = ENGINE_DIR / f"{name}.toml"
                out.write_text(engine_to_toml(prof))
                print(f"  wrote {out}")
            continue
        rows, skipped = spec["rows"]()
        design = Design(rows)
        base = ROOFLINE
        if spec.get("base"):  # the constants it does not fit: as written by this run
            base = read_engine(ENGINE_DIR / f"{spec['base']}.toml")
        base = replace(base, fp8_gemm_by_hardware=spec.get("fp8_by_hardware", ()),
                       fp8_gemm_source=spec.get("fp8_source", ""),
                       # how the engine sizes its cache: `EngineProfile.reserves_activations`
                       reserves_activations=spec.get("reserves_activations", False))
        cal = calibrate_engine(design, base, name, description=spec["description"],
                               source=spec["source"], data_date=spec["data_date"],
                               engine_version=spec["engine_version"], group_splits=SPLITS,
                               fitted=spec.get("fitted", FITTED))
        print(f"{name}: {len(rows)} measurements fitted, {len(skipped)} left out")
        print(report(cal))
        if not args.check:
            out = ENGINE_DIR / f"{name}.toml"
            out.write_text(engine_to_toml(cal.profile))
            print(f"  wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
