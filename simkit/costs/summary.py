"""The numbers of `simkit cost`: one configuration at one context length.

`evaluate_costs` returns a flat dict with the DESIGN.md keys (SI units) plus extras; sizes
are bytes, times seconds, FLOPs counted with a multiply-add = 2.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from simkit.costs import symbols as S
from simkit.costs.arch import ArchSpec
from simkit.costs.compiled import build_step_model, step_breakdown
from simkit.costs.model import model_costs
from simkit.errors import SimkitError


def evaluate_costs(model, arch: ArchSpec, hw, seq: int, batch: int = 1, gpus: int = 1,
                   ideal: bool = False, memory_fraction: float = 0.9) -> dict[str, Any]:
    """Costs of `batch` sequences of context `seq` (prefill of `seq` tokens each, then one
    decode step at context `seq`)."""
    for name, v in (("seq", seq), ("batch", batch), ("gpus", gpus)):
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise SimkitError(f"--{name}: must be a positive integer, got {v!r}")
    arch = arch.resolve(model)
    mc = model_costs(model, arch)
    sm = build_step_model(model, arch, hw, gpus=gpus, ideal=ideal)
    val = lambda e, **kw: mc.value(e, **kw)  # noqa: E731
    kv_seq = float(sm.kv_bytes(np.array([seq]))[0])
    pre = step_breakdown(sm, (), [0] * batch, [seq] * batch)
    dec = step_breakdown(sm, np.full(batch, seq), (), ())
    weights = sm.weight_bytes
    per_gpu_mem = hw.memory_capacity_bytes * memory_fraction
    fits = weights / gpus < per_gpu_mem
    out: dict[str, Any] = {
        "model": model.name, "attention": arch.attention, "hardware": hw.name,
        "gpus": gpus, "seq": seq, "batch": batch, "ideal": bool(ideal),
        "kv_dtype": arch.kv_dtype, "weight_dtype": arch.weight_dtype,
        "window": arch.window, "global_tokens": arch.global_tokens,
        "memory_slots": arch.memory_slots, "segment_tokens": arch.segment_tokens,
        "param_count": int(round(val(mc.params))),
        "active_param_count": int(round(val(mc.active_params))),
        "weight_bytes": weights,
        "kv_cache_bytes": kv_seq * batch,
        "kv_cache_bytes_per_sequence": kv_seq,
        "kv_cache_bytes_per_token": sm.kv_bytes_per_token,
        "kv_state_bytes_per_sequence": sm.kv_fixed_bytes,
        "prefill_flops": batch * val(mc.prefill_flops, n=seq),
        "attention_prefill_flops": batch * val(mc.attn_prefill_flops, n=seq),
        "decode_flops_per_token": val(mc.decode_flops, t=seq),
        "attention_decode_flops_per_token": val(mc.attn_decode_flops, t=seq),
        "decode_bytes_per_token": val(mc.decode_bytes, t=seq),
        "prefill_seconds": pre["total_s"],
        "decode_seconds_per_step": dec["total_s"],
        "decode_tokens_per_s": batch / dec["total_s"],
        "prefill_bound": pre["bound"],
        "decode_bound": dec["bound"],
        "complexity": {"time": mc.big_o_time, "cache": mc.big_o_cache},
        "fits": bool(fits),
        "beyond_max_context": seq > model.max_context,
        "max_context": model.max_context,
        "min_gpus": max(1, math.floor(weights / per_gpu_mem) + 1),
        "prefill_breakdown": pre, "decode_breakdown": dec,
    }
    if fits:
        cap = sm.kv_capacity_bytes(memory_fraction)
        out["kv_capacity_bytes"] = cap
        out["max_batch_at_seq"] = int(cap // kv_seq) if kv_seq > 0 else None
        # longest context whose cache fits for this batch (None: the cache stops growing)
        from simkit.costs.analysis import max_context

        out["max_context_at_batch"] = max_context(model, arch, cap, batch)
    return out
