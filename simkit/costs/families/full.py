"""Full causal attention, MHA / GQA / MQA (Vaswani et al. 2017, arXiv:1706.03762).

Per layer, h = H query heads of d_h, H_kv key/value heads:
  prefill: QK^T and PV over the causal half, n(n+1)/2 pairs x 2 matmuls x 2 H d_h FLOPs
           -> 2 H d_h n (n+1)   (the kernel may compute the full square; we count the half)
  decode : one query against t keys -> 4 H d_h t
  cache  : K and V for every position -> t x 2 H_kv d_h elements  (grows with t)
"""

from simkit.costs import symbols as S
from simkit.costs.families.base import (MixerCosts, causal_pairs, matmul_flops_per_token,
                                        mha_projection_params)


def costs(model, layer) -> MixerCosts:
    params, values = mha_projection_params(model, layer)
    proj = matmul_flops_per_token(model, layer)
    kv_per_token = 2 * S.H_kv * S.d_h
    return MixerCosts(
        kind="full", params=params,
        proj_prefill_flops_per_token=proj, proj_decode_flops_per_token=proj,
        core_prefill_flops=2 * causal_pairs(S.n) * 2 * S.H * S.d_h,
        core_decode_flops=4 * S.H * S.d_h * S.t,
        cache_tokens=S.t, cache_elems_per_token=kv_per_token, state_elems=0 * S.t,
        decode_read_elems=S.t * kv_per_token, decode_write_elems=kv_per_token,
        big_o_time="O(n^2)", big_o_cache="O(n)", values=values)
