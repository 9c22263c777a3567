"""Multi-head latent attention, DeepSeek-V2 (arXiv:2405.04434, Sec. 2.1).

Queries: h = W_UQ (W_DQ x) through a rank-r_q latent; keys/values: a rank-r_kv latent
c = W_DKV x (cached) plus a decoupled RoPE key of d_r (cached, shared by all heads), up-
projected per head by W_UK (r_kv -> H d_h) and W_UV (r_kv -> H d_v).
  cache: (r_kv + d_r) elements per token and layer (vs 2 H d_h for MHA)
  prefill (naive, up-projected): pairs x 2 H ((d_h + d_r) + d_v) FLOPs
  decode (weights absorbed, as DeepSeek serves it): scores over the latent,
         2 H (r_kv + d_r) t + 2 H r_kv t; q absorbs W_UK (2 H d_h r_kv per token) and the
         output is up-projected by W_UV (2 H r_kv d_v) instead of re-expanding the cache.
"""

from simkit.costs import symbols as S
from simkit.costs.families.base import MixerCosts, causal_pairs


def costs(model, layer) -> MixerCosts:
    if model.q_lora_rank:
        q_params = S.d * S.r_q + S.r_q + S.r_q * S.H * (S.d_h + S.d_r)  # + q_a_layernorm
        q_flops = 2 * (S.d * S.r_q + S.r_q * S.H * (S.d_h + S.d_r))
    else:
        q_params = S.d * S.H * (S.d_h + S.d_r)
        q_flops = 2 * q_params
    kv_down = S.d * (S.r_kv + S.d_r)
    kv_up = S.r_kv * S.H * (S.d_h + S.d_v)
    out = S.H * S.d_v * S.d
    params = q_params + kv_down + S.r_kv + kv_up + out  # + kv_a_layernorm
    values = {S.d: model.d_model, S.H: model.n_heads, S.d_h: model.head_dim,
              S.r_kv: model.kv_lora_rank, S.d_r: model.qk_rope_head_dim,
              S.d_v: model.v_head_dim or model.head_dim}
    if model.q_lora_rank:
        values[S.r_q] = model.q_lora_rank
    prefill_proj = q_flops + 2 * kv_down + 2 * kv_up + 2 * out
    decode_proj = (q_flops + 2 * kv_down + 2 * S.H * S.d_h * S.r_kv
                   + 2 * S.H * S.r_kv * S.d_v + 2 * out)
    per_token = S.r_kv + S.d_r
    return MixerCosts(
        kind="mla", params=params,
        proj_prefill_flops_per_token=prefill_proj, proj_decode_flops_per_token=decode_proj,
        core_prefill_flops=2 * causal_pairs(S.n) * S.H * ((S.d_h + S.d_r) + S.d_v),
        core_decode_flops=2 * S.H * (S.r_kv + S.d_r) * S.t + 2 * S.H * S.r_kv * S.t,
        cache_tokens=S.t, cache_elems_per_token=per_token, state_elems=0 * S.t,
        decode_read_elems=S.t * per_token, decode_write_elems=per_token,
        big_o_time="O(n^2)", big_o_cache="O(n)", values=values)
