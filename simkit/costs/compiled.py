"""Numeric step-cost models for the simulator: lambdified once per configuration, cached.

`build_step_model(model, arch, hw, gpus, ideal)` turns the sympy `ModelCosts` into numpy
functions of the context length and wraps them in a `StepCostModel` whose `step_time_s` times
one forward iteration of a batch with *different* context lengths exactly (the sum of every
request's attention and cache traffic), never an average. Nothing here simplifies sympy
expressions in a loop: that happens once, in `build_step_model`.

Conventions: decode context `t` = keys attended by the new token (itself included) = the
cache length after it is appended. A prefill chunk of `len` tokens after `start` cached ones
does core(start+len) - core(start) mixing FLOPs (the causal sums telescope).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from simkit.catalog.hardware import HardwareProfile
from simkit.costs import symbols as S
from simkit.costs.arch import ArchSpec
from simkit.costs.model import ModelCosts, model_costs
from simkit.costs.roofline import ACTIVATION_BYTES, Roofline, kv_replication, roofline_for
from simkit.errors import SimkitError


def _lambdify(mc: ModelCosts, expr, var) -> Callable[[np.ndarray], np.ndarray]:
    """A float64 numpy function of one length variable (inputs cast: no int overflow)."""
    import sympy as sp

    e = mc.numeric(expr)
    free = e.free_symbols - {var}
    if free:  # a bug in a family module, never user input
        raise RuntimeError(f"unsubstituted symbols {free} in {e}")
    f = sp.lambdify((var,), e, modules="numpy")
    if not e.has(var):
        c = float(e)
        return lambda x: np.full(np.shape(x), c, dtype=np.float64)
    return lambda x: np.asarray(f(np.asarray(x, dtype=np.float64)), dtype=np.float64)


@dataclass
class StepCostModel:
    """Plain-numpy costs of one model/arch on one TP group of a hardware profile."""

    model: object
    arch: ArchSpec
    hardware: HardwareProfile
    gpus: int
    ideal: bool
    roof: Roofline
    weight_bytes: float
    expert_bytes: float
    n_experts: int
    experts_per_token: int
    kv_bytes_per_token: float
    kv_fixed_bytes: float
    kv_replication: float
    lin_prefill_flops_per_token: float
    lin_decode_flops_per_token: float
    lm_head_flops: float
    allreduces_per_step: int
    d_model: int
    _kv_tokens: Callable
    _core_prefill: Callable  # n -> FLOPs
    _core_decode: Callable  # t -> FLOPs
    _read_bytes: Callable  # t -> bytes read per decode token
    write_bytes: float  # bytes written per decode token

    @property
    def weight_bytes_per_gpu(self) -> float:
        return self.weight_bytes / self.gpus

    @property
    def max_context(self) -> int:
        return int(self.model.max_context)

    # -- memory ---------------------------------------------------------------------
    def kv_tokens(self, t) -> np.ndarray:
        return self._kv_tokens(t)

    def kv_bytes(self, t) -> np.ndarray:
        """Cache + state bytes one sequence holds at context t (whole model, one copy)."""
        return self._kv_tokens(t) * self.kv_bytes_per_token + self.kv_fixed_bytes

    def kv_capacity_bytes(self, memory_fraction: float = 0.9) -> float:
        """Cache bytes (one copy, whole model) the TP group can hold: device memory x gpus
        x fraction - weights (vLLM's gpu_memory_utilization), less KV-head replication."""
        free = self.hardware.memory_capacity_bytes * self.gpus * memory_fraction \
            - self.weight_bytes
        if free <= 0:
            need = self.gpus
            while self.hardware.memory_capacity_bytes * need * memory_fraction \
                    <= self.weight_bytes:
                need += 1
            raise SimkitError(
                f"{self.model.name} does not fit: its weights take "
                f"{self.weight_bytes / 2**30:.1f} GiB but {self.gpus} x {self.hardware.name} "
                f"x memory_fraction {memory_fraction} hold "
                f"{self.hardware.memory_capacity_bytes * self.gpus * memory_fraction / 2**30:.1f}"
                f" GiB; it needs at least {need} GPUs (hardware.gpus_per_replica / --gpus)")
        return free / self.kv_replication

    # -- time -----------------------------------------------------------------------
    def _weight_read_bytes(self, tokens: float) -> float:
        """Weights streamed once per step; MoE reads only the experts its tokens touch:
        E (1 - (1 - k/E)^tokens) of E per layer in expectation (uniform routing)."""
        if not self.n_experts:
            return self.weight_bytes
        frac = 1.0 - (1.0 - self.experts_per_token / self.n_experts) ** tokens
        return self.weight_bytes - self.expert_bytes * (1.0 - frac)

    def _linear_time_s(self, n_decode: int, n_prefill_tokens: int, n_chunks: int) -> float:
        tokens = n_decode + n_prefill_tokens
        if tokens == 0:
            return 0.0
        flops = (n_decode * self.lin_decode_flops_per_token
                 + n_prefill_tokens * self.lin_prefill_flops_per_token
                 + (n_decode + n_chunks) * self.lm_head_flops)
        t = float(self.roof.op_time_s(flops, self._weight_read_bytes(tokens),
                                      self.roof.matmul_flops_per_s))
        t += self.allreduces_per_step * float(
            self.roof.allreduce_time_s(tokens * self.d_model * ACTIVATION_BYTES))
        return t + self.roof.overhead_s

    def decode_steps_s(self, ctx, k: int) -> np.ndarray:
        """Times of k consecutive decode-only iterations; row j has contexts ctx + j."""
        ctx = np.asarray(ctx, dtype=np.float64)
        k = int(k)
        if ctx.size == 0:
            return np.zeros(k)
        lin = self._linear_time_s(ctx.size, 0, 0)
        out = np.empty(k)
        rows = max(1, 2_000_000 // ctx.size)  # bound the (k, batch) temporaries
        for j0 in range(0, k, rows):
            j1 = min(k, j0 + rows)
            t = ctx[None, :] + np.arange(j0, j1, dtype=np.float64)[:, None]
            flops = self._core_decode(t).sum(axis=1)
            bytes_ = (self._read_bytes(t) + self.write_bytes).sum(axis=1) * self.kv_replication
            out[j0:j1] = self.roof.op_time_s(flops, bytes_, self.roof.attn_flops_per_s) + lin
        return out

    def step_time_s(self, decode_ctx=(), prefill_start=(), prefill_len=()) -> float:
        """One forward iteration: decodes at contexts `decode_ctx` plus prefill chunks."""
        dc = np.asarray(decode_ctx, dtype=np.float64).reshape(-1)
        ps = np.asarray(prefill_start, dtype=np.float64).reshape(-1)
        pl = np.asarray(prefill_len, dtype=np.float64).reshape(-1)
        if ps.size != pl.size:
            raise ValueError("prefill_start and prefill_len differ in length")
        if ps.size == 0:
            if dc.size == 0:
                return 0.0
            return float(self.decode_steps_s(dc, 1)[0])
        n_tok = float(pl.sum())
        lin = self._linear_time_s(dc.size, n_tok, ps.size)
        end = ps + pl
        flops = float((self._core_prefill(end) - self._core_prefill(ps)).sum())
        # a chunk writes its tokens' cache and reads the prefix already cached
        bytes_ = float((self._kv_tokens(end) * self.kv_bytes_per_token
                        + self._kv_tokens(ps) * self.kv_bytes_per_token).sum()
                       + 2 * self.kv_fixed_bytes * ps.size)
        if dc.size:
            flops += float(self._core_decode(dc).sum())
            bytes_ += float((self._read_bytes(dc) + self.write_bytes).sum())
        return float(self.roof.op_time_s(flops, bytes_ * self.kv_replication,
                                         self.roof.attn_flops_per_s)) + lin

    def prefill_time_s(self, n, start: int = 0) -> float:
        return self.step_time_s((), [start], [n])

    def decode_time_s(self, ctx, batch: int = 1) -> float:
        """One decode step of `batch` sequences all at context `ctx`."""
        return self.step_time_s(np.full(int(batch), float(ctx)))


_CACHE: dict = {}


def _hw_key(hw: HardwareProfile) -> tuple:
    return (hw.name, tuple(sorted(hw.peak_flops_per_s.items())), hw.memory_bandwidth_bytes_per_s,
            hw.memory_capacity_bytes, hw.interconnect_bytes_per_s, hw.host_link_bytes_per_s,
            hw.interconnect_latency_s, hw.compute_efficiency, hw.memory_efficiency,
            hw.step_overhead_s)


def build_step_model(model, arch: ArchSpec, hw: HardwareProfile, gpus: int = 1,
                     ideal: bool = False) -> StepCostModel:
    """The numeric step model of `model` with `arch` on `gpus` x `hw` (cached)."""
    if not isinstance(gpus, int) or isinstance(gpus, bool) or gpus <= 0:
        raise SimkitError(f"gpus: must be a positive integer, got {gpus!r}")
    arch = arch.resolve(model)
    key = (model, arch, _hw_key(hw), gpus, bool(ideal))
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    mc = model_costs(model, arch)
    n, t = S.n, S.t
    num = lambda e: float(mc.numeric(e))  # noqa: E731
    sm = StepCostModel(
        model=model, arch=arch, hardware=hw, gpus=gpus, ideal=bool(ideal),
        roof=roofline_for(hw, arch.weight_dtype, arch.kv_dtype, gpus, ideal),
        weight_bytes=num(mc.weight_bytes), expert_bytes=num(mc.expert_bytes),
        n_experts=model.n_experts, experts_per_token=model.experts_per_token,
        kv_bytes_per_token=num(mc.cache_bytes_per_token), kv_fixed_bytes=num(mc.state_bytes),
        kv_replication=kv_replication(model, arch.attention, gpus),
        lin_prefill_flops_per_token=num(mc.linear_prefill_flops_per_token),
        lin_decode_flops_per_token=num(mc.linear_decode_flops_per_token),
        lm_head_flops=num(mc.lm_head_flops), allreduces_per_step=2 * model.n_layers,
        d_model=model.d_model,
        _kv_tokens=_lambdify(mc, mc.cache_tokens, t),
        _core_prefill=_lambdify(mc, mc.attn_prefill_flops, n),
        _core_decode=_lambdify(mc, mc.attn_decode_flops, t),
        _read_bytes=_lambdify(mc, mc.decode_cache_read_bytes, t),
        write_bytes=num(mc.decode_cache_write_bytes))
    if len(_CACHE) > 512:
        _CACHE.clear()
    _CACHE[key] = sm
    return sm


def min_gpus(model, arch: ArchSpec, hw: HardwareProfile, memory_fraction: float = 0.9) -> int:
    """Fewest GPUs whose memory x fraction exceeds the weights."""
    wb = float(model_costs(model, arch.resolve(model)).numeric(
        model_costs(model, arch.resolve(model)).weight_bytes))
    return max(1, math.floor(wb / (hw.memory_capacity_bytes * memory_fraction)) + 1)


def step_breakdown(sm: StepCostModel, decode_ctx=(), prefill_start=(), prefill_len=()) -> dict:
    """FLOPs, bytes and times of one iteration split by operator (for reports and `cost`).

    Uses the same formulas as `StepCostModel.step_time_s`; `total_s` equals it.
    """
    dc = np.asarray(decode_ctx, dtype=np.float64).reshape(-1)
    ps = np.asarray(prefill_start, dtype=np.float64).reshape(-1)
    pl = np.asarray(prefill_len, dtype=np.float64).reshape(-1)
    tokens = dc.size + float(pl.sum())
    lin_flops = (dc.size * sm.lin_decode_flops_per_token
                 + float(pl.sum()) * sm.lin_prefill_flops_per_token
                 + (dc.size + ps.size) * sm.lm_head_flops)
    lin_bytes = sm._weight_read_bytes(tokens) if tokens else 0.0
    end = ps + pl
    attn_flops = float((sm._core_prefill(end) - sm._core_prefill(ps)).sum()) \
        + float(sm._core_decode(dc).sum())
    attn_bytes = (float((sm._kv_tokens(end) * sm.kv_bytes_per_token
                         + sm._kv_tokens(ps) * sm.kv_bytes_per_token).sum())
                  + 2 * sm.kv_fixed_bytes * ps.size
                  + float((sm._read_bytes(dc) + sm.write_bytes).sum())) * sm.kv_replication
    r = sm.roof
    comm_s = sm.allreduces_per_step * float(
        r.allreduce_time_s(tokens * sm.d_model * ACTIVATION_BYTES)) if tokens else 0.0
    lin_c, lin_m = lin_flops / r.matmul_flops_per_s, lin_bytes / r.bytes_per_s
    att_c, att_m = attn_flops / r.attn_flops_per_s, attn_bytes / r.bytes_per_s
    compute_s, memory_s = lin_c + att_c, lin_m + att_m
    return {
        "linear_flops": lin_flops, "linear_bytes": lin_bytes,
        "attention_flops": attn_flops, "attention_bytes": attn_bytes,
        "linear_compute_s": lin_c, "linear_memory_s": lin_m,
        "attention_compute_s": att_c, "attention_memory_s": att_m,
        "communication_s": comm_s, "overhead_s": r.overhead_s if tokens else 0.0,
        "compute_s": compute_s, "memory_s": memory_s,
        "bound": "compute" if compute_s >= memory_s else "memory",
        "total_s": sm.step_time_s(dc, ps, pl),
    }
