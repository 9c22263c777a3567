"""Convert Splitwise's measured step times to simkit's measurements CSV.

    python benchmarks/convert_splitwise.py SPLITWISE_PERF_MODEL.csv \\
        -o simkit/data/measurements/splitwise.csv [--flagged FLAGGED.csv]

Input: `data/perf_model.csv` of Mutinifni/splitwise-sim (commit 8f99e7dc9b40, MIT License),
measured on DGX-A100 and DGX-H100 servers for Patel et al., "Splitwise", ISCA 2024
(arXiv:2311.18677). Columns: model, hardware, prompt_size (tokens per prompt), batch_size,
token_size (tokens to generate), peak_power, average_power, prompt_time (ms, prefill of the
whole batch), token_time (ms, mean decode iteration), e2e_time (ms), tensor_parallel.

Output: `model,hardware,tensor_parallel,phase,batch_size,prompt_tokens,context_tokens,seconds`,
seconds being the source's milliseconds with the decimal point moved (no binary rounding).
Each kept source row gives one `prefill` row (batch_size prompts of prompt_size tokens on an
empty cache: context_tokens 0) and one `decode` row (one iteration of batch_size sequences;
prompt_tokens 0, since a decode step brings no prompt).

Decisions (each is checked against the numbers by tests/test_measurements_data.py):

- Repeats are kept as separate rows, not reduced to a median. Each configuration was run five
  times (the 512x1x128 point fifteen: it lies on all three sweeps), and in the runs that asked
  for 256 or more tokens generation often stopped at an end-of-sequence token after a
  different number of tokens in each repeat (see below). Such repeats measured the mean decode
  step over different context ranges, so they are different measurements; a median would mix
  them. A least-squares fit over the repeats is a fit to their means, so nothing is lost.

- Decode context. token_time is the mean of the decode iterations a run actually performed.
  The source rows satisfy e2e = prompt_time + n * token_time + a few ms, so
  n_est = (e2e - prompt_time) / token_time is the number of decode iterations plus a fraction
  (0.04 to 1.5 on the rows that ran to token_size: CPU work outside the timed steps). We take
  n = min(token_size - 1, floor(n_est)). Decode iteration k (k = 1..n) feeds generated token k
  and attends to prompt_size + k tokens (the cached ones plus itself; simkit's decode context,
  `cached + 1` in simkit/sim/replica.py). Decode time is affine in the context, so the mean of
  the n iterations equals one iteration at the mean context prompt_size + (n + 1) / 2; we write
  prompt_size + (n + 1) // 2 (exact for odd n, 0.5 token low for even n). For a run that
  generated all 128 tokens this is prompt_size + 64.

- Outliers are removed by physical rules, not by eye. Bounds use the dense fp16 tensor peak and
  the HBM bandwidth of the simkit hardware catalog (datasheet values) and count only the
  weight matrices, so each bound is below any real step time:
    prefill_faster_than_compute_peak: prompt_time < 2 * N_matmul * batch * prompt_size
        / (TP * peak_fp16)  (attention and the LM head only add FLOPs);
    decode_faster_than_weight_read: token_time < 2 bytes * (N_matmul + vocab * d_model)
        / (TP * HBM bandwidth)  (every decode step reads every layer's weights and the LM head);
    decode_not_one_batch: n_est > 1.02 * (token_size - 1): more decode iterations than tokens
        requested, so the batch did not run as one batch of batch_size (requests were
        preempted and recomputed, or run in several waves), and token_time is not the step
        time of batch_size sequences. The 2% covers the CPU-time fraction above (at most
        1.5 iterations in 127 on the rows that ran to completion).
  A flagged prefill or decode row is dropped on its own; --flagged lists them with the bound.

- Hardware: `a100-80gb` -> a100-80gb, `h100-80gb` -> h100-sxm (DGX-H100: H100 SXM5 80GB).
  `h100-80gb-pcap` (the same H100s power-capped) is left out: no catalog
  profile describes a power-capped H100, and its rows would fit a datasheet H100 with the
  wrong clocks. Models: `llama2-70b` -> llama-2-70b, `bloom-176b` -> bloom-176b. Both ran in
  fp16 (splitwise-sim configs/model_repo/sizes/*-fp16.yaml).
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from simkit.catalog.hardware import load_hardware
from simkit.errors import SimkitError

OUT_COLUMNS = ("model", "hardware", "tensor_parallel", "phase", "batch_size", "prompt_tokens",
               "context_tokens", "seconds")
SOURCE_COLUMNS = ("model", "hardware", "prompt_size", "batch_size", "token_size", "prompt_time",
                  "token_time", "e2e_time", "tensor_parallel")

HARDWARE_MAP = {"a100-80gb": "a100-80gb", "h100-80gb": "h100-sxm"}
EXCLUDED_HARDWARE = {"h100-80gb-pcap": "power-capped H100: no catalog profile"}
BYTES_PER_PARAM = 2  # fp16 weights (splitwise-sim configs/model_repo/sizes/*-fp16.yaml)
ITERATION_SLACK = 1.02  # decode_not_one_batch tolerance (see the module docstring)


@dataclass(frozen=True)
class Shapes:
    """What the lower bounds need of a model: weight-matrix parameters and the LM head."""

    simkit_name: str
    matmul_params: int  # all layers' weight matrices (no embeddings, norms or biases)
    lm_head_params: int  # vocab x d_model, read by every step
    source: str


def _llama2_70b() -> Shapes:
    # huggingface.co/meta-llama/Llama-2-70b-hf config.json: 80 layers, hidden 8192, 64 heads of
    # 128, 8 key/value heads, intermediate 28672 (SwiGLU: gate, up, down), vocab 32000, untied.
    d, layers, kv, ffn, vocab = 8192, 80, 8 * 128, 28672, 32000
    per_layer = d * d + 2 * d * kv + d * d + 3 * d * ffn  # q, k+v, o, gate+up+down
    return Shapes("llama-2-70b", layers * per_layer, vocab * d,
                  "meta-llama/Llama-2-70b-hf config.json")


def _bloom_176b() -> Shapes:
    # huggingface.co/bigscience/bloom config.json: 70 layers, hidden 14336, vocab 250880,
    # 4x MLP, tied embeddings (the LM head is the embedding matrix, read once per step).
    d, layers, vocab = 14336, 70, 250880
    per_layer = 3 * d * d + d * d + 2 * 4 * d * d  # qkv, dense, mlp up + down
    return Shapes("bloom-176b", layers * per_layer, vocab * d, "bigscience/bloom config.json")


MODELS = {"llama2-70b": _llama2_70b(), "bloom-176b": _bloom_176b()}


@dataclass(frozen=True)
class Bounds:
    prefill_min_s: float
    decode_min_s: float


def lower_bounds(shapes: Shapes, hardware: str, tp: int, batch: int, prompt: int) -> Bounds:
    """Physical floors for one configuration (see the module docstring)."""
    hw = load_hardware(hardware)
    flops = 2.0 * shapes.matmul_params * batch * prompt
    weight_bytes = BYTES_PER_PARAM * (shapes.matmul_params + shapes.lm_head_params)
    return Bounds(prefill_min_s=flops / (tp * hw.peak_for("fp16")),
                  decode_min_s=weight_bytes / (tp * hw.memory_bandwidth_bytes_per_s))


def decode_iterations(prompt_ms: float, token_ms: float, e2e_ms: float, token_size: int
                      ) -> tuple[float, int]:
    """(n_est, n): implied decode iterations, and the whole ones used for the context."""
    n_est = (e2e_ms - prompt_ms) / token_ms
    return n_est, min(token_size - 1, math.floor(n_est))


def decode_context(prompt_size: int, n: int) -> int:
    """Mean attended context of decode iterations 1..n: prompt + (n + 1) / 2, rounded down."""
    return prompt_size + (n + 1) // 2


def _int(row: dict, key: str, where: str) -> int:
    try:
        v = int(row[key])
    except (TypeError, ValueError):
        raise SimkitError(f"{where}.{key}: must be an integer, got {row.get(key)!r}") from None
    if v <= 0:
        raise SimkitError(f"{where}.{key}: must be > 0, got {v}")
    return v


def _float(row: dict, key: str, where: str) -> float:
    try:
        v = float(row[key])
    except (TypeError, ValueError):
        raise SimkitError(f"{where}.{key}: must be a number, got {row.get(key)!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise SimkitError(f"{where}.{key}: must be a finite number > 0, got {v}")
    return v


def ms_text_to_s(text: str) -> str:
    """'196.2532191537321' (ms) -> '0.1962532191537321' (s): the decimal point moved, exactly."""
    try:
        return format(Decimal(text.strip()).scaleb(-3), "f")
    except InvalidOperation:
        raise SimkitError(f"not a number: {text!r}") from None


def convert(rows: list[dict]) -> tuple[list[dict], list[dict], dict[str, int]]:
    """Return (output rows, flagged rows, counts). Source order is kept."""
    out: list[dict] = []
    flagged: list[dict] = []
    counts = {"source_rows": len(rows), "excluded_hardware": 0, "prefill_kept": 0,
              "decode_kept": 0, "flagged": 0}
    for i, row in enumerate(rows):
        line = i + 2  # 1-based, after the header
        where = f"row {line}"
        missing = [c for c in SOURCE_COLUMNS if c not in row]
        if missing:
            raise SimkitError(f"{where}: missing column(s) {', '.join(missing)}")
        hw_src = row["hardware"]
        if hw_src in EXCLUDED_HARDWARE:
            counts["excluded_hardware"] += 1
            continue
        if hw_src not in HARDWARE_MAP:
            raise SimkitError(f"{where}.hardware: unknown {hw_src!r} (known: "
                              f"{', '.join(sorted({*HARDWARE_MAP, *EXCLUDED_HARDWARE}))})")
        if row["model"] not in MODELS:
            raise SimkitError(f"{where}.model: unknown {row['model']!r} "
                              f"(known: {', '.join(sorted(MODELS))})")
        shapes, hw = MODELS[row["model"]], HARDWARE_MAP[hw_src]
        tp, batch = _int(row, "tensor_parallel", where), _int(row, "batch_size", where)
        prompt, tokens = _int(row, "prompt_size", where), _int(row, "token_size", where)
        prompt_ms, token_ms = _float(row, "prompt_time", where), _float(row, "token_time", where)
        e2e_ms = _float(row, "e2e_time", where)
        bounds = lower_bounds(shapes, hw, tp, batch, prompt)
        base = {"model": shapes.simkit_name, "hardware": hw, "tensor_parallel": tp,
                "batch_size": batch}
        ident = {"source_line": line, "source_model": row["model"], "source_hardware": hw_src,
                 "tensor_parallel": tp, "prompt_size": prompt, "batch_size": batch,
                 "token_size": tokens}

        prefill_s = prompt_ms / 1000.0
        if prefill_s < bounds.prefill_min_s:
            flagged.append({**ident, "phase": "prefill", "seconds": prefill_s,
                            "rule": "prefill_faster_than_compute_peak",
                            "limit": bounds.prefill_min_s})
        else:
            out.append({**base, "phase": "prefill", "prompt_tokens": prompt,
                        "context_tokens": 0, "seconds": ms_text_to_s(row["prompt_time"])})
            counts["prefill_kept"] += 1

        decode_s = token_ms / 1000.0
        n_est, n = decode_iterations(prompt_ms, token_ms, e2e_ms, tokens)
        if decode_s < bounds.decode_min_s:
            flagged.append({**ident, "phase": "decode", "seconds": decode_s,
                            "rule": "decode_faster_than_weight_read",
                            "limit": bounds.decode_min_s})
        elif n_est > ITERATION_SLACK * (tokens - 1):
            flagged.append({**ident, "phase": "decode", "seconds": decode_s,
                            "rule": "decode_not_one_batch", "limit": n_est})
        elif n < 1:
            flagged.append({**ident, "phase": "decode", "seconds": decode_s,
                            "rule": "no_decode_iteration", "limit": n_est})
        else:
            out.append({**base, "phase": "decode", "prompt_tokens": 0,
                        "context_tokens": decode_context(prompt, n),
                        "seconds": ms_text_to_s(row["token_time"])})
            counts["decode_kept"] += 1
    counts["flagged"] = len(flagged)
    return out, flagged, counts


def read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        raise SimkitError(f"{path}: no such file")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None:
            raise SimkitError(f"{path}: empty file")
        return list(reader)


def write_csv(path_or_stdout, columns, rows) -> None:
    def _w(f):
        w = csv.DictWriter(f, fieldnames=list(columns), lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    if path_or_stdout is None:
        _w(sys.stdout)
    else:
        with Path(path_or_stdout).open("w", newline="") as f:
            _w(f)


FLAGGED_COLUMNS = ("source_line", "source_model", "source_hardware", "tensor_parallel",
                   "prompt_size", "batch_size", "token_size", "phase", "seconds", "rule", "limit")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("splitwise_csv", type=Path, help="splitwise-sim data/perf_model.csv")
    ap.add_argument("-o", "--output", type=Path, help="simkit CSV to write (default: stdout)")
    ap.add_argument("--flagged", type=Path, help="also write the rows the rules removed")
    a = ap.parse_args(argv)
    try:
        out, flagged, counts = convert(read_rows(a.splitwise_csv))
    except SimkitError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    write_csv(a.output, OUT_COLUMNS, out)
    if a.flagged:
        write_csv(a.flagged, FLAGGED_COLUMNS, flagged)
    print(" ".join(f"{k}={v}" for k, v in counts.items()), file=sys.stderr)
    for f in flagged:
        print(f"flagged line {f['source_line']}: {f['source_model']} {f['source_hardware']} "
              f"TP{f['tensor_parallel']} {f['batch_size']}x{f['prompt_size']}+"
              f"{f['token_size']} {f['phase']} {f['seconds']:.4f} s: {f['rule']} "
              f"(limit {f['limit']:.4g})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
