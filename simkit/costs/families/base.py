"""`MixerCosts`: the symbolic costs of one token-mixer layer (attention, SSM, ...).

All FLOP expressions count a multiply-add as 2 FLOPs and only matmul-like work (softmax,
exp and normalisation are not counted). Element counts are multiplied by bytes/element
(`beta_w`, `beta_kv`) in the model stack, so quantisation changes bytes, never FLOPs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sympy as sp

from simkit.costs import symbols as S


@dataclass(frozen=True)
class MixerCosts:
    kind: str
    params: sp.Expr  # weight elements of the mixer, one layer
    proj_prefill_flops_per_token: sp.Expr  # projections (weight matmuls) per prompt token
    proj_decode_flops_per_token: sp.Expr  # per generated token (MLA absorbs weights here)
    core_prefill_flops: sp.Expr  # in n: token-mixing FLOPs of a prefill of n tokens
    core_decode_flops: sp.Expr  # in t: token-mixing FLOPs of one token at context t
    cache_tokens: sp.Expr  # in t: token positions whose cache entries are held
    cache_elems_per_token: sp.Expr  # elements per held position (K and V together)
    state_elems: sp.Expr  # constant per-sequence state elements (0 for plain attention)
    decode_read_elems: sp.Expr  # in t: cache/state elements read per decode token
    decode_write_elems: sp.Expr  # cache/state elements written per decode token
    big_o_time: str  # prefill time in n
    big_o_cache: str  # cache in n
    prefill_note: str = ""
    values: dict = field(default_factory=dict)  # symbol -> number for this model/arch

    @property
    def cache_elems(self) -> sp.Expr:
        """Cache + state elements held by one sequence at context t, one layer."""
        return self.cache_tokens * self.cache_elems_per_token + self.state_elems


def mha_projection_params(model) -> tuple[sp.Expr, dict]:
    """q, k, v, o projections of (grouped-query) attention, biases when the model has them.

    q: d x H d_h, k and v: d x H_kv d_h each, o: H d_h x d (Vaswani et al. 2017; GQA:
    Ainslie et al. 2023, arXiv:2305.13245; MQA: H_kv = 1, Shazeer 2019, arXiv:1911.02150).
    """
    params = S.d * S.H * S.d_h + 2 * S.d * S.H_kv * S.d_h + S.H * S.d_h * S.d
    if model.attn_bias:
        params += S.H * S.d_h + 2 * S.H_kv * S.d_h + S.d
    values = {S.d: model.d_model, S.H: model.n_heads, S.H_kv: model.n_kv_heads,
              S.d_h: model.head_dim}
    return params, values


def matmul_flops_per_token(model) -> sp.Expr:
    """2 FLOPs per weight element (biases add, not multiply-add: not counted)."""
    return 2 * (S.d * S.H * S.d_h + 2 * S.d * S.H_kv * S.d_h + S.H * S.d_h * S.d)


def causal_pairs(x: sp.Expr) -> sp.Expr:
    """(query, key) pairs of full causal attention over x tokens: query i sees i keys."""
    return x * (x + 1) / 2
