"""Sliding-window attention with a rolling buffer (Beltagy et al. 2020, Longformer,
arXiv:2004.05150; Mistral 7B, arXiv:2310.06825 Sec. 2).

Query i (1-based) attends to its min(i, w) most recent keys:
  prefill pairs = sum_i min(i, w) = n(n+1)/2            if n <= w
                                  = w(w+1)/2 + (n-w) w   otherwise
  decode : 4 H d_h min(t, w);  cache: min(t, w) positions (the buffer stops growing at w)
"""

import sympy as sp

from simkit.costs import symbols as S
from simkit.costs.families.base import (MixerCosts, causal_pairs, matmul_flops_per_token,
                                        mha_projection_params)


def window_pairs(x: sp.Expr, w: sp.Expr) -> sp.Expr:
    return sp.Piecewise((causal_pairs(x), x <= w), (causal_pairs(w) + (x - w) * w, True))


def costs(model, layer) -> MixerCosts:
    params, values = mha_projection_params(model, layer)
    values[S.w] = layer.window
    proj = matmul_flops_per_token(model, layer)
    kv_per_token = 2 * S.H_kv * S.d_h
    held = sp.Min(S.t, S.w)
    return MixerCosts(
        kind="window", params=params,
        proj_prefill_flops_per_token=proj, proj_decode_flops_per_token=proj,
        core_prefill_flops=2 * window_pairs(S.n, S.w) * 2 * S.H * S.d_h,
        core_decode_flops=4 * S.H * S.d_h * held,
        cache_tokens=held, cache_elems_per_token=kv_per_token, state_elems=0 * S.t,
        decode_read_elems=held * kv_per_token, decode_write_elems=kv_per_token,
        big_o_time="O(n*w)", big_o_cache="O(w)", values=values)
