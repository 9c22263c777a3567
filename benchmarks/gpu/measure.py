"""Measure GEMMs, attention kernels and whole-model steps on one CUDA GPU with PyTorch.

    python3 benchmarks/gpu/measure.py --out DIR [--budget-s 300] [--parts ...] [--cpu]

Parts (`--parts`, in the order given; default all but `mixed` and `chunked`): `ceilings`,
`gemm-bf16`, `gemm-fp8`, `attention`, `steps`, `mixed`, `chunked`. What each writes to DIR (row by row, flushed, so a
run cut short keeps what it did; `--budget-s`: no new measurement starts after that long):

- `env.json`: the GPU, driver, PyTorch and CUDA versions; `ceilings`: a device-to-device
  copy (bytes read + written over its time) and 8192^3 bf16 and fp8 matrix products.
- `gemm.csv`: every weight GEMM of a layer of Llama-3.1-8B, Llama-3.1-70B and Qwen2.5-7B as
  one GPU of tensor parallelism 1-8 runs it (Megatron shards: QKV and gate/up split by
  columns, O and down by rows), at 1-16,384 tokens, in bf16 (`F.linear`) and fp8 e4m3
  (`torch._scaled_mm`, per-token and per-channel scales). Each is timed over enough distinct
  copies of the weight (>= 4x the L2) that no replay reads it from cache, captured in a CUDA
  graph so launch gaps do not count: the median over replays of the graph's time / GEMMs.
- `attention.csv`: PyTorch's scaled_dot_product_attention per backend (flash, cuDNN,
  memory-efficient): causal prefill of `batch` prompts of `tokens` (K and V expanded to the
  query heads; FLOPs 2 x 2 x b x heads x d x n^2 / 2), and decode of `batch` sequences at
  `tokens` cached (one query token each; the query heads sharing a KV head ride in the
  query-length dimension, as FlashDecoding does, so each K/V byte is read once).
- `steps.csv` (`simkit calibrate --measurements` format) and `steps_detail.csv`: whole
  forward steps of Llama-3.1-8B and Qwen2.5-7B in bf16 on one GPU -- random weights of the
  published configs' shapes; per layer RMSNorm, fused QKV (Qwen2: with its biases), rotary,
  attention, O, RMSNorm, SwiGLU; then the final norm, the LM head on each sequence's last
  position and a greedy argmax. A prefill step writes its prompts' K/V to the cache; a decode
  step writes one token's and attends to `context_tokens` (the new one included). Each step
  is timed with the attention on flash and on cuDNN and the faster is kept (as an engine
  picks its kernel per shape; both are in the detail file). Steps replay a CUDA graph, as
  engines run decode, except prefills of 2,048 tokens or more (launch gaps well under 1%).
  The detail file adds one GPU's share of Llama-3.1-70B at tensor parallelism 8 (its heads
  and FFN columns, 80 layers, no all-reduce).
- `steps_mixed.csv` (`mixed`): Llama-3.1-8B steps of B decodes beside one prompt's prefill,
  the weight GEMMs over all B + n tokens at once and attention per part, as engines batch a
  prefill chunk with decodes.
- `steps_chunked.csv` (calibrate format) and `steps_chunked_detail.csv` (`chunked`):
  Llama-3.1-8B prefills of a chunk after `context_tokens` cached tokens (a lower-right causal
  mask), timed per attention backend with the cache's K/V heads shared by the kernel
  (`enable_gqa`) and expanded by a copy (`_expand`); the fastest is kept.

The parts live in `_kernels.py` (kernels alone), `_llama.py` (the model) and `_steps.py`
(whole steps); `_harness.py` holds the shapes, the clock and the writers.

Random weights and inputs, never zeros (a GPU multiplies zeros faster). Before measuring it
checks that the decode path, a chunk after a cached prefix (both ways of sharing K/V heads)
and a mixed step give the logits a plain prefill gives
(float32, a small config; `llama_decode_vs_prefill_rel_err` in env.json). `--cpu` runs tiny
shapes on the CPU to check the script's logic without a GPU (no graphs, no fp8).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import torch

from _harness import Clock, Writer, log
from _kernels import attention_sweep, ceilings, gemm_sweep
from _llama import check_llama
from _steps import STEP_COLUMNS, chunked_sweep, mixed_sweep, step_sweep


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--budget-s", type=float, default=300.0,
                    help="stop starting new measurements after this many seconds")
    ap.add_argument("--parts", nargs="+",
                    default=["ceilings", "gemm-bf16", "steps", "attention", "gemm-fp8"],
                    help="ceilings gemm-bf16 gemm-fp8 attention steps mixed chunked")
    ap.add_argument("--cpu", action="store_true", help="tiny shapes on the CPU (logic check)")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    t0 = time.time()
    deadline = t0 + a.budget_s
    dev = "cpu" if a.cpu else "cuda"
    small = a.cpu
    torch.manual_seed(0)
    clock = Clock(dev)
    env = {"python": sys.version.split()[0], "torch": torch.__version__,
           "cuda": torch.version.cuda, "platform": platform.platform(),
           "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if not a.cpu:
        p = torch.cuda.get_device_properties(0)
        env.update(gpu=p.name, sms=p.multi_processor_count,
                   memory_mib=p.total_memory // 2**20,
                   cudnn=torch.backends.cudnn.version())
        try:
            import subprocess
            env["nvidia_smi"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.max.sm,"
                 "clocks.max.mem,power.limit", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20).stdout.strip()
        except Exception as e:  # noqa: BLE001
            env["nvidia_smi"] = repr(e)
    env["llama_decode_vs_prefill_rel_err"] = err = check_llama(dev)
    log(json.dumps(env))
    if not err < 1e-4:
        raise SystemExit(f"the Llama decode path disagrees with its prefill path: {err:.3g}")
    done = {}

    def save():
        env["elapsed_s"] = round(time.time() - t0, 1)
        env["parts_done"] = done
        with open(os.path.join(a.out, "env.json"), "w") as f:
            json.dump(env, f, indent=1)
    save()
    gemm_w = None
    for part in a.parts:
        if time.time() > deadline:
            done[part] = "skipped (budget)"
            continue
        t1 = time.time()
        if part == "ceilings":
            env["ceilings"] = ceilings(clock, dev, small)
            ok = True
        elif part.startswith("gemm-"):
            if gemm_w is None:
                gemm_w = Writer(os.path.join(a.out, "gemm.csv"),
                                ["dtype", "model", "tensor_parallel", "gemm", "tokens", "k",
                                 "n", "copies", "replays", "seconds", "tflops",
                                 "weight_gb_per_s"])
            dtype = part.split("-", 1)[1]
            if dtype == "fp8" and small:
                done[part] = "skipped (cpu)"
                continue
            ok = gemm_sweep(clock, dev, small, [dtype], deadline, gemm_w)
        elif part == "attention":
            ok = attention_sweep(clock, dev, small, deadline, Writer(
                os.path.join(a.out, "attention.csv"),
                ["phase", "backend", "batch", "tokens", "q_heads", "kv_heads", "head_dim",
                 "seconds", "tflops", "kv_gb_per_s"]))
        elif part == "chunked":
            ok = chunked_sweep(clock, dev, small, deadline, Writer(
                os.path.join(a.out, "steps_chunked.csv"), STEP_COLUMNS), Writer(
                os.path.join(a.out, "steps_chunked_detail.csv"),
                ["batch_size", "prompt_tokens", "context_tokens", "seconds", "attention"]
                + [f"{b}{x}_seconds" for b in (("math",) if small else
                                                ("flash", "cudnn", "efficient"))
                   for x in ("", "_expand")]))
        elif part == "mixed":
            ok = mixed_sweep(clock, dev, small, deadline, Writer(
                os.path.join(a.out, "steps_mixed.csv"),
                ["model", "hardware", "decodes", "decode_context", "prefill_tokens", "seconds",
                 "attention", "flash_seconds", "cudnn_seconds"]))
        elif part == "steps":
            ok = step_sweep(clock, dev, small, deadline, Writer(
                os.path.join(a.out, "steps.csv"), STEP_COLUMNS), Writer(
                os.path.join(a.out, "steps_detail.csv"),
                ["model", "tensor_parallel", "shard_only", "phase", "batch_size",
                 "prompt_tokens", "context_tokens", "seconds", "timed_as", "attention",
                 "flash_seconds", "cudnn_seconds"]))
        else:
            raise SystemExit(f"unknown part {part!r}")
        done[part] = f"{'complete' if ok else 'cut at the budget'} in {time.time() - t1:.0f} s"
        log(f"== {part}: {done[part]}")
        save()
    save()
    log(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    with torch.inference_mode():
        main()
