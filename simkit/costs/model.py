"""The model stack: per-group mixer + FFN costs summed into whole-model sympy expressions.

`model_costs(model, arch)` resolves the what-if `arch` on the model's own layers into an
ordered stack (`simkit.stack`), collapses identical layers into groups, and returns a
`ModelCosts` whose every quantity is a per-group sum: sum over groups g of L_g x (the
group's per-layer cost). Expressions are in the shape symbols of `simkit.costs.symbols`, one
count symbol per group (`L` itself when the stack is uniform), plus `n` (prefill) or `t`
(decode); `.values` substitutes the model's numbers and `.numeric(expr)` leaves only n/t.
Where two groups give a symbol different numbers (two windows, a Zamba2 block's head dim),
the later group's symbol is renamed (`w_2`), so a formula shows each group's own term.

Stack = embeddings (+ untied LM head, + learned positions) + the layers (norms + mixer + FFN
each) + final norm. Cross-layer KV sharing (CLA, arXiv:2405.12981): a group with kv_share c
stores ceil(L_g / c) caches (each layer still reads one). Shared blocks (Zamba2,
arXiv:2411.15242): a group naming a shared block stores its weights once, but every
invocation computes and keeps its own cache, and may own small weights of its own (Zamba2's
per-invocation output projection and LoRA adapters, `_invocation_params`). Cross-layer weight sharing (ALBERT,
arXiv:1909.11942, `weight_share`): stored layer weights / c_w; FLOPs unchanged. The LM head
runs for the last prompt position of a prefill and for every generated token.

Weights in memory: the layers at `beta_w` (routed experts at `beta_e`), the embedding and
LM head at `beta_v`, 16-bit when the layers are quantized below that, as engines keep them
(`ArchSpec.vocab_bytes_per_element`). Weights a step reads (`streamed_weight_bytes`): all
but the embedding table, whose tokens' rows are gathered; a tied LM head is that matrix,
read whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import lru_cache

import sympy as sp

from simkit.costs import symbols as S
from simkit.costs.arch import ArchSpec
from simkit.costs.families import MixerCosts, mixer_costs
from simkit.costs.ffn import FFNCosts, dense_ffn, moe_ffn
from simkit.stack import MIXERS, NO_MIXER, LayerSpec, groups

c_kv = sp.Symbol("c_kv", integer=True, positive=True)  # layers sharing one cache
c_w = sp.Symbol("c_w", integer=True, positive=True)  # layers sharing one set of weights

#: meanings of the symbols this module adds (for `simkit formula` and the report)
MEANING = {"c_kv": "layers per shared cache", "c_w": "layers per shared weights"}


def symbol_meaning(mc: "ModelCosts", name: str) -> str:
    """What a symbol of `mc`'s expressions means: a shape (`symbols.MEANING`), a layer
    group's count (`L_window`: layers of the window(1024) group) or a later group's own
    value of a shape symbol (`w_2`: window, layer group 2)."""
    for sym, text in S.MEANING.items():
        if str(sym) == name:
            return text
    if name in MEANING:
        return MEANING[name]
    for g in mc.groups:
        if str(g.count_symbol) == name:
            return f"layers of the {g.label} group"
    base, _, idx = name.rpartition("_")
    if idx.isdigit():
        for sym, text in S.MEANING.items():
            if str(sym) == base:
                return f"{text} (variant {idx})"
    return ""


@dataclass(frozen=True)
class GroupCosts:
    """One group of identical layers: its spec, count and per-layer costs."""

    spec: LayerSpec
    label: str  # `window(128)`, `full`, ...
    count: int
    count_symbol: sp.Symbol  # L when the stack is uniform, else L_<kind>
    mixer: MixerCosts | None
    ffn: FFNCosts | None
    stores: sp.Expr  # caches stored (count, or ceiling(count / c_kv))
    weight_layers: sp.Expr  # layers whose weights are stored (1 for a shared block)
    norms: int  # norm layers per layer
    cache_bytes: sp.Expr  # t: one sequence, the whole group (cache + state)
    cache_bytes_per_token: sp.Expr  # bytes per held position, whole group
    cache_tokens: sp.Expr  # t: positions held per layer
    state_bytes: sp.Expr  # constant per-sequence state, whole group
    #: weights each invocation of a shared block owns (0 unless `spec.shared_block`)
    invocation_params: sp.Expr = sp.Integer(0)
    #: this group's term of each whole-model quantity (`simkit.costs.analysis.QUANTITIES`
    #: names): the model's quantity is the sum of its groups' terms plus the embeddings and
    #: LM head (set by the assembly)
    terms: dict = field(default_factory=dict)

    @property
    def cache(self) -> str:
        """"grows" | "bounded" | "constant" | "none" (no mixer)."""
        return MIXERS[self.spec.kind].cache if self.spec.kind in MIXERS else "none"


@dataclass(frozen=True)
class ModelCosts:
    model: object
    arch: ArchSpec  # resolved: `arch.stack` is the layer stack
    groups: tuple[GroupCosts, ...]
    params: sp.Expr  # stored parameters (after weight sharing)
    params_per_layer_computed: sp.Expr  # what every token multiplies through (all layers)
    active_params: sp.Expr
    weight_bytes: sp.Expr  # held in memory
    streamed_weight_bytes: sp.Expr  # read by every step: all but the embedding table's rows
    expert_bytes: sp.Expr  # bytes of all routed experts (0 for dense)
    prefill_flops: sp.Expr  # n
    attn_prefill_flops: sp.Expr  # n: token-mixing part only
    decode_flops: sp.Expr  # t: one generated token
    attn_decode_flops: sp.Expr  # t
    linear_prefill_flops_per_token: sp.Expr
    linear_decode_flops_per_token: sp.Expr
    lm_head_flops: sp.Expr  # one position's logits
    cache_bytes: sp.Expr  # t: one sequence (every group's cache + state)
    state_bytes: sp.Expr  # constant per-sequence state (whole model)
    prefill_write_bytes_per_token: sp.Expr  # cache written per prompt token
    decode_cache_read_bytes: sp.Expr  # t
    decode_cache_write_bytes: sp.Expr
    decode_bytes: sp.Expr  # t: weights + cache read + cache written, one sequence
    allreduces_per_step: int  # tensor-parallel all-reduces per forward (one per sublayer)
    big_o_time: str
    big_o_cache: str
    values: dict = field(default_factory=dict)

    @property
    def mixer(self) -> MixerCosts | None:
        """The first group's mixer (the model's only one when the stack is uniform)."""
        return next((g.mixer for g in self.groups if g.mixer is not None), None)

    @property
    def cache_bytes_per_token(self) -> sp.Expr:
        """Bytes one cached position costs across every group that caches positions (the
        classic "KV per token"; a window or chunk group stops adding it past its reach)."""
        return sum((g.cache_bytes_per_token for g in self.groups), sp.Integer(0))

    @property
    def uniform(self) -> bool:
        return sum(1 for g in self.groups if g.mixer is not None) <= 1 \
            and len(self.groups) <= 2

    def numeric(self, expr: sp.Expr) -> sp.Expr:
        """`expr` with every shape symbol replaced by this model's numbers."""
        return sp.sympify(expr).subs(self.values)

    def value(self, expr: sp.Expr, **lengths: int) -> float:
        e = self.numeric(expr).subs({getattr(S, k): v for k, v in lengths.items()})
        return float(e)


def _norm_params(model) -> sp.Expr:
    return S.d * (2 if model.norm == "layer" else 1)


def _norms_per_block(model, spec: LayerSpec) -> int:
    """Norm layers of one block: the model's per-layer count when it has a mixer and an FFN,
    half of it (at least one) when it has only one of them (Nemotron-H, Mamba)."""
    parts = (spec.kind != NO_MIXER) + (spec.ffn != "none")
    if parts == 2:
        return model.norms_per_layer
    return max(1, model.norms_per_layer // 2) if parts else 0


def _renaming(values: dict, new: dict) -> dict:
    """Symbols of `new` whose number differs from the one already in `values`, renamed to
    the variant (`w_2`, `w_3`, ...) that has this number, or a fresh one."""
    out = {}
    for sym, v in new.items():
        if sym in values and values[sym] != v:
            k = 2
            while True:
                alt = sp.Symbol(f"{sym.name}_{k}", **sym.assumptions0)
                if values.get(alt, v) == v:
                    out[sym] = alt
                    break
                k += 1
    return out


def _count_symbol(spec: LayerSpec, taken: set) -> sp.Symbol:
    base = f"L_{spec.kind if spec.kind != NO_MIXER else 'ffn'}"
    name, i = base, 2
    while name in taken:
        name, i = f"{base}{i}", i + 1
    taken.add(name)
    return sp.Symbol(name, integer=True, nonnegative=True)


def _ffn_of(model, spec: LayerSpec) -> FFNCosts | None:
    if spec.ffn == "moe":
        return moe_ffn(model)
    if spec.ffn == "dense" and model.ffn_dim:
        return dense_ffn(model)
    return None


def _invocation_params(model, spec: LayerSpec) -> tuple[sp.Expr, dict]:
    """Weights one invocation of a shared block owns (stored once per invocation, not per
    block). Zamba2 (arXiv:2411.15242 Sec. 2; transformers zamba2/modeling_zamba2.py):
    `Zamba2HybridLayer.linear`, a d x d projection of the block's output; with
    `use_shared_mlp_adapter`, a rank-r_a LoRA on the MLP's gate/up input,
    d x r_a + r_a x 2F (`gate_up_proj_adapter_list`); with `use_shared_attention_adapter`,
    one on each of q, k, v, d_a x r_a + r_a x H d_h (`linear_{q,k,v}_adapter_list`)."""
    if not spec.shared_block:
        return sp.Integer(0), {}
    params = sp.Integer(0)
    values: dict = {}
    if model.block_out_proj:
        params += S.d * S.d
    r = model.block_adapter_rank
    if r and model.block_mlp_adapters and spec.ffn == "dense" and model.ffn_dim:
        params += S.r_a * (S.d + 2 * S.F)
        values.update({S.r_a: r, S.F: model.ffn_dim})
    if r and model.block_attn_adapters and spec.kind != NO_MIXER:
        d_in = S.d_a if spec.input_dim else S.d
        params += 3 * S.r_a * (d_in + S.H * S.d_h)
        values.update({S.r_a: r, S.H: model.n_heads, S.d_h: model.head_dim})
        if spec.input_dim:
            values[S.d_a] = spec.input_dim
    if params != 0:
        values[S.d] = model.d_model
    return params, values


def _ffn_renamed(f: FFNCosts, mapping: dict) -> FFNCosts:
    if not mapping:
        return f
    return FFNCosts(params=f.params.xreplace(mapping),
                    active_params=f.active_params.xreplace(mapping),
                    expert_params=f.expert_params.xreplace(mapping),
                    flops_per_token=f.flops_per_token.xreplace(mapping),
                    values={mapping.get(k, k): v for k, v in f.values.items()})


@lru_cache(maxsize=256)
def model_costs(model, arch: ArchSpec) -> ModelCosts:
    """Whole-model symbolic costs of `model` running `arch` (resolved for the model)."""
    arch = arch.resolve(model)
    gs = groups(arch.stack)
    uniform_count = len(gs) == 1
    values: dict = {S.L: model.n_layers, S.V: model.vocab_size, S.d: model.d_model,
                    S.beta_w: arch.weight_bytes_per_element,
                    S.beta_v: arch.vocab_bytes_per_element,
                    S.beta_kv: arch.kv_bytes_per_element, S.P_pos: model.learned_positions}
    taken: set = set()
    out: list[GroupCosts] = []
    for spec, count in gs:
        m = replace(model, head_dim=spec.head_dim) if spec.head_dim else model
        mixer = mixer_costs(m, spec) if spec.kind != NO_MIXER else None
        ffn = _ffn_of(model, spec)
        if mixer is not None:
            mixer = mixer.renamed(_renaming(values, mixer.values))
            values.update(mixer.values)
        if ffn is not None:
            ffn = _ffn_renamed(ffn, _renaming(values, ffn.values))
            values.update(ffn.values)
        own, own_values = _invocation_params(m, spec)
        if own != 0:
            renames = _renaming(values, own_values)
            own = own.xreplace(renames)
            values.update({renames.get(k, k): v for k, v in own_values.items()})
        Lg = S.L if uniform_count else _count_symbol(spec, taken)
        if not uniform_count:
            values[Lg] = count
        if spec.kv_share > 1:
            if values.get(c_kv, spec.kv_share) != spec.kv_share:
                raise ValueError("groups with different kv_share")  # one ArchSpec setting
            values[c_kv] = spec.kv_share
            stores = sp.ceiling(Lg / c_kv)
        else:
            stores = Lg
        if mixer is not None:
            per_tok = stores * mixer.cache_elems_per_token * S.beta_kv
            state = stores * mixer.state_elems * S.beta_kv
            cache = mixer.cache_tokens * per_tok + state
            tokens = mixer.cache_tokens
        else:
            per_tok = state = cache = tokens = sp.Integer(0)
        out.append(GroupCosts(
            spec=spec, label=spec.label() if spec.kind != NO_MIXER else "ffn-only",
            count=count, count_symbol=Lg, mixer=mixer, ffn=ffn, stores=stores,
            weight_layers=sp.Integer(1) if spec.shared_block else Lg,
            norms=_norms_per_block(model, spec), cache_bytes=cache,
            cache_bytes_per_token=per_tok, cache_tokens=tokens, state_bytes=state,
            invocation_params=own))
    return _assemble(model, arch, tuple(out), values)


def _assemble(model, arch: ArchSpec, gs: tuple[GroupCosts, ...], values: dict) -> ModelCosts:
    zero = sp.Integer(0)
    norm = _norm_params(model)
    stored = computed = active = expert_elems = active_experts = zero
    # routed experts stored in another dtype (gpt-oss: mxfp4 beside bf16): their elements
    # weigh beta_e instead of beta_w
    mixed = arch.expert_weight_bytes_per_element != arch.weight_bytes_per_element
    if mixed:
        values[S.beta_e] = arch.expert_weight_bytes_per_element
    extra = (S.beta_e - S.beta_w) if mixed else zero
    lin_pre = lin_dec = core_pre = core_dec = zero
    cache = state = read = write = prefill_write = zero
    allreduces = 0
    share = c_w if arch.weight_share > 1 else 1
    for g in gs:
        Lg, mx, ff = g.count_symbol, g.mixer, g.ffn
        per_layer = g.norms * norm
        act_layer = g.norms * norm
        g_lin_pre = g_lin_dec = g_core_pre = g_core_dec = g_read = g_write = zero
        if mx is not None:
            per_layer += mx.params
            act_layer += mx.params
            g_lin_pre += Lg * mx.proj_prefill_flops_per_token
            g_lin_dec += Lg * mx.proj_decode_flops_per_token
            g_core_pre = Lg * mx.core_prefill_flops
            g_core_dec = Lg * mx.core_decode_flops
            g_read = Lg * mx.decode_read_elems * S.beta_kv
            g_write = g.stores * mx.decode_write_elems * S.beta_kv
            prefill_write += g.stores * mx.cache_elems_per_token * S.beta_kv
            allreduces += g.count
        if ff is not None:
            per_layer += ff.params
            act_layer += ff.active_params
            g_lin_pre += Lg * ff.flops_per_token
            g_lin_dec += Lg * ff.flops_per_token
            # routed-expert elements: stored, and multiplied by a token (k of them)
            g_experts = (g.weight_layers * S.E * ff.expert_params, Lg * S.k_e * ff.expert_params)
            expert_elems += g_experts[0]
            active_experts += g_experts[1]
            allreduces += g.count
        else:
            g_experts = (zero, zero)
        if g.invocation_params != 0:  # each invocation owns these (Zamba2)
            g_lin_pre += Lg * 2 * g.invocation_params
            g_lin_dec += Lg * 2 * g.invocation_params
        lin_pre += g_lin_pre
        lin_dec += g_lin_dec
        core_pre += g_core_pre
        core_dec += g_core_dec
        read += g_read
        write += g_write
        g_stored = g.weight_layers * per_layer + Lg * g.invocation_params
        stored += g_stored
        computed += Lg * (per_layer + g.invocation_params)
        g_active = Lg * (act_layer + g.invocation_params)
        active += g_active
        cache += g.cache_bytes
        state += g.state_bytes
        g.terms.update({
            "params": g_stored / share,
            "weight_bytes": (g_stored * S.beta_w + g_experts[0] * extra) / share,
            "prefill_flops": S.n * g_lin_pre + g_core_pre,
            "attention_prefill_flops": g_core_pre,
            "decode_flops": g_lin_dec + g_core_dec,
            "attention_decode_flops": g_core_dec,
            "cache_bytes": g.cache_bytes,
            "decode_bytes": g_active * S.beta_w + g_experts[1] * extra + g_read + g_write})
    # the token embedding (+ learned positions) and the LM head -- one matrix when tied --
    # weigh beta_v: 16-bit beside layers quantized below that (`vocab_bytes_per_element`)
    embed = S.V * S.d * (1 if model.tie_embeddings else 2) + S.P_pos * S.d
    head = S.V * S.d  # read whole by every step; the input table only row by row (gathered)
    if arch.weight_share > 1:
        values[c_w] = arch.weight_share
        stored = stored / c_w
        expert_elems = expert_elems / c_w
    body = stored + norm
    params = body + embed
    active = active + embed + norm
    lm_head = 2 * S.d * S.V
    # a single sequence's decode step reads its active weights (MoE: only its k experts) and
    # the LM head, not the embedding table; shared weights are re-read by every layer that
    # uses them, so sharing saves no traffic
    decode_bytes = (active - embed) * S.beta_w + head * S.beta_v + active_experts * extra \
        + read + write
    big_time, big_cache = _big_o(gs)
    return ModelCosts(
        model=model, arch=arch, groups=gs, params=params, params_per_layer_computed=computed,
        active_params=active,
        weight_bytes=body * S.beta_w + embed * S.beta_v + expert_elems * extra,
        streamed_weight_bytes=body * S.beta_w + head * S.beta_v + expert_elems * extra,
        expert_bytes=expert_elems * (S.beta_e if mixed else S.beta_w),
        prefill_flops=S.n * lin_pre + core_pre + lm_head, attn_prefill_flops=core_pre,
        decode_flops=lin_dec + core_dec + lm_head, attn_decode_flops=core_dec,
        linear_prefill_flops_per_token=lin_pre, linear_decode_flops_per_token=lin_dec,
        lm_head_flops=lm_head, cache_bytes=cache, state_bytes=state,
        prefill_write_bytes_per_token=prefill_write, decode_cache_read_bytes=read,
        decode_cache_write_bytes=write, decode_bytes=decode_bytes,
        allreduces_per_step=allreduces, big_o_time=big_time, big_o_cache=big_cache,
        values=values)


def _big_o(gs) -> tuple[str, str]:
    """Big-O of prefill time and cache in n: the group that grows fastest decides."""
    mixers = [g.mixer for g in gs if g.mixer is not None]
    if not mixers:
        return "O(n)", "O(1)"
    if len({(m.big_o_time, m.big_o_cache) for m in mixers}) == 1:
        return mixers[0].big_o_time, mixers[0].big_o_cache
    caches = {g.cache for g in gs if g.mixer is not None}
    if "grows" in caches:
        return "O(n^2)", "O(n)"
    bounded = [m for g, m in zip([g for g in gs if g.mixer is not None], mixers)
               if g.cache == "bounded"]
    if bounded and len({m.big_o_time for m in bounded}) == 1:
        return bounded[0].big_o_time, bounded[0].big_o_cache
    return "O(n)", "O(1)"


def total_params(model) -> int:
    """Stored parameters of the model with its own architecture."""
    mc = model_costs(model, ArchSpec.for_model(model))
    return int(mc.numeric(mc.params))


def dt_rank(model) -> int:
    return model.dt_rank or math.ceil(model.d_model / 16)
