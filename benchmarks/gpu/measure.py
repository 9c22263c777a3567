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

Random weights and inputs, never zeros (a GPU multiplies zeros faster). Before measuring it
checks that the decode path, a chunk after a cached prefix (both ways of sharing K/V heads)
and a mixed step give the logits a plain prefill gives
(float32, a small config; `llama_decode_vs_prefill_rel_err` in env.json). `--cpu` runs tiny
shapes on the CPU to check the script's logic without a GPU (no graphs, no fp8).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import platform
import statistics
import sys
import time

import torch
import torch.nn.functional as F

#: catalog models' layer shapes, from their published Hugging Face configs
MODELS = {
    # huggingface.co/meta-llama/Llama-3.1-8B/config.json
    "llama-3.1-8b": dict(d=4096, heads=32, kv_heads=8, head_dim=128, ffn=14336, layers=32,
                         vocab=128256, rope_theta=500000.0),
    # huggingface.co/meta-llama/Llama-3.1-70B/config.json (Llama-2-70B's layers are the same)
    "llama-3.1-70b": dict(d=8192, heads=64, kv_heads=8, head_dim=128, ffn=28672, layers=80,
                          vocab=128256, rope_theta=500000.0),
    # huggingface.co/Qwen/Qwen2.5-7B-Instruct/config.json (Qwen2: biases on Q, K and V)
    "qwen2.5-7b": dict(d=3584, heads=28, kv_heads=4, head_dim=128, ffn=18944, layers=28,
                       vocab=152064, rope_theta=1000000.0, qkv_bias=True),
}
L2_FLUSH_BYTES = 4 * 60 * 2**20  # 4x an H100/H200's 50-60 MB L2
#: the columns `simkit calibrate --measurements` reads
STEP_COLUMNS = ["model", "hardware", "tensor_parallel", "phase", "batch_size", "prompt_tokens",
                "context_tokens", "seconds"]


class Clock:
    """Times a callable: CUDA events around graph replays on a GPU, perf_counter on a CPU."""

    def __init__(self, device: str):
        self.cuda = device == "cuda"

    def sync(self):
        if self.cuda:
            torch.cuda.synchronize()

    def graph(self, fn):
        """A zero-argument callable that replays `fn` (captured once), or `fn` itself."""
        if not self.cuda:
            return fn
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                fn()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            fn()
        return g.replay

    def median_s(self, fn, min_total_s=0.02, max_reps=50, min_reps=3):
        """Median seconds of `fn()` over replays (after two warm-ups)."""
        fn()
        fn()
        self.sync()
        times = []
        t_start = time.perf_counter()
        while True:
            if self.cuda:
                a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                a.record()
                fn()
                b.record()
                b.synchronize()
                times.append(a.elapsed_time(b) / 1e3)
            else:
                t0 = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t0)
            n = len(times)
            if n >= max_reps or (n >= min_reps and time.perf_counter() - t_start > min_total_s):
                break
        return statistics.median(times), n


class Writer:
    """CSV rows flushed as they come, so a run cut short keeps its rows."""

    def __init__(self, path, columns):
        self.f = open(path, "w", newline="")
        self.w = csv.DictWriter(self.f, fieldnames=columns)
        self.w.writeheader()
        self.f.flush()

    def row(self, **kw):
        self.w.writerow(kw)
        self.f.flush()


def log(*a):
    print(*a, flush=True)


# ---------------------------------------------------------------------------- ceilings

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


# ---------------------------------------------------------------------------- GEMMs

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


# ---------------------------------------------------------------------------- attention

def backends():
    from torch.nn.attention import SDPBackend
    return {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
            "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}


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
        for n in prefill_n:
            b = max(1, (8192 if not small else 128) // n)
            q = torch.randn(b, hq, n, hd, device=dev, dtype=dt)
            k = torch.randn(b, hq, n, hd, device=dev, dtype=dt)
            v = torch.randn(b, hq, n, hd, device=dev, dtype=dt)
            flops = 2 * 2 * b * hq * hd * n * n / 2
            for name in names:
                if time.time() > deadline:
                    return False
                t = time_sdpa(clock, name, q, k, v, True, f"prefill h{hq} n{n}")
                if t is None:
                    continue
                w.row(phase="prefill", backend=name, batch=b, tokens=n, q_heads=hq,
                      kv_heads=hkv, head_dim=hd, seconds=f"{t:.9g}",
                      tflops=f"{flops / t / 1e12:.4g}", kv_gb_per_s="")
            q = k = v = None
        log(f"attention prefill h{hq}/{hkv} done")
        for b, n in decode:
            kv_bytes = 2 * b * hkv * n * hd * 2
            if kv_bytes > 24 * 2**30:
                continue
            g = hq // hkv
            q = torch.randn(b, hkv, g, hd, device=dev, dtype=dt)
            k = torch.randn(b, hkv, n, hd, device=dev, dtype=dt)
            v = torch.randn(b, hkv, n, hd, device=dev, dtype=dt)
            for name in names:
                if time.time() > deadline:
                    return False
                t = time_sdpa(clock, name, q, k, v, False, f"decode h{hq} b{b} n{n}")
                if t is None:
                    continue
                w.row(phase="decode", backend=name, batch=b, tokens=n, q_heads=hq,
                      kv_heads=hkv, head_dim=hd, seconds=f"{t:.9g}",
                      tflops=f"{2 * 2 * b * hq * hd * n / t / 1e12:.4g}",
                      kv_gb_per_s=f"{kv_bytes / t / 1e9:.5g}")
            q = k = v = None
            if clock.cuda:
                torch.cuda.empty_cache()
        log(f"attention decode h{hq}/{hkv} done")
    return True


# ---------------------------------------------------------------------------- whole steps

class Llama:
    """One GPU's share of a Llama forward step (tensor parallelism `tp`: its heads and FFN
    columns; no all-reduce), with a contiguous per-sequence KV cache."""

    def __init__(self, cfg, tp, dev, dt, max_tokens, small=False):
        self.cfg, self.tp, self.dev, self.dt = cfg, tp, dev, dt
        d, hd = cfg["d"], cfg["head_dim"]
        self.hq, self.hkv = cfg["heads"] // tp, max(1, cfg["kv_heads"] // tp)
        self.hd, self.ffn = hd, cfg["ffn"] // tp
        self.layers = cfg["layers"] if not small else 2
        vocab = cfg["vocab"] // tp if not small else 1000
        std = 0.02

        def p(*shape):
            return torch.empty(*shape, device=dev, dtype=dt).normal_(0, std)
        self.embed = p(vocab, d)
        self.lm_head = p(vocab, d)
        self.final_norm = torch.ones(d, device=dev, dtype=dt)
        self.w = [dict(qkv=p((self.hq + 2 * self.hkv) * hd, d), o=p(d, self.hq * hd),
                       gate_up=p(2 * self.ffn, d), down=p(d, self.ffn),
                       n1=torch.ones(d, device=dev, dtype=dt),
                       n2=torch.ones(d, device=dev, dtype=dt)) for _ in range(self.layers)]
        # rotary tables (positions up to max_tokens)
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, device=dev).float() / hd))
        ang = torch.outer(torch.arange(max_tokens, device=dev).float(), inv)
        self.cos, self.sin = ang.cos().to(dt), ang.sin().to(dt)
        self.bqkv = p((self.hq + 2 * self.hkv) * hd) if cfg.get("qkv_bias") else None
        self.cache = None
        self.backend = None  # torch.nn.attention.SDPBackend the attention runs on
        self.native_gqa = False  # chunks: K/V heads shared by the kernel, not expanded

    def weight_bytes(self):
        return sum(t.numel() * t.element_size() for lw in self.w for t in lw.values()) + \
            self.lm_head.numel() * self.lm_head.element_size()

    def alloc_cache(self, b, t):
        """K and V per layer: [b, kv_heads, t, head_dim]."""
        self.cache = None
        if self.dev == "cuda":
            torch.cuda.empty_cache()
        self.cache = [(torch.empty(b, self.hkv, t, self.hd, device=self.dev, dtype=self.dt)
                       .normal_(), torch.empty(b, self.hkv, t, self.hd, device=self.dev,
                                               dtype=self.dt).normal_())
                      for _ in range(self.layers)]

    def _attention(self):
        import contextlib
        from torch.nn.attention import sdpa_kernel
        return sdpa_kernel(self.backend) if self.backend is not None \
            else contextlib.nullcontext()

    def _rope(self, x, pos):
        # x [b, s, h, hd]; pos [s]
        c, s = self.cos[pos][None, :, None, :], self.sin[pos][None, :, None, :]
        x1, x2 = x[..., : self.hd // 2], x[..., self.hd // 2:]
        return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1)

    def forward(self, ids, start, logits_only=False):
        """ids [b, s] at positions start..start+s-1 (s > 1: a prefill of s tokens after
        `start` cached ones; s == 1: decode attending to start+1 tokens). Returns next ids
        [b]."""
        b, s = ids.shape
        hq, hkv, hd = self.hq, self.hkv, self.hd
        pos = torch.arange(start, start + s, device=self.dev)
        x = self.embed[ids].view(b * s, -1)
        for lw, (kc, vc) in zip(self.w, self.cache):
            h = F.rms_norm(x, (x.shape[-1],), lw["n1"], 1e-5)
            qkv = F.linear(h, lw["qkv"], self.bqkv).view(b, s, hq + 2 * hkv, hd)
            q, k, v = qkv.split([hq, hkv, hkv], dim=2)
            q, k = self._rope(q, pos), self._rope(k, pos)
            kc[:, :, start:start + s] = k.transpose(1, 2)
            vc[:, :, start:start + s] = v.transpose(1, 2)
            if s > 1 and start == 0:  # prefill: causal, K/V expanded to the query heads
                kk = kc[:, :, :s].repeat_interleave(hq // hkv, dim=1)
                vv = vc[:, :, :s].repeat_interleave(hq // hkv, dim=1)
                with self._attention():
                    a = F.scaled_dot_product_attention(q.transpose(1, 2), kk, vv,
                                                       is_causal=True)
                a = a.transpose(1, 2).reshape(b * s, hq * hd)
            elif s > 1:  # a chunk after `start` cached tokens: its queries end the keys
                from torch.nn.attention.bias import causal_lower_right
                kk, vv = kc[:, :, :start + s], vc[:, :, :start + s]
                if not self.native_gqa:  # expanding a long cache costs a copy of it
                    kk = kk.repeat_interleave(hq // hkv, dim=1)
                    vv = vv.repeat_interleave(hq // hkv, dim=1)
                with self._attention():
                    a = F.scaled_dot_product_attention(
                        q.transpose(1, 2), kk, vv, attn_mask=causal_lower_right(s, start + s),
                        enable_gqa=self.native_gqa)
                a = a.transpose(1, 2).reshape(b * s, hq * hd)
            else:  # decode: query heads of one KV head ride in the query-length dimension
                qg = q.view(b, hkv, hq // hkv, hd)
                with self._attention():
                    a = F.scaled_dot_product_attention(qg, kc[:, :, :start + 1],
                                                       vc[:, :, :start + 1])
                a = a.reshape(b, hq * hd)
            x = x + F.linear(a, lw["o"])
            h = F.rms_norm(x, (x.shape[-1],), lw["n2"], 1e-5)
            g, u = F.linear(h, lw["gate_up"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(g) * u, lw["down"])
        last = x.view(b, s, -1)[:, -1]
        logits = F.linear(F.rms_norm(last, (last.shape[-1],), self.final_norm, 1e-5),
                          self.lm_head)
        return logits if logits_only else logits.argmax(dim=-1)

    def forward_mixed(self, dec_ids, ctx, pre_ids, pre_cache, logits_only=False):
        """One step of `dec_ids` [B] decodes, each attending to `ctx` tokens (self.cache, B
        sequences), beside one prompt `pre_ids` [1, n] prefilled from position 0 into
        `pre_cache`: the weight GEMMs run over all B + n tokens at once, attention per part
        (as engines batch a prefill chunk with decodes). Returns next ids [B + 1]."""
        bd, n = dec_ids.shape[0], pre_ids.shape[1]
        hq, hkv, hd = self.hq, self.hkv, self.hd
        pos_d = torch.full((1,), ctx - 1, device=self.dev, dtype=torch.long)
        pos_p = torch.arange(0, n, device=self.dev)
        x = torch.cat((self.embed[dec_ids], self.embed[pre_ids[0]]))
        for lw, (kc, vc), (kp, vp) in zip(self.w, self.cache, pre_cache):
            h = F.rms_norm(x, (x.shape[-1],), lw["n1"], 1e-5)
            qkv = F.linear(h, lw["qkv"], self.bqkv).view(bd + n, hq + 2 * hkv, hd)
            q, k, v = qkv.split([hq, hkv, hkv], dim=1)
            qd, kd = self._rope(q[:bd, None], pos_d), self._rope(k[:bd, None], pos_d)
            qp, kp_ = self._rope(q[None, bd:], pos_p), self._rope(k[None, bd:], pos_p)
            kc[:, :, ctx - 1:ctx] = kd.transpose(1, 2)
            vc[:, :, ctx - 1:ctx] = v[:bd, None].transpose(1, 2)
            kp[:, :, :n] = kp_.transpose(1, 2)
            vp[:, :, :n] = v[None, bd:].transpose(1, 2)
            with self._attention():
                ad = F.scaled_dot_product_attention(qd.view(bd, hkv, hq // hkv, hd), kc, vc)
                ap = F.scaled_dot_product_attention(
                    qp.transpose(1, 2), kp.repeat_interleave(hq // hkv, dim=1),
                    vp.repeat_interleave(hq // hkv, dim=1), is_causal=True)
            a = torch.cat((ad.reshape(bd, hq * hd), ap.transpose(1, 2).reshape(n, hq * hd)))
            x = x + F.linear(a, lw["o"])
            h = F.rms_norm(x, (x.shape[-1],), lw["n2"], 1e-5)
            g, u = F.linear(h, lw["gate_up"]).chunk(2, dim=-1)
            x = x + F.linear(F.silu(g) * u, lw["down"])
        last = torch.cat((x[:bd], x[-1:]))
        logits = F.linear(F.rms_norm(last, (last.shape[-1],), self.final_norm, 1e-5),
                          self.lm_head)
        return logits if logits_only else logits.argmax(dim=-1)


def check_llama(dev):
    """The decode path must give the logits the prefill path gives for the same tokens
    (float32, a small config): a prompt's prefill then one decode step against a prefill of
    the prompt and that token. Returns the relative error."""
    cfg = dict(MODELS["llama-3.1-8b"], d=256, heads=8, kv_heads=2, head_dim=32, ffn=512,
               qkv_bias=True)
    m = Llama(cfg, 1, dev, torch.float32, 64, small=True)
    for lw in m.w:  # non-trivial norms
        lw["n1"].uniform_(0.5, 1.5)
        lw["n2"].uniform_(0.5, 1.5)
    ids = torch.randint(0, 1000, (3, 17), device=dev)
    m.alloc_cache(3, 17)
    ref = m.forward(ids, 0, logits_only=True)
    m.alloc_cache(3, 17)
    m.forward(ids[:, :16], 0)
    got = m.forward(ids[:, 16:], 16, logits_only=True)
    err = float((got - ref).norm() / ref.norm())
    for m.native_gqa in (False, True):  # a 7-token chunk after 10 cached ones
        m.alloc_cache(3, 17)
        m.forward(ids[:, :10], 0)
        got = m.forward(ids[:, 10:], 10, logits_only=True)
        err = max(err, float((got - ref).norm() / ref.norm()))
    m.native_gqa = False
    # a mixed step: the three decodes beside a fresh 9-token prompt
    pre = torch.randint(0, 1000, (1, 9), device=dev)
    pre_cache = [(torch.empty(1, m.hkv, 9, m.hd, device=dev), torch.empty(1, m.hkv, 9, m.hd,
                                                                         device=dev))
                 for _ in range(m.layers)]
    m.alloc_cache(3, 17)
    m.forward(ids[:, :16], 0)
    mixed = m.forward_mixed(ids[:, 16], 17, pre, pre_cache, logits_only=True)
    m.alloc_cache(1, 9)
    ref_p = m.forward(pre, 0, logits_only=True)
    ref_all = torch.cat((ref, ref_p))
    return max(err, float((mixed - ref_all).norm() / ref_all.norm()))


def step_grid(small):
    """(prefill shapes, decode shapes): (batch, prompt tokens) and (batch, context tokens)."""
    if small:
        return [(1, 16), (2, 8)], [(1, 8), (4, 8)]
    prefill = [(1, 64), (1, 128), (1, 256), (1, 512), (1, 1024), (1, 2048), (1, 4096),
               (1, 8192), (1, 16384), (2, 512), (4, 256), (4, 1024), (8, 128), (8, 512),
               (16, 256), (32, 64), (64, 32)]
    decode = [(b, t) for t in (512, 2048, 8192) for b in (1, 4, 16, 32, 64, 128, 256)
              if b * t <= 2**19] + [(1, 32768), (8, 32768)]
    return prefill, decode


def fastest(clock, m, fn, variants, graph, tag):
    """{label: median seconds of `fn`} with model `m`'s attention on each (label, backend,
    K/V heads shared by the kernel) variant, replayed from a CUDA graph if `graph`; a variant
    a kernel refuses is logged and left out."""
    times = {}
    for label, name, gqa in variants:
        try:
            m.backend, m.native_gqa = backends()[name], gqa
            run = clock.graph(fn) if graph else fn
            times[label], _ = clock.median_s(run, min_total_s=0.05, max_reps=20)
            run = None  # free the graph's pool before the next capture
        except Exception as e:  # noqa: BLE001 -- record why, keep measuring
            log(f"{tag} {label}: {repr(e)[:200]}")
    return times


def mixed_sweep(clock, dev, small, deadline, w):
    """Steps of decodes beside one prompt's prefill (Llama-3.1-8B, one GPU)."""
    dt = torch.float32 if small else torch.bfloat16
    cfg = MODELS["llama-3.1-8b"]
    attn = ["flash", "cudnn"] if not small else ["math"]
    grid = [(bd, ctx, n) for bd, ctx in ((16, 2048), (64, 2048), (256, 2048), (32, 8192))
            for n in (256, 1024, 2048)]
    if small:
        cfg = dict(cfg, d=64, heads=4, kv_heads=2, head_dim=16, ffn=128)
        grid = [(2, 8, 4)]
    m = Llama(cfg, 1, dev, dt, 8193, small)
    for bd, ctx, n in grid:
        if time.time() > deadline:
            return False
        m.alloc_cache(bd, ctx)
        pre_cache = [(torch.empty(1, m.hkv, n, m.hd, device=dev, dtype=dt),
                      torch.empty(1, m.hkv, n, m.hd, device=dev, dtype=dt))
                     for _ in range(m.layers)]
        dec_ids = torch.randint(0, m.embed.shape[0], (bd,), device=dev)
        pre_ids = torch.randint(0, m.embed.shape[0], (1, n), device=dev)

        def fn():
            m.forward_mixed(dec_ids, ctx, pre_ids, pre_cache)
        times = fastest(clock, m, fn, [(a, a, False) for a in attn], clock.cuda,
                        f"mixed b{bd} t{ctx} n{n}")
        if not times:
            continue
        best = min(times, key=times.get)
        w.row(model="llama-3.1-8b", hardware="h200" if not small else "cpu", decodes=bd,
              decode_context=ctx, prefill_tokens=n, seconds=f"{times[best]:.9g}",
              attention=best, flash_seconds=f"{times.get('flash', math.nan):.9g}",
              cudnn_seconds=f"{times.get('cudnn', math.nan):.9g}")
        log(f"  mixed {bd} decodes at {ctx} + {n}-token prompt: {times[best] * 1e3:.3f} ms "
            f"({best})")
    m.cache = None
    return True


def chunked_sweep(clock, dev, small, deadline, w, w_detail):
    """Llama-3.1-8B prefills of a chunk after `context_tokens` cached ones (chunked prefill,
    or a prompt whose opening a prefix cache holds), in the calibrate format."""
    dt = torch.float32 if small else torch.bfloat16
    cfg = MODELS["llama-3.1-8b"]
    # a lower-right causal mask: not every backend takes one
    attn = ["flash", "cudnn", "efficient"] if not small else ["math"]
    grid = [(1, n, c) for c in (2048, 8192, 32768) for n in (512, 2048)] + \
        [(4, 1024, 8192), (8, 256, 4096)]
    if small:
        cfg = dict(cfg, d=64, heads=4, kv_heads=2, head_dim=16, ffn=128)
        grid = [(2, 4, 8)]
    m = Llama(cfg, 1, dev, dt, max(n + c for _, n, c in grid) + 1, small)
    for b, n, c in grid:
        if time.time() > deadline:
            return False
        m.alloc_cache(b, c + n)
        ids = torch.randint(0, m.embed.shape[0], (b, n), device=dev)

        def fn():
            m.forward(ids, c)
        times = fastest(clock, m, fn, [(a + ("" if gqa else "+expand"), a, gqa)
                                       for a in attn for gqa in (True, False)],
                        clock.cuda and b * n < 2048, f"chunk b{b} n{n} after {c}")
        if not times:
            continue
        best = min(times, key=times.get)
        w.row(model="llama-3.1-8b", hardware="h200" if not small else "cpu",
              tensor_parallel=1, phase="prefill", batch_size=b, prompt_tokens=n,
              context_tokens=c, seconds=f"{times[best]:.9g}")
        w_detail.row(batch_size=b, prompt_tokens=n, context_tokens=c,
                     seconds=f"{times[best]:.9g}", attention=best,
                     **{f"{k.replace('+', '_')}_seconds": f"{v:.9g}" for k, v in times.items()})
        log(f"  chunk b{b} n{n} after {c}: {times[best] * 1e3:.3f} ms ({best}; "
            + ", ".join(f"{k} {v * 1e3:.3f}" for k, v in times.items()) + ")")
    m.cache = None
    return True


def step_sweep(clock, dev, small, deadline, w_csv, w_detail):
    dt = torch.float32 if small else torch.bfloat16
    plans = [("llama-3.1-8b", 1), ("qwen2.5-7b", 1), ("llama-3.1-70b", 8)]
    attn = ["flash", "cudnn"] if not small else ["math"]
    if small:
        plans = [("llama-3.1-8b", 1), ("qwen2.5-7b", 1)]
    for model, tp in plans:
        if time.time() > deadline:
            return False
        cfg = MODELS[model]
        if small:
            cfg = dict(cfg, d=64, heads=4, kv_heads=2, head_dim=16, ffn=128)
        prefill, decode = step_grid(small)
        if tp > 1:  # one GPU's share of a tensor-parallel step: a smaller grid
            prefill = [(b, n) for b, n in prefill if b * n <= 8192]
            decode = [(b, n) for b, n in decode if n <= 8192]
        max_t = max(n for _, n in prefill + decode) + 1
        m = Llama(cfg, tp, dev, dt, max_t, small)
        log(f"steps {model} tp{tp}: {m.weight_bytes() / 2**30:.1f} GiB of weights")
        for phase, shapes in (("prefill", prefill), ("decode", decode)):
            for b, n in shapes:
                if time.time() > deadline:
                    return False
                # a prefill of >= 2,048 tokens has launch gaps well under 1%: timed
                # uncaptured; everything else replays a CUDA graph, as engines run decode
                timed_as = "graph" if clock.cuda and (phase == "decode" or b * n < 2048) \
                    else "eager"
                m.alloc_cache(b, n)
                s = n if phase == "prefill" else 1
                start = 0 if phase == "prefill" else n - 1
                ids = torch.randint(0, m.embed.shape[0], (b, s), device=dev)

                def fn():
                    m.forward(ids, start)
                times = fastest(clock, m, fn, [(a, a, False) for a in attn],
                                timed_as == "graph", f"step {model} tp{tp} {phase} b{b} n{n}")
                if not times:
                    continue
                best = min(times, key=times.get)
                t = times[best]
                prompt, ctx = (n, 0) if phase == "prefill" else (0, n)
                if tp == 1:
                    w_csv.row(model=model, hardware="h200" if not small else "cpu",
                              tensor_parallel=tp, phase=phase, batch_size=b,
                              prompt_tokens=prompt, context_tokens=ctx,
                              seconds=f"{t:.9g}")
                w_detail.row(model=model, tensor_parallel=tp, shard_only=int(tp > 1),
                             phase=phase, batch_size=b, prompt_tokens=prompt,
                             context_tokens=ctx, seconds=f"{t:.9g}", timed_as=timed_as,
                             attention=best,
                             flash_seconds=f"{times.get('flash', math.nan):.9g}",
                             cudnn_seconds=f"{times.get('cudnn', math.nan):.9g}")
                log(f"  {phase} b{b} n{n}: {timed_as} {t * 1e3:.3f} ms ({best}; "
                    + ", ".join(f"{k} {v * 1e3:.3f}" for k, v in times.items()) + ")")
        m.cache = None
        m = None
        if clock.cuda:
            torch.cuda.empty_cache()
    return True


# ---------------------------------------------------------------------------- main

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
