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
- `throughput_tensorrt_llm_perf_overview.csv`: offline throughput (all requests queued at
  once, output tokens/s) through the simulator with four batches' worth of requests (the
  largest batch the KV cache and the 2048 batch limit allow; at least 1,000, at most 30,000:
  the source ran 1,000-30,000), KV cache in 95% of memory
  (trtllm-bench's kv_cache_free_gpu_mem_fraction), at most 8192 tokens per step
  (TensorRT-LLM's default max_num_tokens), batch at most 2048; online rows (Poisson arrivals
  at the stated QPS, 500 requests as the source) through the simulator, comparing mean TTFT,
  mean ITL (simkit's mean TPOT), request and token throughputs.
- `throughput_mlperf_inference_v4.1.csv`: not compared -- its requests are the OpenOrca set
  with per-request lengths the file does not carry (only the mean output, ~290 tokens).
- `throughput_vllm_mi300x_oracle.csv`: static batches and offline throughput of Llama 3.1
  405B through the simulator, when the model catalog has llama-3.1-405b.

Rows whose model or GPU the catalog lacks are counted as skipped. Each simkit profile is
compared with the measurements of its own engine; `roofline` (no engine terms) is shown
beside it as the baseline; DeepSpeed-MII has no profile and is compared with `vllm`.
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

from _published import (DATA, MAX_BATCH, loadable, read_rows, setup_of,  # noqa: E402
                        steady_batch)

from simkit.errors import SimkitError  # noqa: E402

#: measured engine -> simkit profiles compared with it (its own first)
PROFILES_FOR = {"vllm": ("vllm", "roofline"), "tensorrt-llm": ("tensorrt-llm", "roofline"),
                "deepspeed-mii": ("vllm", "roofline")}
SPLITWISE_PROFILES = ("splitwise-2023", "vllm", "tensorrt-llm", "roofline")


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
            e = np.array(self.err[key])
            yield key, len(e), float(np.median(np.abs(e))), float(np.median(e)), \
                float(e[np.argmax(np.abs(e))])


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


def _scenario(setup, engine, *, requests, rate, prompt, output, max_batch, fraction,
              batch_tokens):
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
                    "max_seq_len": prompt + output}})


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
        for prof in PROFILES_FOR[row["engine"]]:
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
            table.add((name, row["engine"], row["hardware"], prof, row["metric"]), got,
                      float(row["value"]))


_ONLINE = {"ttft_s": lambda s: s["ttft_s"]["mean"], "itl_s": lambda s: s["tpot_s"]["mean"],
           "requests_per_s": lambda s: s["throughput_requests_per_s"],
           "output_tokens_per_s": lambda s: s["throughput_tokens_per_s"],
           "total_tokens_per_s": lambda s: s["throughput_tokens_per_s"]
           + s["prompt_throughput_tokens_per_s"]}


def trtllm_overview(table: Table, quick: bool) -> None:
    name = "throughput_tensorrt_llm_perf_overview.csv"
    table.method[name] = ("simulator: offline max-load throughput (1,000-30,000 requests at "
                          "t = 0) and "
                          "online Poisson runs at the stated QPS (500 requests)")
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
        for prof in PROFILES_FOR[row["engine"]]:
            key = (setup, prof, n_in, n_out, offline, rate)
            if key not in runs:
                try:
                    runs[key] = _simulate(_scenario(
                        setup, prof, rate=rate,
                        requests=_offline_requests(setup, n_in + n_out) if offline else 500,
                        prompt=n_in, output=n_out, max_batch=MAX_BATCH, fraction=0.95,
                        batch_tokens=max(8192, n_in)))
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


def _offline_requests(setup, tokens: int) -> int:
    """Enough requests that the run spends most of its time at the largest batch the KV
    cache (95% of memory) and the batch limit allow (`_published.steady_batch`): four
    batches' worth, at least 1,000 and at most 30,000 (the source's range)."""
    return int(min(30000, max(1000, 4 * steady_batch(setup, tokens))))


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
        for prof in PROFILES_FOR["vllm"]:
            try:
                summ = _simulate(_scenario(setup, prof, requests=b, rate=1e9, prompt=n_in,
                                           output=n_out, max_batch=max(b, 256), fraction=0.9,
                                           batch_tokens=8192))
            except SimkitError as e:
                table.skipped[name][e.messages[0][:80]] += 1
                break
            m = row["metric"]
            got = summ["simulated_seconds"] if m == "e2e_s" else summ["throughput_tokens_per_s"]
            table.add((name, "vllm", row["hardware"], prof,
                       ("offline " if offline else "batch ") + m), got, float(row["value"]))


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
    argonne(table, args.quick)
    trtllm_overview(table, args.quick)
    oracle(table)
    table.method["throughput_mlperf_inference_v4.1.csv"] = (
        "not compared: per-request lengths of the OpenOrca set are not in the file")
    if args.markdown:
        print("| dataset | measured engine | GPU | simkit engine | phase / metric | n | "
              "median abs err | signed median | worst |")
        print("| --- | --- | --- | --- | --- | ---: | ---: | ---: | ---: |")
        for key, n, mae, med, worst in table.rows():
            ds, eng, gpu, prof, metric = key
            print(f"| {ds.removesuffix('.csv')} | {eng} | {gpu} | {prof} | {metric} | {n} | "
                  f"{mae:.1%} | {med:+.1%} | {worst:+.1%} |")
    else:
        print(f"{'dataset':42} {'engine':13} {'GPU':10} {'simkit':14} {'phase/metric':28} "
              f"{'n':>5} {'med|err|':>9} {'median':>8} {'worst':>8}")
        for key, n, mae, med, worst in table.rows():
            ds, eng, gpu, prof, metric = key
            print(f"{ds:42} {eng:13} {gpu:10} {prof:14} {metric:28} {n:5d} {mae:9.1%} "
                  f"{med:+8.1%} {worst:+8.1%}")
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
