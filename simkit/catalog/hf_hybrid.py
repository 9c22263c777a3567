"""Hugging Face readers of the hybrid and attention-free families: jamba, zamba2, minimax,
nemotron_h (attention or linear attention mixed with Mamba / lightning layers) and mamba,
falcon_mamba, mamba2 and mamba_ssm's own checkpoint format. Each takes the validated keys of
`simkit.catalog.hf.Keys` and returns the `ModelConfig` fields, `layers` built layer by layer
(rules and defaults from the transformers classes named beside each, as in
`simkit.catalog.hf_attention`).
"""

from __future__ import annotations

from simkit.catalog.hf import (FULL, Keys, basics, ceil_div, dt_rank, heads_and_dims,
                               mixers_from_layer_types, stack_of, with_defaults)
from simkit.stack import LayerSpec

#: an SSM has no trained position limit; the catalog's convention for "unbounded"
SSM_CONTEXT = 1_000_000


# --------------------------------------------------------------------------- hybrids

def jamba(c: Keys, mt: str) -> dict:
    """jamba: layer i is attention iff i % `attn_layer_period` == `attn_layer_offset`, else
    Mamba-1; its FFN is MoE iff i % `expert_layer_period` == `expert_layer_offset`, else
    dense (configuration_jamba.py:105-124). JambaConfig defaults: periods 8 / 2, offsets
    4 / 1, 16 experts top-2, d_state 16, d_conv 4, expand 2, dt rank ceil(d / 16). Not
    counted: the dt/B/C RMSNorm weights (R + 2N per Mamba layer) and Mamba projection biases
    (`mamba_proj_bias`, off in published Jamba)."""
    c.check_per_layer_keys(mt, {"attn_layer_period", "attn_layer_offset",
                                "expert_layer_period", "expert_layer_offset"})
    kw = basics(c)
    L, d = kw["n_layers"], kw["d_model"]

    def period(p_key, o_key, p_default, o_default):
        p = c.int(p_key, default=p_default)
        o = c.int(o_key, default=o_default, minimum=0)
        if o >= p:
            raise c.error(o_key, f"{o} must be below {p_key} {p}")
        return p, o

    ap, ao = period("attn_layer_period", "attn_layer_offset", 8, 4)
    ep, eo = period("expert_layer_period", "expert_layer_offset", 2, 1)
    E = c.int("num_experts", default=16)
    F = c.int("intermediate_size")
    kw.update(ffn_dim=F, d_state=c.int("mamba_d_state", default=16),
              d_conv=c.int("mamba_d_conv", default=4),
              ssm_expand=c.int("mamba_expand", default=2),
              dt_rank=dt_rank(c, "mamba_dt_rank", d), default_ssm_variant="mamba1")
    if E > 1:
        kw.update(n_experts=E, experts_per_token=c.int("num_experts_per_tok", default=2),
                  moe_ffn_dim=F, _experts_key=("num_experts", "num_experts_per_tok"))
    mixers = [FULL if i % ap == ao else LayerSpec(kind="ssm", variant="mamba1")
              for i in range(L)]
    ffns = ["moe" if E > 1 and i % ep == eo else "dense" for i in range(L)]
    return with_defaults(kw, stack_of(mixers, ffns))


def zamba2(c: Keys, mt: str) -> dict:
    """zamba2 (arXiv:2411.15242; configuration_zamba2.py, modeling_zamba2.py).

    Every one of the L layers runs a Mamba-2 mixer; a "hybrid" layer (`layers_block_type`,
    or `hybrid_layer_ids`) first runs one of `num_mem_blocks` shared transformer blocks,
    round-robin (block = hybrid count % num_mem_blocks, modeling :1255). The shared block is
    its own LayerSpec: full attention over the concatenated [hidden, embedding] input
    (`attention_hidden_size` = 2d wide, heads of `attention_head_dim` = 2d / H) and a gated
    MLP of `intermediate_size`; its weights are stored once per block, but each invocation
    keeps its own KV cache and owns a d x d output projection and LoRA adapters
    (`adapter_rank`) on the MLP (`use_shared_mlp_adapter`) and q/k/v
    (`use_shared_attention_adapter`).
    """
    c.check_per_layer_keys(mt, {"layers_block_type", "hybrid_layer_ids", "num_mem_blocks"})
    L = c.int("num_hidden_layers")
    d, H, kv, _ = heads_and_dims(c)
    if c.has("layers_block_type"):
        names = c.str_list("layers_block_type", L, ("mamba", "m", "hybrid", "g"))
        hybrid = [n in ("hybrid", "g") for n in names]
        if c.has("hybrid_layer_ids"):
            ids = c.int_list("hybrid_layer_ids", below=L)
            if sorted(ids) != [i for i, h in enumerate(hybrid) if h]:
                raise c.error("hybrid_layer_ids", f"{ids} disagrees with the hybrid layers "
                              "of layers_block_type")
    elif c.has("hybrid_layer_ids"):
        ids = set(c.int_list("hybrid_layer_ids", below=L))
        hybrid = [i in ids for i in range(L)]
    else:
        raise c.error("layers_block_type", "missing (or hybrid_layer_ids): which layers run "
                      "the shared attention block")
    a_width = c.int("attention_hidden_size", default=2 * d)
    if c.has("attention_head_dim"):
        a_head = c.int("attention_head_dim")
    elif a_width % H:
        raise c.error("num_attention_heads", f"{H} heads do not divide "
                      f"attention_hidden_size {a_width}, and no attention_head_dim is given")
    else:
        a_head = a_width // H
    blocks = c.int("num_mem_blocks", default=1)
    expand = c.int("mamba_expand", default=2)
    d_in = expand * d
    heads = c.int("n_mamba_heads")
    head = c.int("mamba_headdim", default=d_in // heads)
    if heads * head != d_in:
        raise c.error("n_mamba_heads", f"{heads} heads x mamba_headdim {head} must equal "
                      f"mamba_expand x hidden_size = {d_in}")
    rank = c.int("adapter_rank", default=128)
    kw = dict(n_layers=L, d_model=d, n_heads=H, n_kv_heads=kv, head_dim=max(1, d // H),
              vocab_size=c.int("vocab_size"), max_context=c.int("max_position_embeddings"),
              tie_embeddings=c.flag("tie_word_embeddings", True),
              ffn_dim=c.int("intermediate_size", default=4 * d),
              d_state=c.int("mamba_d_state"), d_conv=c.int("mamba_d_conv", default=4),
              ssm_expand=expand, ssm_head_dim=head,
              ssm_groups=c.int("mamba_ngroups", default=1),
              default_attention="ssm", default_ssm_variant="mamba2", block_out_proj=True,
              block_adapter_rank=rank if c.flag("use_shared_mlp_adapter", False) or
              c.flag("use_shared_attention_adapter", False) else 0,
              block_attn_adapters=c.flag("use_shared_attention_adapter", False),
              block_mlp_adapters=c.flag("use_shared_mlp_adapter", False))
    mamba = LayerSpec(kind="ssm", variant="mamba2", ffn="none")
    layers: list[LayerSpec] = []
    n_hybrid = 0
    for h in hybrid:
        if h:
            layers.append(LayerSpec(kind="full", shared_block=f"block{n_hybrid % blocks}",
                                    input_dim=a_width, head_dim=a_head, ffn="dense"))
            n_hybrid += 1
        layers.append(mamba)
    kw["layers"] = tuple(layers)
    return kw


def minimax(c: Keys, mt: str) -> dict:
    """minimax (and the published repos' minimax_m1 / MiniMaxText01): lightning attention
    (linear, arXiv:2501.08313) or softmax attention per layer, from `layer_types`
    ("linear_attention" / "full_attention") or the remote code's `attn_type_list`
    (0 = lightning, 1 = softmax). One of them is required: transformers' alternating default
    (configuration_minimax.py:124) matches no published MiniMax. FFN: MoE on every layer."""
    c.check_per_layer_keys(mt, {"layer_types", "attn_type_list"})
    kw = basics(c)
    L = kw["n_layers"]
    light = LayerSpec(kind="linear", variant="lightning")
    from_types = from_list = None
    if c.has("layer_types"):
        from_types = mixers_from_layer_types(c, L, {"full_attention": lambda: FULL,
                                                     "linear_attention": lambda: light})
    if c.has("attn_type_list"):
        codes = c.int_list("attn_type_list", L)
        for i, v in enumerate(codes):
            if v > 1:
                raise c.error(f"attn_type_list[{i}]", f"must be 0 (lightning) or 1 (softmax), "
                              f"got {v}")
        from_list = [FULL if v else light for v in codes]
    if from_types is None and from_list is None:
        raise c.error("layer_types", "missing (or attn_type_list): which layers are "
                      "lightning and which softmax attention")
    if from_types is not None and from_list is not None and from_types != from_list:
        raise c.error("attn_type_list", "disagrees with layer_types")
    if c.int("shared_intermediate_size", default=0, minimum=0):
        raise c.error("shared_intermediate_size", "a shared expert is not modelled for "
                      "minimax (0 in the published MiniMax-Text-01 / M1)")
    F = c.int("intermediate_size")
    kw.update(ffn_dim=F, moe_ffn_dim=F, n_experts=c.int("num_local_experts"),
              experts_per_token=c.int("num_experts_per_tok"),
              default_linear_variant="lightning")
    return with_defaults(kw, stack_of(from_types or from_list, ["moe"] * L))


def nemotron_h(c: Keys, mt: str) -> dict:
    """nemotron_h: one block per character of `hybrid_override_pattern` (or per entry of
    v5's `layers_block_type`): M = Mamba-2, * = attention, - = MLP, each with one norm and
    no FFN of its own (configuration_nemotron_h.py; `num_hidden_layers` must agree). The
    MoE block E (later Nemotron models) is not supported. Mamba-2 width = `mamba_num_heads`
    x `mamba_head_dim`; MLP non-gated ReLU^2 of `intermediate_size`. Head dim:
    `attention_head_dim`, else `head_dim`, else 128 (the class reads `head_dim`)."""
    c.check_per_layer_keys(mt, {"hybrid_override_pattern", "layers_block_type"})
    chars = {"M": "mamba", "*": "attention", "-": "mlp"}
    pattern = None
    if c.has("hybrid_override_pattern"):
        p = c.string("hybrid_override_pattern")
        for i, ch in enumerate(p):
            if ch == "E":
                raise c.error("hybrid_override_pattern", f"MoE blocks ('E' at {i}) are not "
                              "supported; known: M (Mamba-2), * (attention), - (MLP)")
            if ch not in chars:
                raise c.error("hybrid_override_pattern", f"unknown character {ch!r} at "
                              f"{i}; known: M (Mamba-2), * (attention), - (MLP)")
        pattern = [chars[ch] for ch in p]
    if c.has("layers_block_type"):
        v = c.cfg["layers_block_type"]
        n = len(v) if isinstance(v, list) else 0
        types = c.str_list("layers_block_type", n, ("mamba", "attention", "mlp"))
        if pattern is not None and types != pattern:
            raise c.error("layers_block_type", "disagrees with hybrid_override_pattern")
        pattern = types
    if not pattern:
        raise c.error("hybrid_override_pattern", "missing or empty: one character per block")
    L = len(pattern)
    if c.has("num_hidden_layers") and c.int("num_hidden_layers") != L:
        raise c.error("num_hidden_layers", f"{c.cfg['num_hidden_layers']}, but the pattern "
                      f"has {L} blocks")
    d, H, kv, hd = heads_and_dims(c, head_dim_keys=("attention_head_dim", "head_dim"),
                                  head_dim_default=128)
    heads, head = c.int("mamba_num_heads"), c.int("mamba_head_dim")
    if (heads * head) % d:
        raise c.error("mamba_num_heads", f"{heads} x mamba_head_dim {head} is not a multiple "
                      f"of hidden_size {d}")
    kw = dict(n_layers=L, d_model=d, n_heads=H, n_kv_heads=kv, head_dim=hd,
              vocab_size=c.int("vocab_size"), max_context=c.int("max_position_embeddings"),
              tie_embeddings=c.flag("tie_word_embeddings", False),
              ffn_dim=c.int("intermediate_size"), ffn_gated=False,
              ffn_bias=c.flag("mlp_bias", False), attn_bias=c.flag("attention_bias", False),
              d_state=c.int("ssm_state_size"), d_conv=c.int("conv_kernel", default=4),
              ssm_expand=heads * head // d, ssm_head_dim=head,
              ssm_groups=c.int("n_groups", default=1), default_ssm_variant="mamba2")
    spec = {"mamba": LayerSpec(kind="ssm", variant="mamba2", ffn="none"),
            "attention": LayerSpec(kind="full", ffn="none"),
            "mlp": LayerSpec(kind="none", ffn="dense")}
    return with_defaults(kw, tuple(spec[t] for t in pattern))


# --------------------------------------------------------------------------- SSMs

def _ssm_model(kw: dict, d: int, L: int, variant: str) -> dict:
    """Shared fields of an attention-free model: no FFN, one norm per layer; `n_heads`
    (d / 128 heads of 128) only serves what-ifs that swap attention in."""
    kw.update(n_layers=L, d_model=d, n_heads=max(1, d // 128), n_kv_heads=max(1, d // 128),
              head_dim=128, max_context=SSM_CONTEXT, norms_per_layer=1,
              default_attention="ssm", default_ssm_variant=variant)
    kw.setdefault("ffn_dim", 0)
    ffn = "dense" if kw["ffn_dim"] else "none"
    kw["layers"] = (LayerSpec(kind="ssm", variant=variant, ffn=ffn),) * L
    return kw


def _padded_vocab(c: Keys, vocab_key: str, default_pad: int) -> int:
    vocab = c.int(vocab_key)
    pad = c.int("pad_vocab_size_multiple", default=default_pad)
    return ceil_div(vocab, pad) * pad


def mamba(c: Keys, mt: str) -> dict:
    """mamba / falcon_mamba (Mamba-1 on every layer). The inner width is
    `intermediate_size` when given, else `expand` x d: falcon-mamba-7b says expand 16 but
    intermediate_size 8192 = 2 d, and the explicit key wins (configuration_falcon_mamba.py).
    A `pad_vocab_size_multiple` left in -hf configs pads the vocabulary (mamba_ssm's rule;
    the published vocab sizes are already multiples)."""
    c.check_per_layer_keys(mt, set())
    d = c.int("hidden_size", "d_model")
    L = c.int("num_hidden_layers", "n_layer")
    d_in = c.int("intermediate_size", default=c.int("expand", default=2) * d)
    if d_in % d:
        raise c.error("intermediate_size", f"{d_in} is not a multiple of hidden_size {d}")
    kw = dict(vocab_size=_padded_vocab(c, "vocab_size", 1),
              tie_embeddings=c.flag("tie_word_embeddings", True),
              d_state=c.int("state_size", default=16), d_conv=c.int("conv_kernel", default=4),
              ssm_expand=d_in // d, dt_rank=dt_rank(c, "time_step_rank", d))
    return _ssm_model(kw, d, L, "mamba1")


def mamba2(c: Keys, mt: str) -> dict:
    """mamba2 (transformers): Mamba-2 on every layer; `num_heads` x `head_dim` must equal
    `expand` x d (configuration_mamba2.py). Defaults are Mamba2Config's (Codestral's): 128
    heads of 64, 8 groups, state 128, conv 4, expand 2."""
    c.check_per_layer_keys(mt, set())
    d, L = c.int("hidden_size"), c.int("num_hidden_layers")
    expand = c.int("expand", default=2)
    heads, head = c.int("num_heads", default=128), c.int("head_dim", default=64)
    if heads * head != expand * d:
        raise c.error("num_heads", f"{heads} heads x head_dim {head} must equal expand x "
                      f"hidden_size = {expand * d}")
    kw = dict(vocab_size=c.int("vocab_size"),
              tie_embeddings=c.flag("tie_word_embeddings", False),
              d_state=c.int("state_size", default=128), d_conv=c.int("conv_kernel", default=4),
              ssm_expand=expand, ssm_head_dim=head, ssm_groups=c.int("n_groups", default=8))
    return _ssm_model(kw, d, L, "mamba2")


def mamba_ssm(c: Keys, mt: str) -> dict:
    """A mamba_ssm checkpoint config (no model_type; mamba_ssm/models/config_mamba.py):
    `d_model`, `n_layer`, `ssm_cfg.layer` Mamba1 (default) or Mamba2 with the module
    defaults of mamba_simple.py / mamba2.py for absent keys (Mamba-1: d_state 16; Mamba-2:
    d_state 128, headdim 64, ngroups 1; both d_conv 4, expand 2); vocabulary padded to
    `pad_vocab_size_multiple` (default 8); `d_intermediate` > 0 adds a gated MLP per layer.
    Attention layers (`attn_layer_idx`) are not supported."""
    c.check_per_layer_keys("mamba_ssm", {"attn_layer_idx"})
    if c.carries("attn_layer_idx"):
        raise c.error("attn_layer_idx", "attention layers in a mamba_ssm config are not "
                      "supported")
    d, L = c.int("d_model"), c.int("n_layer")
    s = Keys(c.cfg["ssm_cfg"], c.where, "ssm_cfg.")
    layer = s.string("layer", default="Mamba1")
    if layer not in ("Mamba1", "Mamba2"):
        raise s.error("layer", f"must be Mamba1 or Mamba2, got {layer!r}")
    v2 = layer == "Mamba2"
    expand = s.int("expand", default=2)
    F = c.int("d_intermediate", default=0, minimum=0)
    kw = dict(vocab_size=_padded_vocab(c, "vocab_size", 8),
              tie_embeddings=c.flag("tie_embeddings", True),
              norm="rms" if c.flag("rms_norm", True) else "layer",
              d_state=s.int("d_state", default=128 if v2 else 16),
              d_conv=s.int("d_conv", default=4), ssm_expand=expand, ffn_dim=F)
    if v2:
        head = s.int("headdim", default=64)
        if (expand * d) % head:
            raise s.error("headdim", f"{head} does not divide the inner width {expand * d}")
        kw.update(ssm_head_dim=head, ssm_groups=s.int("ngroups", default=1))
    else:
        kw["dt_rank"] = dt_rank(s, "dt_rank", d)
    kw["source_note"] = "mamba_ssm format (no model_type)"
    out = _ssm_model(kw, d, L, "mamba2" if v2 else "mamba1")
    if F:
        out["norms_per_layer"] = 2  # mamba_ssm Block: norm + mixer, norm2 + MLP
    return out
