"""Selective state-space mixer, Mamba-1 (Gu & Dao 2023, arXiv:2312.00752, Sec. 3 and
mamba_ssm/modules/mamba_simple.py).

Weights: in_proj d x 2 d_in, conv d_in x K (+bias), x_proj d_in x (R + 2N), dt_proj R x d_in
(+bias), A d_in x N, D d_in, out_proj d_in x d.
Per token: projections 2 (2 d d_in + d_in (R + 2N) + R d_in + d_in d); causal conv 2 K d_in;
selective scan 6 d_in N (update h = exp(dt A) h + dt B x: 2 multiply-adds per state element;
readout y = C h: 1). State: d_in N (SSM) + d_in (K - 1) (conv window), constant in t.
Prefill uses a work-efficient parallel scan: same FLOPs as the sequential recurrence
(O(n) work, O(log n) depth); decode is one recurrent step.
"""

import math

from simkit.costs import symbols as S
from simkit.costs.families.base import MixerCosts


def costs(model, arch) -> MixerCosts:
    weights = (S.d * 2 * S.d_in + S.d_in * (S.R_dt + 2 * S.N_st) + S.R_dt * S.d_in
               + S.d_in * S.d)
    params = weights + S.d_in * S.K_cv + S.d_in + S.d_in + S.d_in * S.N_st + S.d_in
    per_token_core = 2 * S.K_cv * S.d_in + 6 * S.d_in * S.N_st
    state = S.d_in * S.N_st + S.d_in * (S.K_cv - 1)
    values = {S.d: model.d_model, S.d_in: model.ssm_expand * model.d_model,
              S.N_st: model.d_state, S.K_cv: model.d_conv,
              S.R_dt: model.dt_rank or math.ceil(model.d_model / 16)}
    return MixerCosts(
        kind="ssm", params=params,
        proj_prefill_flops_per_token=2 * weights, proj_decode_flops_per_token=2 * weights,
        core_prefill_flops=S.n * per_token_core, core_decode_flops=per_token_core + 0 * S.t,
        cache_tokens=0 * S.t, cache_elems_per_token=0 * S.t, state_elems=state,
        decode_read_elems=state + 0 * S.t, decode_write_elems=state,
        big_o_time="O(n)", big_o_cache="O(1)",
        prefill_note="parallel scan: O(n) work, O(log n) depth", values=values)
