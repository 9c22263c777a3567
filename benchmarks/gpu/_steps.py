"""Whole-model steps (`measure.py` parts `steps`, `mixed`, `chunked`): each timed with the
attention on each backend, the fastest kept."""

from __future__ import annotations

import math
import time

import torch

from _harness import MODELS, backends, log
from _llama import Llama

#: the columns `simkit calibrate --measurements` reads
STEP_COLUMNS = ["model", "hardware", "tensor_parallel", "phase", "batch_size", "prompt_tokens",
                "context_tokens", "seconds"]


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
