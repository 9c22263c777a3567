"""Sliding window + g global tokens (Longformer arXiv:2004.05150; BigBird arXiv:2007.14062),
in its causal form: the globals are the FIRST g positions, kept forever (as the attention
sinks of StreamingLLM, arXiv:2309.17453), and every query also sees its w most recent keys.

Query i attends to min(i, w) + min(g, max(0, i - w)) keys, so with u = n - w:
  pairs = n(n+1)/2                                     n <= w
        = w(w+1)/2 + u w + u(u+1)/2                    w < n <= w + g
        = w(w+1)/2 + u w + g(g+1)/2 + (u - g) g        n > w + g
  decode keys = min(t, w + g); cache = min(t, w + g) positions. g = 0 is the plain window.
"""

import sympy as sp

from simkit.costs import symbols as S
from simkit.costs.families.base import (MixerCosts, causal_pairs, matmul_flops_per_token,
                                        mha_projection_params)


def sparse_pairs(x: sp.Expr, w: sp.Expr, g: sp.Expr) -> sp.Expr:
    u = x - w
    return sp.Piecewise(
        (causal_pairs(x), x <= w),
        (causal_pairs(w) + u * w + causal_pairs(u), x <= w + g),
        (causal_pairs(w) + u * w + causal_pairs(g) + (u - g) * g, True))


def costs(model, layer) -> MixerCosts:
    params, values = mha_projection_params(model, layer)
    values.update({S.w: layer.window, S.g: layer.global_tokens})
    proj = matmul_flops_per_token(model, layer)
    kv_per_token = 2 * S.H_kv * S.d_h
    held = sp.Min(S.t, S.w + S.g)
    return MixerCosts(
        kind="sparse", params=params,
        proj_prefill_flops_per_token=proj, proj_decode_flops_per_token=proj,
        core_prefill_flops=2 * sparse_pairs(S.n, S.w, S.g) * 2 * S.H * S.d_h,
        core_decode_flops=4 * S.H * S.d_h * held,
        cache_tokens=held, cache_elems_per_token=kv_per_token, state_elems=0 * S.t,
        decode_read_elems=held * kv_per_token, decode_write_elems=kv_per_token,
        big_o_time="O(n*(w+g))", big_o_cache="O(w+g)", values=values)
