"""Shared by `benchmarks/fit_engines.py` and `benchmarks/fidelity.py`: the shipped throughput
and latency files (`simkit/data/measurements/throughput_*.csv`) as rows, and the static-batch
rows as `Measurement`s for the step-time fit.

Rows whose model or GPU has no catalog entry are counted and skipped (with the reason);
nothing else is dropped here.
"""

from __future__ import annotations

import csv
from pathlib import Path

from simkit.calibrate.measurements import Measurement, Setup
from simkit.errors import SimkitError

DATA = Path(__file__).resolve().parent.parent / "simkit" / "data" / "measurements"
THROUGHPUT_FILES = ("throughput_llm_inference_bench.csv",
                    "throughput_tensorrt_llm_perf_overview.csv",
                    "throughput_mlperf_inference_v4.1.csv", "throughput_vllm_mi300x_oracle.csv")


def read_rows(name: str) -> list[dict]:
    with open(DATA / name, newline="") as f:
        return list(csv.DictReader(f))


def setup_of(row: dict) -> Setup:
    """The row's model, GPU, TP degree and dtypes (fp8 weights run an fp8 KV cache, as the
    README says of every fp8 row)."""
    prec = row["precision"]
    wd = {"fp16": "fp16", "bf16": "bf16", "fp8": "fp8"}[prec]
    return Setup(row["model"], row["hardware"], int(row["tensor_parallel"]), wd, wd)


def loadable(setup: Setup) -> str:
    """'' when the catalog knows the setup's model and GPU, else why not."""
    from simkit.calibrate.measurements import step_model

    try:
        step_model(setup)
    except SimkitError as e:
        return e.messages[0]
    return ""


def static_batches(engine: str, hardware=None):
    """LLM-Inference-Bench e2e rows of `engine` as static-batch Measurements, and the rows
    skipped with their reasons. A batch whose KV cache does not fit beside the weights (in
    90% of memory, vLLM's default gpu_memory_utilization) is skipped for the closed form:
    the engine ran it in waves."""
    out, skipped = [], []
    for i, row in enumerate(read_rows("throughput_llm_inference_bench.csv"), start=2):
        if row["engine"] != engine or row["metric"] != "e2e_s":
            continue
        if hardware and row["hardware"] not in hardware:
            continue
        setup = setup_of(row)
        why = loadable(setup)
        if why:
            skipped.append((i, why))
            continue
        b, n_in, n_out = int(row["concurrency_or_batch"]), int(row["input_tokens"]), \
            int(row["output_tokens"])
        if not fits(setup, b, n_in + n_out):
            skipped.append((i, "KV cache of the batch does not fit"))
            continue
        out.append(Measurement.static_batch(setup, b, n_in, n_out, float(row["value"]),
                                            where=f"throughput_llm_inference_bench.csv:{i}"))
    return out, skipped


def fits(setup: Setup, batch: int, tokens: int, memory_fraction: float = 0.9) -> bool:
    import numpy as np

    from simkit.calibrate.measurements import step_model

    sm = step_model(setup)
    room = sm.hardware.memory_capacity_bytes * sm.gpus * memory_fraction - sm.weight_bytes
    return room > 0 and batch * float(sm.kv_bytes(np.array([tokens]))[0]) <= room
