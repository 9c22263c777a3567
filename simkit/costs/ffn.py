"""Feed-forward blocks: dense (gated SwiGLU or plain MLP) and mixture-of-experts.

Dense gated (Llama, Shazeer 2020 arXiv:2002.05202): gate, up d x F and down F x d -> 3 d F.
Plain MLP (OPT, GPT-3, Falcon): d x F and F x d -> 2 d F (+ biases F + d).
MoE (Mixtral arXiv:2401.04088; DeepSeekMoE arXiv:2401.06066): E routed experts of width F_e,
top-k per token, n_s always-on shared experts, a d x E router. Total parameters count every
expert; a token runs k + n_s experts (its *active* parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from simkit.costs import symbols as S


@dataclass(frozen=True)
class FFNCosts:
    params: sp.Expr  # one layer, all experts
    active_params: sp.Expr  # weights one token multiplies with
    expert_params: sp.Expr  # one routed expert (0 for dense)
    flops_per_token: sp.Expr
    values: dict


def dense_ffn(model) -> FFNCosts:
    mats = 3 if model.ffn_gated else 2
    weights = mats * S.d * S.F
    params = weights + ((S.F + S.d) if model.ffn_bias else 0)
    return FFNCosts(params=params, active_params=params, expert_params=sp.Integer(0),
                    flops_per_token=2 * weights, values={S.d: model.d_model, S.F: model.ffn_dim})


def moe_ffn(model) -> FFNCosts:
    """Routed experts of width F_e; shared experts either n_s more of width F_e
    (DeepSeekMoE) or one of width F_s (`shared_expert_ffn_dim`: Qwen2-MoE, Qwen3-Next)."""
    mats = 3 if model.ffn_gated else 2
    one = mats * S.d * S.F_e
    bias = ((mats - 1) * S.F_e + S.d) if model.ffn_bias else 0  # gpt-oss experts have biases
    router = S.d * S.E
    values = {S.d: model.d_model, S.E: model.n_experts, S.k_e: model.experts_per_token,
              S.F_e: model.moe_ffn_dim or model.ffn_dim}
    if model.shared_expert_ffn_dim:
        shared = mats * S.d * S.F_s
        values[S.F_s] = model.shared_expert_ffn_dim
    else:
        shared = model.n_shared_experts * one
    params = S.E * (one + bias) + shared + router
    active = S.k_e * (one + bias) + shared + router
    flops = 2 * (S.k_e * one + shared + router)
    return FFNCosts(params=params, active_params=active, expert_params=one + bias,
                    flops_per_token=flops, values=values)
