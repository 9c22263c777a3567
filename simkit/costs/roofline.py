"""Roofline rates of one tensor-parallel group: hardware profile x engine profile.

An operator that does F FLOPs and moves B bytes takes max(F / (peak x eff_c), B / (bw x
eff_m)) (Williams, Waterman & Patterson 2009, "Roofline", CACM 52(4)). A forward step is
timed per operator -- the weight matmuls (projections, FFN, LM head), the prefill attention
core and the decode attention core, each against its own roof -- plus the engine's fixed
costs and the tensor-parallel all-reduces: the per-operator roofline LLM-Viewer
(arXiv:2402.16363) uses, with engine terms fitted to measurements (`simkit.costs.engine`).
`simkit.costs.compiled` holds the one formula that adds these up. A routed-expert layer
adds its kernels' fixed latency and per-slot traffic (`MOE_KERNEL_COSTS`).

`ideal=True` is the pure bound: efficiencies 1, no overhead, no link latency.

Tensor parallelism over N GPUs (Megatron-LM, arXiv:1909.08053): weights, FLOPs and heads are
split N ways; one all-reduce after every token mixer and every FFN of the step's activations
(tokens x d x 2 bytes), ring: alpha + 2 (N-1) x alpha_step + 2 (N-1)/N x bytes / (link x
efficiency) -- the latency-bandwidth model nccl-tests' PERFORMANCE.md states (busbw = algbw x
2 (N-1)/N), with a per-step latency because a ring's 2 (N-1) steps run one after another
(measured NCCL latency grows with N; a one-shot custom all-reduce's does not). KV heads cannot
be split below one per GPU: with H_kv < N each GPU holds a copy (MQA/GQA replication), and an
MLA latent cache is replicated on every GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from simkit.catalog.hardware import HardwareProfile
from simkit.costs.engine import IDEAL, EngineProfile, load_engine

ACTIVATION_BYTES = 2  # bf16 activations in the all-reduces

#: A routed-expert (MoE) layer's kernels beyond its GEMMs and weight streaming, by the dtype
#: its expert GEMMs run in: (latency per MoE layer and step in s, HBM bytes per routed
#: token-expert slot per GPU). Routing, permuting each token's hidden state to its experts,
#: quantizing it for the expert GEMMs and combining the results cost a fixed chain of small
#: kernels and traffic per slot (tokens x experts_per_token); neither shows in the GEMMs'
#: FLOPs. Fitted by `benchmarks/fit_moe_kernels.py` (least squares on relative error) on
#: NVIDIA's timings of TensorRT-LLM 1.2.0rc5's MoE layer on one H200 and one B200
#: (`simkit/data/measurements/kernels_moe_aiconfigurator.csv`, from ai-dynamo/aiconfigurator:
#: balanced routing, 1-16,384 tokens, shapes from Qwen3-30B-A3B's 128 experts of 768 to
#: Mixtral's 8 of 14,336) as max(touched experts' weights / (0.9 x datasheet bandwidth),
#: FLOPs / the hardware's best GEMM rate of the dtype) + latency + slots x bytes / datasheet
#: bandwidth: 5-6% median error in 16-bit and fp8, 18% in NVFP4, where the streaming and GEMM
#: terms alone are 12-23% and 55% fast. Held out: H100's timings within 6.1% (16-bit) and
#: 6.9% (fp8) median, vLLM 0.19's fused MoE on H100/H200/B200 within 7-20% (12-35% fast
#: without the two terms).
MOE_KERNEL_COSTS = {"16-bit": (39.0e-6, 55.0e3), "fp8": (42.3e-6, 85.0e3),
                    "fp4": (73.6e-6, 137.5e3)}


@dataclass(frozen=True)
class Roofline:
    """Effective rates and fixed costs of one tensor-parallel group (all its GPUs)."""

    gpus: int
    engine: EngineProfile
    matmul_flops_per_s: float  # weight matmuls at the engine's best shape
    attn_flops_per_s: float  # attention core (16-bit, fp32 if the cache is fp32)
    bytes_per_s: float  # weight (and prefill KV) streaming
    weight_bytes_per_s: float  # weight streaming (NVFP4 on FP4 tensor cores: slower)
    attn_decode_bytes_per_s: float  # decode attention reading the KV cache
    overhead_s: float  # per step
    layer_overhead_s: float  # per layer and step
    sequence_overhead_s: float  # per sequence in the step
    link_bytes_per_s: float  # achieved all-reduce bus bandwidth per GPU
    link_latency_s: float  # per all-reduce
    link_step_latency_s: float  # per ring step (2 (N-1) of them)
    ideal: bool
    moe_layer_s: float = 0.0  # per routed-expert layer and step (`MOE_KERNEL_COSTS`)
    moe_slot_s: float = 0.0  # per routed token-expert slot and MoE layer (each GPU)
    #: the LM head's FLOPs in weight-matmul time: the layers' GEMM rate over the head's,
    #: which runs in the vocabulary's dtype (`ArchSpec.vocab_dtype`: 16-bit beside fp8 or
    #: fp4 layers; 1 when they match)
    head_flops_scale: float = 1.0

    def op_time_s(self, flops, bytes_, flops_per_s, bytes_per_s=None):
        """max(compute, memory) of one operator (numpy broadcasts)."""
        import numpy as np

        return np.maximum(flops / flops_per_s, bytes_ / (bytes_per_s or self.bytes_per_s))

    def moe_kernels_s(self, moe_layers, slots):
        """The routed-expert layers' kernels in one step: their latency plus the traffic of
        `slots` token-expert slots (tokens x experts per token), on every MoE layer."""
        return moe_layers * (self.moe_layer_s + slots * self.moe_slot_s)

    def allreduce_time_s(self, bytes_):
        """One all-reduce of `bytes_` per GPU over the group (0 on one GPU)."""
        if self.gpus == 1:
            return 0.0 * bytes_
        n = self.gpus
        return (self.link_latency_s + 2 * (n - 1) * self.link_step_latency_s
                + 2 * (n - 1) / n * bytes_ / self.link_bytes_per_s)


def roofline_for(hw: HardwareProfile, weight_dtype: str = "bf16", kv_dtype: str = "bf16",
                 gpus: int = 1, ideal: bool = False, engine=None,
                 head_dtype: str | None = None) -> Roofline:
    """The rates of `gpus` x `hw` for weights in `weight_dtype` (the GEMMs' dtype), a cache
    in `kv_dtype` and an LM head in `head_dtype` (None: the weights')."""
    prof = hw.ideal() if ideal else hw
    eng = IDEAL if ideal else load_engine(engine)
    attn_dtype = "fp32" if kv_dtype == "fp32" else "bf16"
    bw = prof.memory_bandwidth_bytes_per_s * prof.memory_efficiency * gpus
    low, stream = prof.low_precision_factors(weight_dtype, eng.fp8_gemm_efficiency_on(prof.name))
    moe_layer_s = moe_slot_s = 0.0
    if eng.moe_kernels:
        moe_layer_s, slot_bytes = moe_kernel_costs(prof, weight_dtype)
        moe_slot_s = slot_bytes / prof.memory_bandwidth_bytes_per_s
    head_scale = 1.0 if head_dtype is None else \
        prof.peak_for(weight_dtype) * low / prof.peak_for(head_dtype)
    return Roofline(
        gpus=gpus, engine=eng, head_flops_scale=head_scale,
        matmul_flops_per_s=prof.peak_for(weight_dtype) * prof.compute_efficiency * gpus * low,
        attn_flops_per_s=prof.peak_for(attn_dtype) * prof.compute_efficiency * gpus
        * eng.attn_prefill_efficiency,
        bytes_per_s=bw * eng.memory_efficiency,
        weight_bytes_per_s=bw * eng.memory_efficiency * stream,
        attn_decode_bytes_per_s=bw * eng.attn_decode_efficiency,
        overhead_s=eng.step_overhead_on(prof),
        layer_overhead_s=eng.layer_overhead_s, sequence_overhead_s=eng.sequence_overhead_s,
        link_bytes_per_s=prof.interconnect_bytes_per_s * eng.allreduce_efficiency,
        link_latency_s=eng.allreduce_latency_on(prof),
        link_step_latency_s=eng.allreduce_step_latency_s, ideal=ideal,
        moe_layer_s=moe_layer_s, moe_slot_s=moe_slot_s)


def moe_kernel_costs(hw: HardwareProfile, weight_dtype: str) -> tuple[float, float]:
    """(latency per MoE layer in s, bytes per slot) of the class the expert GEMMs of
    `weight_dtype` run in on `hw` (NVFP4 without FP4 tensor cores runs 16-bit GEMMs)."""
    d = hw.gemm_dtype(weight_dtype)
    return MOE_KERNEL_COSTS[d if d in ("fp4", "fp8") else "16-bit"]


def kv_replication(model, kind: str, gpus: int) -> float:
    """How many times a layer group's cache is stored across a TP group, relative to one
    copy (1 when heads split evenly; constant-state mixers split by heads)."""
    if gpus == 1 or kind in ("ssm", "linear", "none"):
        return 1.0
    if kind == "mla":
        return float(gpus)  # one latent per token, needed by every head shard
    kv = model.n_kv_heads
    return gpus * math.ceil(kv / gpus) / kv


def gpus_needed(weight_bytes: float, hw: HardwareProfile, memory_fraction: float = 0.9) -> int:
    """Fewest GPUs whose memory x fraction holds the weights with room left for a cache."""
    return max(1, math.floor(weight_bytes / (hw.memory_capacity_bytes * memory_fraction)) + 1)
