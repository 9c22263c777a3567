"""Selective state-space mixers, chosen by the layer's `variant`.

``mamba1``: Mamba (Gu & Dao 2023, arXiv:2312.00752, Sec. 3; mamba_ssm/modules/
mamba_simple.py). Weights: in_proj d x 2 d_in, conv d_in x K (+bias), x_proj
d_in x (R + 2N), dt_proj R x d_in (+bias), A d_in x N, D d_in, out_proj d_in x d.
Per token: projections 2 (2 d d_in + d_in (R + 2N) + R d_in + d_in d); causal conv 2 K d_in;
selective scan 6 d_in N (update h = exp(dt A) h + dt B x: 2 multiply-adds per state element;
readout y = C h: 1). State: d_in N (SSM) + d_in (K - 1) (conv window), constant in t.

``mamba2``: Mamba-2 (Dao & Gu 2024, "Transformers are SSMs", arXiv:2405.21060, Sec. 7;
mamba_ssm/modules/mamba2.py). H_s heads of P = d_in / H_s channels share a scalar decay; B
and C come in G_s groups of N. Weights: in_proj d x (2 d_in + 2 G_s N + H_s) (z, x, B, C,
dt), conv (d_in + 2 G_s N) x K (+bias), dt_bias, A_log and D (H_s each), a gated RMSNorm
(d_in), out_proj d_in x d. Per token: conv 2 K (d_in + 2 G_s N); scan 6 d_in N as above.
State: d_in N + (d_in + 2 G_s N)(K - 1).

Prefill uses a work-efficient parallel scan (Mamba-1) or the chunked SSD form (Mamba-2): we
count the recurrence's FLOPs (O(n) work); decode is one recurrent step.
"""

import math

from simkit.costs import symbols as S
from simkit.costs.families.base import MixerCosts, recurrent_costs


def _result(params, weights, per_token_core, state, values, note) -> MixerCosts:
    return recurrent_costs("ssm", params, 2 * weights, per_token_core, state, values, note)


def _mamba1(model, layer) -> MixerCosts:
    weights = (S.d * 2 * S.d_in + S.d_in * (S.R_dt + 2 * S.N_st) + S.R_dt * S.d_in
               + S.d_in * S.d)
    params = weights + S.d_in * S.K_cv + S.d_in + S.d_in + S.d_in * S.N_st + S.d_in
    per_token_core = 2 * S.K_cv * S.d_in + 6 * S.d_in * S.N_st
    state = S.d_in * S.N_st + S.d_in * (S.K_cv - 1)
    values = {S.d: model.d_model, S.d_in: model.ssm_expand * model.d_model,
              S.N_st: model.d_state, S.K_cv: model.d_conv,
              S.R_dt: model.dt_rank or math.ceil(model.d_model / 16)}
    return _result(params, weights, per_token_core, state, values,
                   "parallel scan: O(n) work, O(log n) depth")


def _mamba2(model, layer) -> MixerCosts:
    d_in = model.ssm_expand * model.d_model
    head = model.ssm_head_dim or 64
    conv_ch = S.d_in + 2 * S.G_s * S.N_st
    weights = S.d * (2 * S.d_in + 2 * S.G_s * S.N_st + S.H_s) + S.d_in * S.d
    params = weights + conv_ch * S.K_cv + conv_ch + 3 * S.H_s + S.d_in
    per_token_core = 2 * S.K_cv * conv_ch + 6 * S.d_in * S.N_st
    state = S.d_in * S.N_st + conv_ch * (S.K_cv - 1)
    values = {S.d: model.d_model, S.d_in: d_in, S.N_st: model.d_state, S.K_cv: model.d_conv,
              S.H_s: d_in // head, S.G_s: model.ssm_groups or 1}
    return _result(params, weights, per_token_core, state, values,
                   "chunked SSD: O(n) work")


_VARIANTS = {"mamba1": _mamba1, "mamba2": _mamba2}


def costs(model, layer) -> MixerCosts:
    return _VARIANTS[layer.variant or "mamba1"](model, layer)
