"""The memory an engine holds back for activations before it sizes the KV cache.

vLLM sizes its cache from what a profiling pass leaves: KV bytes = total memory x
``gpu_memory_utilization`` - weights - the PyTorch peak the pass reached - non-torch memory
(V1: ``Worker.determine_available_memory``, vllm/v1/worker/gpu_worker.py; V0 the same in
vllm/worker/worker.py, which logs "PyTorch activation peak memory takes X GiB"). The pass
(``GPUModelRunner.profile_run``) runs one forward of ``max_num_batched_tokens`` tokens spread
over ``max_num_seqs`` dummy requests, then the sampler on ``max_num_seqs`` rows of logits, so
the reserve grows with the token budget: one DGX-Spark deployment logged a 5.30 GiB peak at
8,224 batched tokens and 1.39 GiB at 2,048 (MiaAI-Lab/DeepSeek-v4-Flash-One-DGX-Spark issue
#4, 2026-08-21). TensorRT-LLM likewise takes its activation buffers (sized for
``max_num_tokens``) before ``kv_cache_free_gpu_mem_fraction`` of what is free goes to the
cache. SGLang's ``mem_fraction_static`` counts weights and cache only (activations come out
of the rest), and the roofline reserves nothing: an engine profile says which it does
(`EngineProfile.reserves_activations`).

The peak is estimated by counting the tensors alive at the widest point of a layer, on one
GPU, in 16-bit activations:

    per token   2 d                      the residual stream and the layer's normed input
              + max over the layers of
                  attention    (2 H + 2 H_kv) d_h / N     q, k, v and the output
                  dense FFN    3 F / N (gated) or 2 F / N  gate|up output and the activation
                  routed MoE   k (3 F_e / N + d)           vLLM's fused-MoE caches: the
                                                           gate|up [M, k, 2 F_e], activation
                                                           [M k, F_e] and output [M, k, d]
                  shared FFN   3 F_s / N                   shared experts (their output,
                                                           d, waits beside the routed ones)
                  SSM          2 e d / N                   Mamba's in_proj (x and z)
                  linear       (2 H_k d_k + 2 H_v d_v) / N q, k, v and the output
    sampler     R V x 14 bytes (16-bit logits gathered over the vocabulary shards, their
                fp32 copy, the fp32 probabilities and the fp32 exponential draws of
                vLLM's random sampler) + the M d hidden states the pass keeps

and the peak is the larger of M x per-token and the sampler's, M = the pass's tokens, R its
sequences, N the tensor-parallel GPUs. It is a count of tensors, not a measurement of the
caching allocator (its rounding and fragmentation, library workspaces), so it is a floor on
what an engine reserves. Non-torch memory (NCCL and cuBLAS workspaces) and CUDA graphs
(captured after the cache is sized, out of the memory the utilization leaves) are not
counted.
"""

from __future__ import annotations

from simkit.costs.roofline import ACTIVATION_BYTES as ACT_BYTES  # 16-bit activations
from simkit.stack import groups

#: bytes held per logit by the sampler pass: 2 (16-bit, gathered) + 4 (fp32 copy) + 4 (fp32
#: probabilities) + 4 (fp32 exponential draws; vllm/v1/sample/ops/topk_topp_sampler.py
#: `random_sample`)
SAMPLER_BYTES_PER_LOGIT = 14
#: tokens of the profiling pass when the serving section caps neither the step nor the
#: chunk: vLLM V1's default ``max_num_batched_tokens`` for the offline LLM class on GPUs
#: below 70 GiB (vllm/engine/arg_utils.py `_set_default_args`: 8,192; 16,384 above 70 GiB,
#: 2,048 / 8,192 for `vllm serve`), or the longest sequence when that is shorter
UNCAPPED_PROFILE_TOKENS = 8192
#: sequences of the pass when nothing names a batch limit: the serving section's default
#: ``max_batch`` (vLLM's ``max_num_seqs`` default of 256)
DEFAULT_MAX_BATCH = 256


def _mixer_width(model, spec, gpus: int) -> float:
    """Elements per token the layer's token mixer holds at once, on one GPU."""
    kind = spec.kind
    if kind == "none":
        return 0.0
    if kind == "ssm":
        return 2.0 * model.ssm_expand * model.d_model / gpus
    if kind == "linear" and model.linear_key_heads:
        return (2.0 * model.linear_key_heads * model.linear_key_dim
                + 2.0 * model.linear_value_heads * model.linear_value_dim) / gpus
    if kind == "mla":
        v = model.v_head_dim or model.head_dim
        return 2.0 * model.n_heads * (model.head_dim + model.qk_rope_head_dim + v) / gpus
    d_h = spec.head_dim or model.head_dim
    return (2.0 * model.n_heads + 2.0 * model.n_kv_heads) * d_h / gpus


def _ffn_width(model, spec, gpus: int) -> float:
    """Elements per token the layer's FFN holds at once, on one GPU."""
    mult = 3.0 if model.ffn_gated else 2.0
    if spec.ffn == "none":
        return 0.0
    if spec.ffn == "dense" or not model.n_experts:
        return mult * model.ffn_dim / gpus
    f_e = model.moe_ffn_dim or model.ffn_dim
    routed = model.experts_per_token * (mult * f_e / gpus + model.d_model)
    # shared experts as `simkit.costs.ffn.moe_ffn` counts them: one of width F_s, or n_s
    # more of width F_e, run beside the routed ones
    f_s = model.shared_expert_ffn_dim or model.n_shared_experts * f_e
    shared = mult * f_s / gpus
    return max(routed + (model.d_model if shared else 0.0), shared)


def forward_bytes_per_token(model, stack, gpus: int) -> float:
    """Bytes one token of the profiling forward holds on one GPU at the widest layer (the
    module docstring's per-token line)."""
    widest = max((max(_mixer_width(model, s, gpus), _ffn_width(model, s, gpus))
                  for s, _ in groups(stack)), default=0.0)
    return ACT_BYTES * (2.0 * model.d_model + widest)


def profile_peak_bytes(model, stack, gpus: int, tokens: int, sequences: int) -> float:
    """Activation bytes one GPU of `gpus` reaches in the profiling pass of `tokens` tokens
    over `sequences` sampled rows: the forward's widest layer or the sampler's logits, which
    ever is larger."""
    forward = tokens * forward_bytes_per_token(model, stack, gpus)
    sampler = sequences * model.vocab_size * SAMPLER_BYTES_PER_LOGIT \
        + tokens * model.d_model * ACT_BYTES
    return float(max(forward, sampler))


def profile_pass(serving, context: int) -> tuple[int, int]:
    """(tokens, sequences) of the engine's profiling pass under a serving section: the
    step's token budget (the chunked scheduler's chunk, or ``max_batch_tokens``), else the
    longest sequence up to `UNCAPPED_PROFILE_TOKENS`; and ``max_batch`` sequences."""
    longest = int(getattr(serving, "max_seq_len", None) or context)
    budget = getattr(serving, "max_batch_tokens", None)
    if getattr(serving, "scheduler", "") == "chunked":
        chunk = int(getattr(serving, "chunk_tokens", 512))
        budget = chunk if budget is None else min(chunk, int(budget))
    tokens = int(budget) if budget is not None else min(longest, UNCAPPED_PROFILE_TOKENS)
    return tokens, int(getattr(serving, "max_batch", DEFAULT_MAX_BATCH))
