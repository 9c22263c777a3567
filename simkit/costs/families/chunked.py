"""Chunked local attention (Llama 4, Meta 2025; `attention_chunk_size` in its HF config):
the sequence is cut into chunks of c tokens and a query attends causally within its own
chunk only (iRoPE interleaves these layers with global NoPE full-attention layers).

Query i (1-based) attends to ((i - 1) mod c) + 1 keys. With q = floor(x / c), r = x mod c:
  prefill pairs = q c(c+1)/2 + r(r+1)/2
  decode : 4 H d_h (((t - 1) mod c) + 1);  cache: the current chunk's positions, at most c
  (a server frees the blocks of finished chunks: vLLM's ChunkedLocalAttentionSpec).
"""

import sympy as sp

from simkit.costs import symbols as S
from simkit.costs.families.base import (MixerCosts, causal_pairs, matmul_flops_per_token,
                                        mha_projection_params)


def chunked_pairs(x: sp.Expr, c: sp.Expr) -> sp.Expr:
    r = sp.Mod(x, c)
    q = (x - r) / c
    return q * causal_pairs(c) + causal_pairs(r)


def costs(model, layer) -> MixerCosts:
    params, values = mha_projection_params(model, layer)
    values[S.c] = layer.chunk
    proj = matmul_flops_per_token(model, layer)
    kv_per_token = 2 * S.H_kv * S.d_h
    held = sp.Mod(S.t - 1, S.c) + 1
    return MixerCosts(
        kind="chunked", params=params,
        proj_prefill_flops_per_token=proj, proj_decode_flops_per_token=proj,
        core_prefill_flops=2 * chunked_pairs(S.n, S.c) * 2 * S.H * S.d_h,
        core_decode_flops=4 * S.H * S.d_h * held,
        cache_tokens=held, cache_elems_per_token=kv_per_token, state_elems=0 * S.t,
        decode_read_elems=held * kv_per_token, decode_write_elems=kv_per_token,
        big_o_time="O(n*c)", big_o_cache="O(c)", values=values)
