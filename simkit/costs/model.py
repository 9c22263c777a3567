"""The model stack: per-layer mixer + FFN costs summed into whole-model sympy expressions.

`model_costs(model, arch)` returns a `ModelCosts` whose expressions are in the shape symbols
of `simkit.costs.symbols` plus `n` (prefill) or `t` (decode); `.values` substitutes the
model's numbers, and `.numeric(expr)` leaves only `n`/`t`.

Stack = embeddings (+ untied LM head, + learned positions) + L x (norms + mixer + FFN) + final
norm. Hybrids (Jamba-style, arXiv:2403.19887): one layer in `attention_every` runs the
attention kind, the rest a Mamba mixer. Cross-layer KV sharing (CLA, arXiv:2405.12981) stores
one cache per `kv_share` layers (each layer still reads it). Cross-layer weight sharing
(ALBERT, arXiv:1909.11942) stores one layer's weights per `weight_share` layers: weight bytes
shrink, FLOPs do not. The LM head runs for the last prompt position in a prefill and for
every generated token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import sympy as sp

from simkit.costs import symbols as S
from simkit.costs.arch import ArchSpec
from simkit.costs.families import MixerCosts, mixer_costs
from simkit.costs.ffn import FFNCosts, dense_ffn, moe_ffn
from simkit.errors import SimkitError

L_a = sp.Symbol("L_a", integer=True, nonnegative=True)  # layers running the attention kind
L_s = sp.Symbol("L_s", integer=True, nonnegative=True)  # SSM layers of a hybrid
L_d = sp.Symbol("L_d", integer=True, nonnegative=True)  # layers with a dense FFN (MoE models)
c_kv = sp.Symbol("c_kv", integer=True, positive=True)  # layers sharing one cache
c_w = sp.Symbol("c_w", integer=True, positive=True)  # layers sharing one set of weights


@dataclass(frozen=True)
class ModelCosts:
    model: object
    arch: ArchSpec
    mixer: MixerCosts
    ssm: MixerCosts | None
    ffn: FFNCosts | None
    ffn_dense: FFNCosts | None  # leading dense layers of an MoE model
    layers_attn: int
    layers_ssm: int
    params: sp.Expr  # stored parameters (after weight sharing)
    params_per_layer_computed: sp.Expr  # what every token multiplies through (all layers)
    active_params: sp.Expr
    weight_bytes: sp.Expr
    expert_bytes: sp.Expr  # bytes of all routed experts (0 for dense)
    prefill_flops: sp.Expr  # n
    attn_prefill_flops: sp.Expr  # n: token-mixing part only
    decode_flops: sp.Expr  # t: one generated token
    attn_decode_flops: sp.Expr  # t
    linear_prefill_flops_per_token: sp.Expr
    linear_decode_flops_per_token: sp.Expr
    lm_head_flops: sp.Expr  # one position's logits
    cache_bytes: sp.Expr  # t: one sequence
    cache_bytes_per_token: sp.Expr  # bytes per held position (whole model)
    state_bytes: sp.Expr  # constant per-sequence state (whole model)
    cache_tokens: sp.Expr  # t: positions held
    decode_cache_read_bytes: sp.Expr  # t
    decode_cache_write_bytes: sp.Expr
    decode_bytes: sp.Expr  # t: weights + cache read + cache written, one sequence
    big_o_time: str
    big_o_cache: str
    values: dict = field(default_factory=dict)

    def numeric(self, expr: sp.Expr) -> sp.Expr:
        """`expr` with every shape symbol replaced by this model's numbers."""
        return sp.sympify(expr).subs(self.values)

    def value(self, expr: sp.Expr, **lengths: int) -> float:
        e = self.numeric(expr).subs({getattr(S, k): v for k, v in lengths.items()})
        return float(e)


def _norm_params(model) -> sp.Expr:
    return S.d * (2 if model.norm == "layer" else 1)


@lru_cache(maxsize=256)
def model_costs(model, arch: ArchSpec) -> ModelCosts:
    """Whole-model symbolic costs of `model` running `arch` (resolved for the model)."""
    arch = arch.resolve(model)
    kind = arch.attention
    if kind == "mla" and not model.kv_lora_rank:
        raise SimkitError(f"attention: mla needs an MLA model (kv_lora_rank); {model.name} "
                          "has none")
    L = model.n_layers
    if kind == "ssm":
        n_attn, n_ssm = L, 0
    else:
        n_attn = L // arch.attention_every if arch.attention_every > 1 else L
        n_attn = max(n_attn, 1)
        n_ssm = L - n_attn
    mixer = mixer_costs(model, arch)
    ssm = mixer_costs(model, arch, "ssm") if n_ssm else None
    values: dict = {S.L: L, S.V: model.vocab_size, S.d: model.d_model,
                    S.beta_w: arch.weight_bytes_per_element,
                    S.beta_kv: arch.kv_bytes_per_element}
    values.update(mixer.values)
    if ssm:
        values.update(ssm.values)

    # layer counts: show L itself unless the stack is a hybrid
    hybrid = n_ssm > 0
    La = L_a if hybrid else S.L
    if hybrid:
        values.update({L_a: n_attn, L_s: n_ssm})
    Ls = L_s if hybrid else 0

    # FFN
    ffn = ffn_dense = None
    n_dense = 0
    if model.is_moe:
        ffn = moe_ffn(model)
        values.update(ffn.values)
        if model.first_dense_layers:
            ffn_dense = dense_ffn(model)
            values.update(ffn_dense.values)
            n_dense = model.first_dense_layers
            values[L_d] = n_dense
    elif model.ffn_dim:
        ffn = dense_ffn(model)
        values.update(ffn.values)
    Ld = L_d if n_dense else 0
    ffn_params = ffn_active = ffn_flops = sp.Integer(0)
    if ffn:
        ffn_params = (S.L - Ld) * ffn.params
        ffn_active = (S.L - Ld) * ffn.active_params
        ffn_flops = (S.L - Ld) * ffn.flops_per_token
    if ffn_dense:
        ffn_params += Ld * ffn_dense.params
        ffn_active += Ld * ffn_dense.active_params
        ffn_flops += Ld * ffn_dense.flops_per_token

    norms = S.L * model.norms_per_layer * _norm_params(model) + _norm_params(model)
    embed = S.V * S.d * (1 if model.tie_embeddings else 2) + S.P_pos * S.d
    values[S.P_pos] = model.learned_positions
    mixer_params = La * mixer.params + (Ls * ssm.params if ssm else 0)
    layer_params = mixer_params + ffn_params + S.L * model.norms_per_layer * _norm_params(model)
    share = arch.weight_share
    if share > 1:
        values[c_w] = share
        stored_layers = layer_params / c_w  # unique layer weights
    else:
        stored_layers = layer_params
    params = stored_layers + embed + _norm_params(model)
    active = mixer_params + ffn_active + norms + embed
    expert_elems = ((S.L - Ld) * S.E * ffn.expert_params) if model.is_moe else sp.Integer(0)
    if share > 1:
        expert_elems = expert_elems / c_w

    # FLOPs
    lm_head = 2 * S.d * S.V
    lin_pre = La * mixer.proj_prefill_flops_per_token + ffn_flops
    lin_dec = La * mixer.proj_decode_flops_per_token + ffn_flops
    core_pre = La * mixer.core_prefill_flops
    core_dec = La * mixer.core_decode_flops
    if ssm:
        lin_pre += Ls * ssm.proj_prefill_flops_per_token
        lin_dec += Ls * ssm.proj_decode_flops_per_token
        core_pre += Ls * ssm.core_prefill_flops
        core_dec += Ls * ssm.core_decode_flops
    prefill = S.n * lin_pre + core_pre + lm_head
    decode = lin_dec + core_dec + lm_head

    # cache: attention layers store one cache per c_kv layers
    share_kv = arch.kv_share
    stores = La / c_kv if share_kv > 1 else La
    if share_kv > 1:
        values[c_kv] = share_kv
    per_token_bytes = stores * mixer.cache_elems_per_token * S.beta_kv
    state_bytes = (stores * mixer.state_elems + (Ls * ssm.state_elems if ssm else 0)) * S.beta_kv
    cache = mixer.cache_tokens * per_token_bytes + state_bytes
    read = (La * mixer.decode_read_elems + (Ls * ssm.decode_read_elems if ssm else 0)) * S.beta_kv
    write = (stores * mixer.decode_write_elems
             + (Ls * ssm.decode_write_elems if ssm else 0)) * S.beta_kv
    weight_bytes = params * S.beta_w
    # a single sequence's decode step reads its active weights (MoE: only its k experts);
    # shared weights are re-read by every layer that uses them, so sharing saves no traffic
    decode_bytes = active * S.beta_w + read + write

    big_time = mixer.big_o_time
    big_cache = mixer.big_o_cache
    if ssm and mixer.big_o_cache == "O(1)":
        big_cache = "O(1)"
    return ModelCosts(
        model=model, arch=arch, mixer=mixer, ssm=ssm, ffn=ffn, ffn_dense=ffn_dense,
        layers_attn=n_attn, layers_ssm=n_ssm, params=params,
        params_per_layer_computed=layer_params, active_params=active,
        weight_bytes=weight_bytes, expert_bytes=expert_elems * S.beta_w,
        prefill_flops=prefill, attn_prefill_flops=core_pre, decode_flops=decode,
        attn_decode_flops=core_dec, linear_prefill_flops_per_token=lin_pre,
        linear_decode_flops_per_token=lin_dec, lm_head_flops=lm_head,
        cache_bytes=cache, cache_bytes_per_token=per_token_bytes, state_bytes=state_bytes,
        cache_tokens=mixer.cache_tokens, decode_cache_read_bytes=read,
        decode_cache_write_bytes=write, decode_bytes=decode_bytes,
        big_o_time=big_time, big_o_cache=big_cache, values=values)


def total_params(model) -> int:
    """Stored parameters of the model with its own architecture."""
    mc = model_costs(model, ArchSpec.for_model(model))
    return int(mc.numeric(mc.params))


def dt_rank(model) -> int:
    return model.dt_rank or math.ceil(model.d_model / 16)
