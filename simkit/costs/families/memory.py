"""Fixed-size memory: m memory slots + the current segment of s tokens (segment-level
recurrence with a compressed memory, as in Compressive Transformer arXiv:1911.05507,
Recurrent Memory Transformer arXiv:2207.06881 and Infini-attention arXiv:2404.07143).

Each token attends to the m slots and causally within its segment; after each full segment
the m slots attend to that segment's s tokens to update the memory. With q = floor(n/s)
full segments and r = n mod s:
  prefill pairs = n m + q s(s+1)/2 + r(r+1)/2 + q m s
  decode keys  = m + ((t-1) mod s) + 1, plus the update amortised: m per token
  state = (m + s) x 2 H_kv d_h elements, constant in t.
"""

import sympy as sp

from simkit.costs import symbols as S
from simkit.costs.families.base import (MixerCosts, causal_pairs, matmul_flops_per_token,
                                        mha_projection_params)


def memory_pairs(x: sp.Expr, m: sp.Expr, s: sp.Expr) -> sp.Expr:
    r = sp.Mod(x, s)
    q = (x - r) / s
    return x * m + q * causal_pairs(s) + causal_pairs(r) + q * m * s


def costs(model, layer) -> MixerCosts:
    params, values = mha_projection_params(model, layer)
    values.update({S.m: layer.memory_slots, S.s: layer.segment_tokens})
    proj = matmul_flops_per_token(model, layer)
    kv_per_token = 2 * S.H_kv * S.d_h
    in_segment = sp.Mod(S.t - 1, S.s) + 1
    keys = S.m + in_segment
    return MixerCosts(
        kind="memory", params=params,
        proj_prefill_flops_per_token=proj, proj_decode_flops_per_token=proj,
        core_prefill_flops=2 * memory_pairs(S.n, S.m, S.s) * 2 * S.H * S.d_h,
        core_decode_flops=4 * S.H * S.d_h * (keys + S.m),
        cache_tokens=0 * S.t, cache_elems_per_token=0 * S.t,
        state_elems=(S.m + S.s) * kv_per_token,
        decode_read_elems=keys * kv_per_token,
        decode_write_elems=kv_per_token * (1 + S.m / S.s),
        big_o_time="O(n*(m+s))", big_o_cache="O(1)", values=values)
