"""Roofline timing on a hardware profile, with tensor parallelism.

An operator that does F FLOPs and moves B bytes takes max(F / (peak x eff_c), B / (bw x
eff_m)) (Williams, Waterman & Patterson 2009, "Roofline", CACM 52(4)). A forward step is
timed as two operators, the weight matmuls (projections, FFN, LM head) and the token mixing
(attention core with its cache traffic), each against its own roof, plus a fixed per-step
overhead and the tensor-parallel all-reduces -- the per-operator roofline that LLM-Viewer
(arXiv:2402.16363) uses, without its per-kernel detail.

`ideal=True` is the pure bound: efficiencies 1, no overhead, no link latency.

Tensor parallelism over N GPUs (Megatron-LM, arXiv:1909.08053): weights, FLOPs and heads are
split N ways; two all-reduces per layer (after attention and after the FFN) of the step's
activations (tokens x d x 2 bytes) cost alpha + 2 (N-1)/N x bytes / link (ring all-reduce).
KV heads cannot be split below one per GPU: with H_kv < N each GPU holds a copy (MQA/GQA
replication), and an MLA latent cache is replicated on every GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simkit.catalog.hardware import HardwareProfile

ACTIVATION_BYTES = 2  # bf16 activations in the all-reduces


@dataclass(frozen=True)
class Roofline:
    """Effective rates of one tensor-parallel group (all its GPUs together)."""

    gpus: int
    matmul_flops_per_s: float  # weight matmuls, in the weight dtype's compute precision
    attn_flops_per_s: float  # attention core (16-bit, fp32 if the cache is fp32)
    bytes_per_s: float
    overhead_s: float
    link_bytes_per_s: float
    link_latency_s: float
    ideal: bool

    def op_time_s(self, flops, bytes_, flops_per_s):
        """max(compute, memory) of one operator (numpy broadcasts)."""
        import numpy as np

        return np.maximum(flops / flops_per_s, bytes_ / self.bytes_per_s)

    def allreduce_time_s(self, bytes_):
        if self.gpus == 1:
            return 0.0 * bytes_
        n = self.gpus
        return self.link_latency_s + 2 * (n - 1) / n * bytes_ / self.link_bytes_per_s


def roofline_for(hw: HardwareProfile, weight_dtype: str = "bf16", kv_dtype: str = "bf16",
                 gpus: int = 1, ideal: bool = False) -> Roofline:
    prof = hw.ideal() if ideal else hw
    attn_dtype = "fp32" if kv_dtype == "fp32" else "bf16"
    return Roofline(
        gpus=gpus,
        matmul_flops_per_s=prof.peak_for(weight_dtype) * prof.compute_efficiency * gpus,
        attn_flops_per_s=prof.peak_for(attn_dtype) * prof.compute_efficiency * gpus,
        bytes_per_s=prof.memory_bandwidth_bytes_per_s * prof.memory_efficiency * gpus,
        overhead_s=prof.step_overhead_s,
        link_bytes_per_s=prof.interconnect_bytes_per_s,
        link_latency_s=prof.interconnect_latency_s,
        ideal=ideal)


def kv_replication(model, kind: str, gpus: int) -> float:
    """How many times the whole-model cache is stored across a TP group, relative to one
    copy (1 when heads split evenly)."""
    if gpus == 1 or kind == "ssm":
        return 1.0
    if kind == "mla":
        return float(gpus)  # one latent per token, needed by every head shard
    kv = model.n_kv_heads
    return gpus * math.ceil(kv / gpus) / kv


def gpus_needed(weight_bytes: float, hw: HardwareProfile, memory_fraction: float = 0.9) -> int:
    """Fewest GPUs whose memory x fraction holds the weights with room left for a cache."""
    return max(1, math.floor(weight_bytes / (hw.memory_capacity_bytes * memory_fraction)) + 1)
