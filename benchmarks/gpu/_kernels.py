"""Kernels alone (`measure.py` parts `ceilings`, `gemm-*`, `attention`): a copy and large
products, every weight GEMM of a layer's tensor-parallel shards, PyTorch's attention
backends."""

from __future__ import annotations

import math
import time

import torch
import torch.nn.functional as F

from _harness import MODELS, backends, log

L2_FLUSH_BYTES = 4 * 60 * 2**20  # 4x an H100/H200's 50-60 MB L2


def ceilings(clock, dev, small):
    out = {}
    n_bytes = (64 if small else 2048) * 2**20
    a = torch.empty(n_bytes // 2, dtype=torch.bfloat16, device=dev).normal_()
    b = torch.empty_like(a)
    t, _ = clock.median_s(lambda: b.copy_(a))
    out["copy_bytes_per_s"] = 2 * n_bytes / t  # read + write
    log(f"copy: {2 * n_bytes / t / 1e12:.3f} TB/s (read+write, {n_bytes / 2**20:.0f} MiB)")
    a = b = None  # free the buffers before the products
    s = 512 if small else 8192
    dt = torch.float32 if small else torch.bfloat16
    x = torch.randn(s, s, dtype=dt, device=dev)
    w = torch.randn(s, s, dtype=dt, device=dev)
    t, _ = clock.median_s(lambda: x @ w)
    out["gemm_bf16_flops_per_s"] = 2 * s**3 / t
    log(f"gemm {s}^3 {dt}: {2 * s**3 / t / 1e12:.1f} TFLOP/s")
    if not small:
        try:
            f8 = fp8_operands(s, s, s, dev)
            t, _ = clock.median_s(lambda: fp8_mm(*f8))
            out["gemm_fp8_flops_per_s"] = 2 * s**3 / t
            log(f"gemm {s}^3 fp8 rowwise: {2 * s**3 / t / 1e12:.1f} TFLOP/s")
        except Exception as e:  # noqa: BLE001 -- record why, keep measuring
            out["gemm_fp8_error"] = repr(e)[:300]
            log("fp8 unavailable:", repr(e)[:300])
    return out


def fp8_operands(m, k, n, dev, copies=1):
    x = torch.randn(m, k, device=dev).to(torch.float8_e4m3fn)
    ws = [torch.randn(n, k, device=dev).to(torch.float8_e4m3fn) for _ in range(copies)]
    sa = torch.rand(m, 1, device=dev, dtype=torch.float32) + 0.5  # per token
    sb = torch.rand(1, n, device=dev, dtype=torch.float32) + 0.5  # per output channel
    return (x, ws if copies > 1 else ws[0], sa, sb)


def fp8_mm(x, w, sa, sb):
    return torch._scaled_mm(x, w.t(), scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16)


def layer_gemms(cfg, tp):
    """(name, K, N) of one layer's weight GEMMs on one GPU of a tensor-parallel group."""
    d, hd = cfg["d"], cfg["head_dim"]
    q, kv = cfg["heads"] // tp, max(1, cfg["kv_heads"] // tp)  # KV heads replicate past kv_heads
    return [("qkv", d, (q + 2 * kv) * hd), ("o", q * hd, d),
            ("gate_up", d, 2 * cfg["ffn"] // tp), ("down", cfg["ffn"] // tp, d)]


def gemm_sweep(clock, dev, small, dtypes, deadline, w):
    models = {"llama-3.1-8b": (1, 2, 4, 8), "llama-3.1-70b": (1, 2, 4, 8),
              "qwen2.5-7b": (1, 2, 4)}
    tokens = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384)
    if small:
        models, tokens = {"llama-3.1-8b": (8,)}, (1, 16, 64)
    for dtype in dtypes:
        for model, tps in models.items():
            cfg = MODELS[model]
            for tp in tps:
                for name, k, n in layer_gemms(cfg, tp):
                    if small:
                        k, n = k // 16, n // 16
                    elem = 1 if dtype == "fp8" else 2
                    copies = max(1, min(64, math.ceil(L2_FLUSH_BYTES / (k * n * elem))))
                    if small:
                        copies = 2
                    if dtype == "fp8":
                        ws = [torch.randn(n, k, device=dev).to(torch.float8_e4m3fn)
                              for _ in range(copies)]
                    else:
                        ws = [torch.randn(n, k, device=dev, dtype=torch.bfloat16
                                          if not small else torch.float32)
                              for _ in range(copies)]
                    for m in tokens:
                        if time.time() > deadline:
                            return False
                        try:
                            t, reps = time_gemm(clock, dev, dtype, m, k, n, ws, small)
                        except Exception as e:  # noqa: BLE001
                            log(f"gemm {dtype} {model} tp{tp} {name} m={m}: {repr(e)[:200]}")
                            continue
                        w.row(dtype=dtype, model=model, tensor_parallel=tp, gemm=name,
                              tokens=m, k=k, n=n, copies=len(ws), replays=reps,
                              seconds=f"{t:.9g}",
                              tflops=f"{2 * m * k * n / t / 1e12:.4g}",
                              weight_gb_per_s=f"{k * n * elem / t / 1e9:.5g}")
                    del ws
                    if clock.cuda:
                        torch.cuda.empty_cache()
                log(f"gemm {dtype} {model} tp{tp} done")
    return True


def time_gemm(clock, dev, dtype, m, k, n, ws, small):
    if dtype == "fp8":
        x = torch.randn(m, k, device=dev).to(torch.float8_e4m3fn)
        sa = torch.rand(m, 1, device=dev, dtype=torch.float32) + 0.5
        sb = torch.rand(1, n, device=dev, dtype=torch.float32) + 0.5

        def fn():
            for wt in ws:
                fp8_mm(x, wt, sa, sb)
    else:
        x = torch.randn(m, k, device=dev, dtype=ws[0].dtype)

        def fn():
            for wt in ws:
                F.linear(x, wt)
    g = clock.graph(fn)
    t, reps = clock.median_s(g)
    return t / len(ws), reps


def time_sdpa(clock, name, q, k, v, causal, tag):
    """Median seconds of one SDPA call on backend `name` (None, logged, if it refuses)."""
    from torch.nn.attention import sdpa_kernel
    try:
        with sdpa_kernel(backends()[name]):
            def fn():
                F.scaled_dot_product_attention(q, k, v, is_causal=causal)
            return clock.median_s(clock.graph(fn))[0]
    except Exception as e:  # noqa: BLE001 -- record why, keep measuring
        log(f"{tag} {name}: {repr(e)[:160]}")
        return None


def attention_cases(hq, hkv, hd, prefill_n, decode, small):
    """(phase, batch, tokens, query shape, K/V shape, causal, FLOPs, K/V bytes read or None)
    of each attention call: causal prefills with K and V expanded to the query heads, then
    decodes whose query heads of one KV head ride in the query-length dimension."""
    for n in prefill_n:
        b = max(1, (8192 if not small else 128) // n)
        yield ("prefill", b, n, (b, hq, n, hd), (b, hq, n, hd), True,
               2 * 2 * b * hq * hd * n * n / 2, None)
    for b, n in decode:
        kv_bytes = 2 * b * hkv * n * hd * 2
        if kv_bytes <= 24 * 2**30:
            yield ("decode", b, n, (b, hkv, hq // hkv, hd), (b, hkv, n, hd), False,
                   2 * 2 * b * hq * hd * n, kv_bytes)


def attention_sweep(clock, dev, small, deadline, w):
    dt = torch.float32 if small else torch.bfloat16
    hd = 128
    # (query heads, KV heads) per GPU: Llama-3.1-8B at TP 1, Llama-3.1-70B at TP 1 and 8
    heads = [(32, 8), (64, 8), (8, 1)]
    prefill_n = (512, 1024, 2048, 4096, 8192, 16384, 32768)
    decode = [(b, n) for n in (512, 2048, 8192, 32768, 131072) for b in (1, 8, 32, 128, 256)]
    names = ["flash", "cudnn", "efficient"] if not small else ["math"]
    if small:
        heads, prefill_n, decode, hd = [(4, 2)], (64, 128), [(2, 64)], 32
    for hq, hkv in heads:
        for phase, b, n, q_shape, kv_shape, causal, flops, kv_bytes in attention_cases(
                hq, hkv, hd, prefill_n, decode, small):
            q = torch.randn(*q_shape, device=dev, dtype=dt)
            k = torch.randn(*kv_shape, device=dev, dtype=dt)
            v = torch.randn(*kv_shape, device=dev, dtype=dt)
            for name in names:
                if time.time() > deadline:
                    return False
                t = time_sdpa(clock, name, q, k, v, causal, f"{phase} h{hq} b{b} n{n}")
                if t is None:
                    continue
                w.row(phase=phase, backend=name, batch=b, tokens=n, q_heads=hq,
                      kv_heads=hkv, head_dim=hd, seconds=f"{t:.9g}",
                      tflops=f"{flops / t / 1e12:.4g}",
                      kv_gb_per_s="" if kv_bytes is None else f"{kv_bytes / t / 1e9:.5g}")
            q = k = v = None
            if clock.cuda and phase == "decode":
                torch.cuda.empty_cache()
        log(f"attention h{hq}/{hkv} done")
    return True
