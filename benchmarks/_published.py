"""Shared by `benchmarks/fit_engines.py` and `benchmarks/fidelity.py`: the shipped throughput
and latency files (`simkit/data/measurements/throughput_*.csv`) as rows, and the static-batch
rows as `Measurement`s for the step-time fit.

Rows whose model or GPU has no catalog entry are counted and skipped (with the reason);
nothing else is dropped here.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path

from simkit.calibrate.measurements import Measurement, Setup
from simkit.errors import SimkitError

DATA = Path(__file__).resolve().parent.parent / "simkit" / "data" / "measurements"


def read_rows(name: str) -> list[dict]:
    with open(DATA / name, newline="") as f:
        return list(csv.DictReader(f))


_DTYPES = {"fp16": "fp16", "bf16": "bf16", "fp8": "fp8", "nvfp4": "nvfp4"}


def setup_of(row: dict) -> Setup:
    """The row's model, GPU, TP degree and dtypes: the KV cache runs `kv_precision` where a
    file has that column and the row fills it, else the weights' precision (fp8 weights run an
    fp8 KV cache, as the README says of every fp8 row without a `kv_precision`)."""
    wd = _DTYPES[row["precision"]]
    kd = _DTYPES[row["kv_precision"]] if row.get("kv_precision") else wd
    return Setup(row["model"], row["hardware"], int(row["tensor_parallel"]), wd, kd)


def loadable(setup: Setup) -> str:
    """'' when the catalog knows the setup's model and GPU, else why not."""
    from simkit.calibrate.measurements import step_model

    try:
        step_model(setup)
    except SimkitError as e:
        return e.messages[0]
    return ""


def _bench_rows(engine: str, metric: str, hardware, skipped: list):
    """(csv line, row, setup) of LLM-Inference-Bench's `metric` rows of `engine` on
    `hardware` (None: any) that simkit can load; the others go to `skipped` with why."""
    for i, row in enumerate(read_rows("throughput_llm_inference_bench.csv"), start=2):
        if row["engine"] != engine or row["metric"] != metric:
            continue
        if hardware and row["hardware"] not in hardware:
            continue
        setup = setup_of(row)
        why = loadable(setup)
        if why:
            skipped.append((i, why))
            continue
        yield i, row, setup


def static_batches(engine: str, hardware=None):
    """LLM-Inference-Bench e2e rows of `engine` as static-batch Measurements, and the rows
    skipped with their reasons. A batch whose KV cache does not fit beside the weights (in
    90% of memory, vLLM's default gpu_memory_utilization) is skipped for the closed form:
    the engine ran it in waves."""
    out, skipped = [], []
    for i, row, setup in _bench_rows(engine, "e2e_s", hardware, skipped):
        b, n_in, n_out = int(row["concurrency_or_batch"]), int(row["input_tokens"]), \
            int(row["output_tokens"])
        if not fits(setup, b, n_in + n_out, pass_=static_pass(b, n_in)):
            skipped.append((i, "KV cache of the batch does not fit"))
            continue
        out.append(Measurement.static_batch(setup, b, n_in, n_out, float(row["value"]),
                                            where=f"throughput_llm_inference_bench.csv:{i}"))
    return out, skipped


def static_ttfts(engine: str, hardware=None):
    """LLM-Inference-Bench `ttft_s` rows of `engine` (the mean time to first token of a batch
    of B prompts of L tokens, one output token each) as Measurements, phase `ttft`, and the
    rows skipped. The engine prefills the batch in steps of at most P prompt tokens -- vLLM
    0.6 without chunked prefill: max_num_batched_tokens = max(max_model_len, 2048), so 4096
    for Llama-2 and 8192 for Llama-3; TensorRT-LLM: max_num_tokens 8192 -- so k = P // L
    prompts per step, and the j-th step's prompts get their first token after j steps: the
    mean over the batch is (1 + 2 + ... + B/k) k / B steps of k prompts."""
    from simkit.calibrate.measurements import Step, step_model

    out, skipped = [], []
    for i, row, setup in _bench_rows(engine, "ttft_s", hardware, skipped):
        b, n = int(row["concurrency_or_batch"]), int(row["input_tokens"])
        cap = max(step_model(setup).max_context, 2048) if engine == "vllm" else 8192
        k = max(1, min(b, cap // n))
        steps = -(-b // k)
        mean_steps = sum(j * min(k, b - (j - 1) * k) for j in range(1, steps + 1)) / b
        out.append(Measurement(setup, "ttft", float(row["value"]),
                               ((mean_steps, Step(prefill_batch=k, prompt_tokens=n)),),
                               where=f"throughput_llm_inference_bench.csv:{i}"))
    return out, skipped


def reserving_roofline():
    """The roofline's step times with the memory of an engine that reserves its profiling
    pass's activations, as every fitted engine (vLLM, TensorRT-LLM) does
    (`EngineProfile.reserves_activations`)."""
    from dataclasses import replace

    from simkit.costs.engine import ROOFLINE

    return replace(ROOFLINE, reserves_activations=True)


def kv_room(setup: Setup, memory_fraction: float, pass_tokens: int = 0,
            pass_sequences: int = 0) -> float:
    """KV bytes a measured vLLM or TensorRT-LLM instance holds: THE capacity formula
    (`StepCostModel.kv_capacity_bytes`: device memory x GPUs x fraction - weights - the
    activations of a profiling pass of `pass_tokens` tokens and `pass_sequences` sampled
    rows, both engines' reserve: `simkit.costs.activations`); 0 when nothing is left."""
    from simkit.calibrate.measurements import step_model

    try:
        return float(step_model(setup, reserving_roofline()).kv_capacity_bytes(
            memory_fraction, pass_tokens, pass_sequences))
    except SimkitError:
        return 0.0


def static_pass(batch: int, prompt: int) -> tuple[int, int]:
    """(tokens, sequences) of the profiling pass of an LLM-Inference-Bench static batch: the
    step budget `benchmarks/fidelity.py` runs it with (8192 tokens, or the prompt when
    longer) and the batch."""
    return max(8192, prompt), batch


def fits(setup: Setup, batch: int, tokens: int, memory_fraction: float = 0.9,
         pass_: tuple[int, int] = (0, 0)) -> bool:
    import numpy as np

    from simkit.calibrate.measurements import step_model

    room = kv_room(setup, memory_fraction, *pass_)
    return room > 0 and batch * float(step_model(setup).kv_bytes(np.array([tokens]))[0]) <= room


#: the largest batch the shipped throughput comparisons let an engine run (TensorRT-LLM's
#: trtllm-bench builds engines with large max_batch_size; 2048 bounds the search)
MAX_BATCH = 2048


def trtllm_tokens(prompt: int) -> int:
    """The per-iteration token budget (TensorRT-LLM's max_num_tokens, 8192 by default) of an
    in-flight batch. It counts context and generation tokens alike, as simkit's
    max_batch_tokens does: a budget of exactly the prompt would admit a 20,000-token prompt
    only into an empty batch (simulated batches of one, 4-7% of the measured throughput).
    The engine fits those prompts beside a running batch (chunked context), so a prompt
    longer than 8192 - MAX_BATCH gets room for a full batch's generation tokens too."""
    return max(8192, prompt + MAX_BATCH)


def steady_batch(setup: Setup, tokens: int, memory_fraction: float = 0.95,
                 prompt: int = 0) -> int:
    """The batch an engine holds at maximum load: as many sequences of `tokens` as the KV
    cache (the memory left beside the weights and the activations of a MAX_BATCH-sequence
    pass at `trtllm_tokens(prompt)`) holds, at most MAX_BATCH."""
    import numpy as np

    from simkit.calibrate.measurements import step_model

    room = kv_room(setup, memory_fraction, trtllm_tokens(prompt), MAX_BATCH)
    per_seq = float(step_model(setup).kv_bytes(np.array([tokens]))[0])
    return MAX_BATCH if per_seq <= 0 else max(1, min(MAX_BATCH, int(room // per_seq)))


def offline_throughputs(engine: str = "tensorrt-llm"):
    """TensorRT-LLM's perf-overview offline rows (every request queued at once; output
    tokens/s of the group) as Measurements: at maximum load the engine keeps B sequences in
    flight (`steady_batch`, KV cache in 95% of memory as trtllm-bench sets it) and, per
    `output` tokens each, prefills B prompts (steps of at most 8192 tokens, TensorRT-LLM's
    default max_num_tokens) and runs `output` - 1 decode steps: a static batch of B, whose
    time is B x output / throughput. Rows whose context passes a sliding window of the
    catalog model are left out: the engine ran full attention there (simkit's mistral-7b
    runs its 4096-token window)."""
    from simkit.calibrate.measurements import step_model

    out, skipped = [], []
    for i, row in enumerate(read_rows("throughput_tensorrt_llm_perf_overview.csv"), start=2):
        if row["engine"] != engine or row["concurrency_or_batch"] != "max":
            continue
        setup = setup_of(row)
        why = loadable(setup)
        if why:
            skipped.append((i, why))
            continue
        n_in, n_out = int(row["input_tokens"]), int(row["output_tokens"])
        window = min((g.window for g in step_model(setup).kv_layout.groups if g.window),
                     default=None)
        if window is not None and n_in + n_out > window:
            skipped.append((i, f"context {n_in + n_out} passes the model's {window}-token "
                               "window (the engine ran full attention)"))
            continue
        b = steady_batch(setup, n_in + n_out, prompt=n_in)
        out.append(Measurement.static_batch(
            setup, b, n_in, n_out, b * n_out / float(row["value"]), phase="offline",
            where=f"throughput_tensorrt_llm_perf_overview.csv:{i}"))
    return out, skipped


#: an online series' rates whose mean TTFT stays within this factor of the series' lowest
#: rate's: the queue in front of the engine stays short, so the run is a steady state its
#: mean iteration describes (at 32 QPS and INF the measured TTFTs grow 2-400x: queueing)
ONLINE_TTFT_GROWTH = 1.5


def online_runs(engine: str = "tensorrt-llm"):
    """TensorRT-LLM 0.14's perf-overview online rows (Triton, Poisson arrivals at `rate` QPS,
    fixed prompt and answer lengths) as mean steady-state iterations
    (`Measurement.mean_step`, phase `server`), the rates that queue (`ONLINE_TTFT_GROWTH`)
    left out.

    A decoding request's tokens come one iteration apart, so the mean ITL is the mean
    iteration it decodes in. Besides itself, that iteration holds the other sequences
    decoding, rate x (output - 1) x ITL by Little's law, and prefills the rate x ITL prompts
    that arrive per iteration; the contexts average prompt + output / 2."""
    out, skipped = [], []
    name = "throughput_tensorrt_llm_perf_overview.csv"
    series: dict[tuple, dict[float, dict]] = {}
    for i, row in enumerate(read_rows(name), start=2):
        if row["engine"] != engine or not row["request_rate_per_s"] \
                or row["request_rate_per_s"] == "inf":
            continue
        key = (row["source"], row["model"], row["hardware"], row["tensor_parallel"],
               row["input_tokens"], row["output_tokens"])
        run = series.setdefault(key, {}).setdefault(float(row["request_rate_per_s"]),
                                                    {"line": i, "row": row})
        run[row["metric"]] = float(row["value"])
    for runs in series.values():
        ttft0 = runs[min(runs)]["ttft_s"]
        for rate, run in sorted(runs.items()):
            where = f"{name}:{run['line']}"
            setup = setup_of(run["row"])
            why = loadable(setup)
            if why:
                skipped.append((where, why))
                continue
            if run["ttft_s"] > ONLINE_TTFT_GROWTH * ttft0:
                skipped.append((where, f"queueing: TTFT {run['ttft_s']:.3f} s is over "
                                       f"{ONLINE_TTFT_GROWTH} x the {min(runs):g}-QPS "
                                       f"{ttft0:.3f} s"))
                continue
            n_in, n_out = int(run["row"]["input_tokens"]), int(run["row"]["output_tokens"])
            itl = run["itl_s"]
            out.append(Measurement.mean_step(
                setup, 1 + round(rate * (n_out - 1) * itl), n_in + n_out // 2, rate * itl,
                n_in, itl, where=where, phase="server"))
    return out, skipped


#: dataset-driven serving files with MLPerf runs
MLPERF_FILES = ("throughput_mlperf_inference_v4.1.csv",
                "throughput_mlperf_inference_v5.0_krai.csv",
                "throughput_mlperf_inference_v5.1_redhat.csv",
                "throughput_mlperf_inference_v5.1_krai.csv",
                "throughput_mlperf_inference_v5.1_rocm.csv")
#: per-sample lengths of each MLPerf data set, and whether a run's outputs are the reference
#: lengths scaled to the run's measured mean (OpenOrca, Mixtral's set: answers end at the
#: model's end-of-sequence token) or all at that mean (CNN/DailyMail: capped at 128, and every
#: run's mean is 128-129). See `benchmarks/_workloads.py`.
MLPERF_LENGTHS = {"openorca": ("lengths_openorca_llama2.csv", True),
                  "mlperf_mixtral": ("lengths_mlperf_mixtral.csv", True),
                  "cnn_dailymail": ("lengths_cnn_dailymail_llama3.1.csv", False)}
#: prompts of a set served to a model whose tokenizer is not the one its lengths file
#: counted with: (dataset, catalog-name prefix) -> tokens per token of the file. OpenOrca's
#: lengths are Llama-2 tokens, and Krai's open-division runs serve Llama-3.1-70B on them: "the
#: new tokenizer improves compression rates on a sample of English data from 3.17 to 3.94
#: characters per token" over Llama 2's (Llama Team, "The Llama 3 Herd of Models",
#: arXiv:2407.21783, on its tokenizer; "roughly 3.2 to 4" in Meta's DeepLearning.AI course
#: on Llama 3.2's tokenizer). Answers need no such factor: each run's own mean, in its model's
#: tokens, sets their level.
LLAMA2_CHARS_PER_TOKEN, LLAMA3_CHARS_PER_TOKEN = 3.17, 3.94
RETOKENIZED = {("openorca", "llama-3"): LLAMA2_CHARS_PER_TOKEN / LLAMA3_CHARS_PER_TOKEN}
#: vLLM >= 0.8 (the V1 engine, every prompt prefilled in chunks within the token budget):
#: `EngineArgs` defaults of the LLM class by device -- at least 70 GiB and not an A100
#: (H100, H200, B200, MI300X, MI325X): max_num_seqs 1024, max_num_batched_tokens 16384;
#: other GPUs 256 and 8192 (vllm/engine/arg_utils.py of 0.9-0.10); gpu_memory_utilization 0.9
V1_DEFAULTS = {"large": (1024, 16384, 0.9), "other": (256, 8192, 0.9)}
V1_LARGE_GPUS = ("h100-sxm", "h100-pcie", "h200", "b200", "mi300x", "mi325x")


def v1_defaults(hardware: str) -> tuple[int, int, float]:
    """(max_num_seqs, max_num_batched_tokens, gpu_memory_utilization) vLLM >= 0.8 picks."""
    return V1_DEFAULTS["large" if hardware in V1_LARGE_GPUS else "other"]


#: engine settings where a row leaves them empty: (max_batch, max_batch_tokens, memory
#: fraction). vLLM 0.4-0.7 (V0): max_num_seqs 256 ... but MLPerf submitters raise it (AMD's
#: v4.1 server kept ~390 requests per GPU in flight), so MLPerf rows without a stated batch
#: are bounded by memory alone (MAX_BATCH); max_num_batched_tokens: max(max_model_len, 2048)
#: without chunked prefill (Llama-2: 4096; the sglang runs set max_model_len 4096);
#: gpu_memory_utilization 0.9. SGLang 0.3: chunked_prefill_size 8192, running requests bounded
#: by memory. TensorRT-LLM: max_num_tokens 8192, kv_cache_free_gpu_mem_fraction as 95% of
#: memory (as the perf-overview rows).
ENGINE_DEFAULTS = {"vllm": (256, 4096, 0.9), "sglang": (MAX_BATCH, 8192, 0.9),
                   "tensorrt-llm": (MAX_BATCH, 8192, 0.95)}


#: max_new_tokens of MLPerf's Llama-2-70B reference harness (mlcommons/inference@0257f68baa72
#: language/llama2-70b/SUT.py `gen_kwargs`), the token limit the OpenOrca runs' requests are
#: taken to send (Krai's harness, requests through the engines' OpenAI-compatible servers,
#: was not readable here)
MLPERF_MAX_NEW_TOKENS = 1024

#: samples per MLPerf data set (every log's performance_sample_count)
MLPERF_SET = {"openorca": 24576, "cnn_dailymail": 13368, "mlperf_mixtral": 15000}


def mlperf_lengths(dataset: str, mean_output: float, model: str = ""):
    """(prompt lengths, output lengths) of an MLPerf data set's samples, with outputs as a
    run of mean `mean_output` generated them (`MLPERF_LENGTHS`), prompts in `model`'s tokens
    (`RETOKENIZED`)."""
    import numpy as np

    name, scaled = MLPERF_LENGTHS[dataset]
    ref = _lengths_file(name)
    if scaled:
        out = np.maximum(1, np.rint(ref[:, 1] * (mean_output / ref[:, 1].mean())))
    else:
        out = np.full(len(ref), float(round(mean_output)))
    prompt = ref[:, 0].copy()
    factor = retokenization(dataset, model)
    if factor is not None:
        prompt = np.maximum(1, np.rint(prompt * factor))
    return prompt, out


@functools.lru_cache(maxsize=None)
def _lengths_file(name: str):
    """A lengths file's (input, output) columns, read once per process (every simulated run
    of a set draws from it); callers get fresh arrays from it, never change it."""
    import numpy as np

    ref = np.loadtxt(DATA / name, delimiter=",", skiprows=1)
    ref.flags.writeable = False
    return ref


def retokenization(dataset: str, model: str) -> float | None:
    """`RETOKENIZED`'s factor for `model`'s prompts of `dataset` (None: the file's tokens)."""
    return next((f for (ds, prefix), f in RETOKENIZED.items()
                 if ds == dataset and model.startswith(prefix)), None)


def mlperf_stats(dataset: str, mean_output: float,
                 model: str = "") -> tuple[float, float, float]:
    """(mean prompt, mean output, time-averaged decode context) of an MLPerf data set with
    outputs as `mlperf_lengths` builds them. The context a running sequence decodes at,
    averaged over the time it spends decoding, is E[(in + out/2) x out] / E[out]: a long
    answer spends proportionally more steps in the batch."""
    import numpy as np

    prompt, out = mlperf_lengths(dataset, mean_output, model)
    ctx = float(np.sum((prompt + out / 2) * out) / np.sum(out))
    return float(prompt.mean()), float(out.mean()), ctx


def version_of(row) -> tuple[int, int, int]:
    """(major, minor, patch) of the row's engine version (patch 0 where it states none);
    (0, 0, 0) where the source states no version."""
    import re

    version = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", row["engine_version"])
    if not version:
        return (0, 0, 0)
    return (int(version[1]), int(version[2]), int(version[3] or 0))


def is_vllm_v1(row) -> bool:
    """A vLLM row that ran the V1 engine: version 0.8 or later (V1 by default) unless the
    source turned it off (`VLLM_USE_V1=0`)."""
    return (row["engine"] == "vllm" and version_of(row) >= (0, 8)
            and "VLLM_USE_V1=0" not in row["engine_version"])


def engine_settings(row) -> tuple[int, int, float]:
    """(batch limit, token budget per step, memory fraction) a serving run ran with: the
    row's own where it states them, else its engine's defaults (`v1_defaults` for vLLM >=
    0.8; `ENGINE_DEFAULTS`), MAX_BATCH for a V0 MLPerf run that states none."""
    if is_vllm_v1(row):
        mb, mbt, mf = v1_defaults(row["hardware"])
    else:
        mb, mbt, mf = ENGINE_DEFAULTS[row["engine"]]
        if row["engine"] == "vllm" and row.get("dataset") in MLPERF_LENGTHS:
            mb = MAX_BATCH
    return (int(row["max_batch"] or mb), int(row["max_batch_tokens"] or mbt),
            float(row["memory_fraction"] or mf))


def instances(row) -> int:
    """Data-parallel engine instances of a run: its GPUs over one instance's tensor
    parallelism."""
    return int(row["num_gpus"]) // int(row["tensor_parallel"])


def caches_prefixes(row) -> bool:
    """Whether a run's engine kept a prefix cache: every engine here but vLLM's V0, which had
    it off by default (`EngineArgs.enable_prefix_caching = False`, 0.4-0.7); V1 turned it on
    by default (0.8), SGLang's radix cache is on unless disabled."""
    return not (row["engine"] == "vllm" and not is_vllm_v1(row))


def shared_openings(row) -> float:
    """Tokens per prompt a run's prefix cache holds once for every prompt of the same opening
    (`_workloads.shared_prefix_tokens`: full blocks of the template and system message);
    0 where the engine kept no prefix cache (`caches_prefixes`)."""
    from _workloads import shared_prefix_tokens

    return shared_prefix_tokens(row["dataset"], row["model"]) if caches_prefixes(row) else 0.0


def runs_prompts_alone(row) -> bool:
    """Whether a run's engine prefills its prompts in iterations of their own: vLLM's V0
    engine without chunked prefill (which V0 turns on by itself only past 32K tokens of
    max_model_len; every V0 run shipped serves a 4K-context Llama-2 or sets max_model_len
    4096) and SGLang (prefill batches apart from decode batches unless --enable-mixed-chunk);
    not vLLM V1 (chunked prefill, prompts beside decodes) nor TensorRT-LLM (in-flight
    batching)."""
    return (row["engine"] == "vllm" and not is_vllm_v1(row)) or row["engine"] == "sglang"


def mlperf_runs(engine: str, hardware=None, keep=lambda row: True):
    """MLPerf runs of `engine` (`MLPERF_FILES`; `hardware`: only those GPUs; `keep`: a
    predicate on a run's first row) as `Measurement`s of one data-parallel instance, and the
    runs skipped with why.

    An Offline run is the iterations its engine ran (`_runs.offline_schedule`: simulated in
    the engine's loop with its settings; with every request queued at once they do not
    depend on the step times), whose sum is the run's wall time per instance, its samples
    over its requests/s per instance: preemptions and recomputed prompts count, as they
    did. A V0 Offline run whose source states no batch limit is skipped (its batch is
    unknown). Except vLLM V1's: with every sample queued, simkit's V1 loop admits up to
    the run's batch limit and preempts whenever memory runs out (12,534 times in Krai's
    v5.1 8x H200 run, 14% of its tokens recomputed) -- as often as the engine does, where a
    measured V1 run counts its preemptions (`preemptions_vllm_pr44594.csv`) -- but the step
    formula prices those iterations 8-22% above Krai's runs' wall time while it prices
    their Server runs within a few percent, and its schedule misses how the engine's
    throughput moved with the runs' limits (Krai's x8 run, 1,232 sequences and 8,121
    tokens per iteration, was 5% faster per instance than the x16 one, 1,029 and 21,307;
    simulated, the two are equal), so a V1 Offline run is the steady batch its memory,
    batch limit and token budget allow (V1's defaults where the run states none,
    `engine_settings`) at the run's mean decode context (`mlperf_stats`): B decodes plus the B x
    computed prompt / mean output prompt tokens that replace the answers finished, per
    iteration (Red Hat's H100 run, 4,096 tokens, holds 524, not its 1,024 batch limit),
    lasting B / (lambda x mean output).

    A Server run is its mean steady-state iteration by Little's law: it completes lambda
    requests/s per instance, each spending e2e - TTFT seconds decoding, so B = lambda x
    (e2e - TTFT) sequences decode in every iteration, which lasts the mean TPOT, and lambda x
    TPOT prompts (of the mean prompt length) are prefilled per iteration
    (`Measurement.mean_step`; an engine that runs prompts in iterations of their own,
    `runs_prompts_alone`, spends those between its decode iterations).

    Both kinds count a prompt as the simulator runs it: an engine with a prefix cache
    (`caches_prefixes`) holds the full blocks of the openings its prompts share once and
    computes only the rest (`shared_openings`: 49 of Krai's 179 Llama-3.1 tokens per
    OpenOrca prompt), so the mean prompt is computed from there and a sequence holds the
    rest of its context. Phases `server` and `offline`; Interactive runs are Server runs
    under tighter latency limits."""
    import numpy as np

    from simkit.calibrate.measurements import step_model

    out, skipped = [], []
    for name in MLPERF_FILES:
        runs: dict[str, list[dict]] = {}
        for i, row in enumerate(read_rows(name), start=2):
            if row["engine"] == engine and (not hardware or row["hardware"] in hardware):
                runs.setdefault(row["source"], []).append((i, row))
        for source, rows in runs.items():
            line, row = rows[0]
            if not keep(row):
                continue
            where = f"{name}:{line}"
            setup = setup_of(row)
            why = loadable(setup)
            if why:
                skipped.append((where, why))
                continue
            m = {r["metric"]: float(r["value"]) for _, r in rows}
            inst = instances(row)
            lam = m["requests_per_s"] / inst
            offline = row["concurrency_or_batch"] == "max"
            if offline and not is_vllm_v1(row):
                if not row["max_batch"]:
                    skipped.append((where, "offline run without a stated batch limit: the "
                                           "batch it kept in flight is unknown"))
                    continue
                from _runs import offline_schedule

                n = MLPERF_SET[row["dataset"]]
                _, steps = offline_schedule(row, n)
                out.append(Measurement(setup, "offline", n / lam, steps, where))
                continue
            e_in, e_out, ctx = mlperf_stats(row["dataset"], float(row["mean_output_tokens"]),
                                            row["model"])
            # the shared openings' full blocks a prefix cache holds: computed once, held once
            # (as the simulator runs the run: `_runs.serving_scenario`)
            cached = shared_openings(row)
            if offline:  # V1: the steady batch its memory holds (the docstring)
                max_batch, budget, frac = engine_settings(row)
                sm = step_model(setup)
                room = kv_room(setup, frac, budget, max_batch)
                per_seq = float(sm.kv_bytes(np.array([round(ctx - cached)]))[0])
                # each iteration's tokens, B decodes + the B (e_in - cached) / e_out prompt
                # tokens that keep the batch full, fit the engine's token budget
                b = min(max_batch, int(room // per_seq),
                        int(budget // (1 + (e_in - cached) / e_out)))
                t = b / (lam * e_out)
            else:
                b = round(lam * (m["e2e_s"] - m["ttft_s"]))
                t = m["tpot_s"]
            out.append(Measurement.mean_step(setup, b, round(ctx), lam * t,
                                             round(e_in - cached), t, where=where,
                                             phase="offline" if offline else "server",
                                             prompts_alone=runs_prompts_alone(row),
                                             cached_tokens=round(cached)))
    return out, skipped
