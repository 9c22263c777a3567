"""`MixerCosts`: the symbolic costs of one token-mixer layer (attention, SSM, ...).

All FLOP expressions count a multiply-add as 2 FLOPs and only matmul-like work (softmax,
exp and normalisation are not counted). Element counts are multiplied by bytes/element
(`beta_w`, `beta_kv`) in the model stack, so quantisation changes bytes, never FLOPs.

A family module exposes `costs(model, layer) -> MixerCosts`, where `layer` is a resolved
`simkit.stack.LayerSpec` (its window, chunk, variant, ... and shape overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

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
    values: dict = field(default_factory=dict)  # symbol -> number for this model/layer

    @property
    def cache_elems(self) -> sp.Expr:
        """Cache + state elements held by one sequence at context t, one layer."""
        return self.cache_tokens * self.cache_elems_per_token + self.state_elems

    def renamed(self, mapping: dict) -> "MixerCosts":
        """The same costs with symbols renamed (`mapping`: old symbol -> new symbol)."""
        if not mapping:
            return self
        kw = {f.name: sp.sympify(getattr(self, f.name)).xreplace(mapping)
              for f in fields(self) if isinstance(getattr(self, f.name), sp.Basic)}
        kw["values"] = {mapping.get(k, k): v for k, v in self.values.items()}
        return replace(self, **kw)


def recurrent_costs(kind: str, params, proj_flops_per_token, core_flops_per_token, state,
                    values: dict, note: str) -> MixerCosts:
    """A mixer whose memory is a fixed-size state (linear attention, SSMs): prefill costs
    n times a token's FLOPs (O(n)), a decode step reads and writes the state once, and no
    cache grows with the context t (the `0 * S.t` keep the expressions' variables)."""
    return MixerCosts(
        kind=kind, params=params,
        proj_prefill_flops_per_token=proj_flops_per_token,
        proj_decode_flops_per_token=proj_flops_per_token,
        core_prefill_flops=S.n * core_flops_per_token,
        core_decode_flops=core_flops_per_token + 0 * S.t,
        cache_tokens=0 * S.t, cache_elems_per_token=0 * S.t, state_elems=state,
        decode_read_elems=state + 0 * S.t, decode_write_elems=state,
        big_o_time="O(n)", big_o_cache="O(1)", prefill_note=note, values=values)


def attention_input_dim(model, layer) -> int:
    """Width of the attention's input: the hidden size unless the layer overrides it."""
    return getattr(layer, "input_dim", None) or model.d_model


def mha_projection_params(model, layer=None) -> tuple[sp.Expr, dict]:
    """q, k, v, o projections of (grouped-query) attention, biases when the model has them.

    q: d x H d_h, k and v: d x H_kv d_h each, o: H d_h x d (Vaswani et al. 2017; GQA:
    Ainslie et al. 2023, arXiv:2305.13245; MQA: H_kv = 1, Shazeer 2019, arXiv:1911.02150).
    Extras where the model has them: an output gate doubles the q projection (Qwen3-Next's
    gated attention), per-head q/k RMSNorm weights (Qwen3, Gemma-3: 2 d_h), one learned sink
    logit per head (gpt-oss). A layer with an `input_dim` override (Zamba2's shared block on
    the concatenated 2d input) reads that width; its output still has width d.
    """
    d_in = S.d_a if layer is not None and getattr(layer, "input_dim", None) else S.d
    q = (2 if model.attn_output_gate else 1) * d_in * S.H * S.d_h
    params = q + 2 * d_in * S.H_kv * S.d_h + S.H * S.d_h * S.d
    if model.attn_bias:
        params += S.H * S.d_h + 2 * S.H_kv * S.d_h + S.d
    if model.qk_norm:
        params += 2 * S.d_h
    if model.attn_sinks:
        params += S.H
    values = {S.d: model.d_model, S.H: model.n_heads, S.H_kv: model.n_kv_heads,
              S.d_h: model.head_dim}
    if d_in is S.d_a:
        values[S.d_a] = layer.input_dim
    return params, values


def matmul_flops_per_token(model, layer=None) -> sp.Expr:
    """2 FLOPs per weight element of q, k, v, o (biases add, not multiply-add)."""
    d_in = S.d_a if layer is not None and getattr(layer, "input_dim", None) else S.d
    q = (2 if model.attn_output_gate else 1) * d_in * S.H * S.d_h
    return 2 * (q + 2 * d_in * S.H_kv * S.d_h + S.H * S.d_h * S.d)


def causal_pairs(x: sp.Expr) -> sp.Expr:
    """(query, key) pairs of full causal attention over x tokens: query i sees i keys."""
    return x * (x + 1) / 2
