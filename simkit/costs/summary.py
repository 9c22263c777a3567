"""The numbers of `simkit cost`: one configuration at one context length.

`evaluate_costs` returns a flat dict with the documented `simkit cost --json` keys (SI units) plus extras; sizes
are bytes, times seconds, FLOPs counted with a multiply-add = 2. KV figures per sequence and
per token are one copy of the cache (what papers report); `kv_capacity_bytes`, `fits` and
`max_batch_at_seq` count the physical bytes on the tensor-parallel GPUs (replicated KV heads
and MLA latents once per GPU that holds them), beside the weights and the engine's
`activation_reserve_bytes` (`simkit.costs.activations`; `fits_limit` "activations" when the
weights fit but not beside it).
"""

from __future__ import annotations

import math
import warnings
from types import SimpleNamespace
from typing import Any

import numpy as np

from simkit.costs.activations import DEFAULT_MAX_BATCH, profile_pass
from simkit.costs.arch import ArchSpec
from simkit.costs.compiled import build_step_model, step_breakdown
from simkit.costs.model import model_costs
from simkit.errors import SimkitError, SimkitWarning


def evaluate_costs(model, arch: ArchSpec, hw, seq: int, batch: int = 1, gpus: int = 1,
                   ideal: bool = False, memory_fraction: float = 0.9,
                   engine=None, max_batch_tokens: int | None = None,
                   max_batch: int | None = None) -> dict[str, Any]:
    """Costs of `batch` sequences of context `seq` (prefill of `seq` tokens each, then one
    decode step at context `seq`). `max_batch_tokens` and `max_batch` are the engine's step
    budget and batch limit, which size its activation reserve (None: a serving section's
    defaults, the batch limit at least `batch`)."""
    for name, v in (("seq", seq), ("batch", batch), ("gpus", gpus),
                    ("max-batch-tokens", max_batch_tokens), ("max-batch", max_batch)):
        if v is None and name.startswith("max"):
            continue
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise SimkitError(f"--{name}: must be a positive integer, got {v!r}")
    if max_batch is not None and max_batch < batch:
        raise SimkitError(f"--max-batch: {max_batch} is below --batch {batch}: the engine "
                          "could not hold the batch")
    arch = arch.resolve(model)
    mc = model_costs(model, arch)
    sm = build_step_model(model, arch, hw, gpus=gpus, ideal=ideal, engine=engine)
    val = lambda e, **kw: mc.value(e, **kw)  # noqa: E731
    context = sm.max_context
    if seq > context:
        warnings.warn(SimkitWarning(
            f"--seq {seq} is beyond {model.name}'s {context}-token context: a what-if (set "
            "--max-context to the deployed context to silence this)"))
    kv_seq = float(sm.kv_bytes_logical(np.array([seq]))[0])
    kv_phys = float(sm.kv_bytes(np.array([seq]))[0])
    pre = step_breakdown(sm, (), [0] * batch, [seq] * batch)
    dec = step_breakdown(sm, np.full(batch, seq), (), ())
    weights = sm.weight_bytes
    device = hw.memory_capacity_bytes * gpus * memory_fraction
    groups = []
    for g in mc.groups:
        groups.append({"layers": g.count, "kind": g.spec.kind, "label": g.label,
                       "ffn": g.spec.ffn,
                       "kv_cache_bytes_per_sequence": val(g.cache_bytes, t=seq)})
    out: dict[str, Any] = {
        "model": model.name, "attention": arch.attention, "layers": arch.describe(),
        "layer_groups": groups, "hardware": hw.name, "engine": sm.engine.name,
        "gpus": gpus, "seq": seq, "batch": batch, "ideal": bool(ideal),
        "kv_dtype": arch.kv_dtype, "weight_dtype": arch.weight_dtype,
        "expert_weight_dtype": arch.expert_weight_dtype,
        "window": arch.window, "global_tokens": arch.global_tokens, "chunk": arch.chunk,
        "memory_slots": arch.memory_slots, "segment_tokens": arch.segment_tokens,
        "param_count": int(round(val(mc.params))),
        "active_param_count": int(round(val(mc.active_params))),
        "weight_bytes": weights,
        "streamed_weight_bytes": sm.streamed_weight_bytes,
        "kv_cache_bytes": kv_seq * batch,
        "kv_cache_bytes_per_sequence": kv_seq,
        "kv_cache_bytes_per_token": val(mc.cache_bytes_per_token),
        "kv_state_bytes_per_sequence": val(mc.state_bytes),
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
        "beyond_max_context": seq > context,
        "max_context": context,
        "trained_context": model.max_context,
        "min_gpus": max(1, math.floor(weights / (hw.memory_capacity_bytes * memory_fraction))
                        + 1),
        "memory_bytes": device,
        "kv_cache_bytes_physical": kv_phys * batch,
        "prefill_breakdown": pre, "decode_breakdown": dec,
    }
    # fits: weights plus this batch's caches at this context, in the memory the fraction
    # leaves; `fits_limit` says which one binds when it does not
    # the engine's activation reserve, for the profiling pass of a serving section with
    # these limits (`activations.profile_pass`), room for this batch by default
    limit = max(batch, DEFAULT_MAX_BATCH) if max_batch is None else max_batch
    tokens, sequences = profile_pass(SimpleNamespace(max_batch=limit,
                                                     max_batch_tokens=max_batch_tokens),
                                     context)
    reserve = sm.activation_reserve_bytes(tokens, sequences)
    out["activation_reserve_bytes"] = reserve
    if weights >= device:
        out.update(fits=False, fits_limit="weights")
        return out
    if weights + reserve >= device:
        out.update(fits=False, fits_limit="activations")
        return out
    cap = sm.kv_capacity_bytes(memory_fraction, tokens, sequences)
    fits = kv_phys * batch <= cap
    out.update(fits=bool(fits), fits_limit=None if fits else "kv_cache", kv_capacity_bytes=cap,
               max_batch_at_seq=int(cap // kv_phys) if kv_phys > 0 else None)
    # longest context whose cache fits for this batch (None: the cache stops growing)
    from simkit.costs.analysis import max_context

    out["max_context_at_batch"] = max_context(model, arch, cap, batch, gpus=gpus)
    return out
