"""Per-family readers of Hugging Face configs: shapes, and the layer stack layer by layer.

Each reader takes the validated key access of `simkit.catalog.hf.Keys` and returns the
`ModelConfig` fields, `layers` included. The rules follow the transformers configuration and
modeling classes of each `model_type` (file names below are under
transformers/models/<type>/, v4.57.1 / v5; line numbers in the project's notes). Defaults
applied where a published config omits a key are those classes' defaults, named beside them.
`max_position_embeddings` is required except where a published config omits it (Falcon-7B,
Gemma-3) or the model has no position limit (Mamba family).
"""

from __future__ import annotations

from typing import Callable

from simkit.catalog.hf import Keys, ceil_div, dt_rank, heads_and_dims
from simkit.stack import LayerSpec

#: an SSM has no trained position limit; the catalog's convention for "unbounded"
SSM_CONTEXT = 1_000_000


def _basics(c: Keys, *, tie_default: bool = False, context_default=None, **heads_kw) -> dict:
    """Layers, heads, vocabulary, context and tying of a decoder config."""
    L = c.int("num_hidden_layers")
    d, H, kv, hd = heads_and_dims(c, **heads_kw)
    ctx = c.int("max_position_embeddings") if context_default is None else \
        c.int("max_position_embeddings", default=context_default)
    return dict(n_layers=L, d_model=d, n_heads=H, n_kv_heads=kv, head_dim=hd,
                vocab_size=c.int("vocab_size"), max_context=ctx,
                tie_embeddings=c.flag("tie_word_embeddings", tie_default))


def _stack(mixers: list[LayerSpec], ffns: list[str]) -> tuple[LayerSpec, ...]:
    return tuple(LayerSpec(kind=m.kind, window=m.window, chunk=m.chunk, variant=m.variant,
                           ffn=f) for m, f in zip(mixers, ffns))


FULL = LayerSpec(kind="full")


def _window(w: int) -> LayerSpec:
    return LayerSpec(kind="window", window=w)


def _mixers_from_layer_types(c: Keys, L: int, kinds: dict[str, Callable[[], LayerSpec]]
                             ) -> list[LayerSpec]:
    """`layer_types` (it wins over every older key): each entry mapped by `kinds`."""
    return [kinds[t]() for t in c.str_list("layer_types", L, kinds)]


def _sliding(c: Keys) -> Callable[[], LayerSpec]:
    """A `sliding_attention` layer: needs `sliding_window`."""
    return lambda: _window(c.int("sliding_window"))


def _defaults(kw: dict, layers: tuple[LayerSpec, ...]) -> dict:
    """The model's default attention kind/window/chunk: its first mixer layer's."""
    first = next((s for s in layers if s.kind not in ("none", "ssm", "linear")), None)
    if first is not None:
        kw.setdefault("default_attention", first.kind)
    for s in layers:
        if s.kind == "window" and not kw.get("default_window"):
            kw["default_window"] = s.window
        if s.kind == "chunked" and not kw.get("default_chunk"):
            kw["default_chunk"] = s.chunk
    kw["layers"] = layers
    return kw


# --------------------------------------------------------------------------- dense / MoE GQA

def llama_like(c: Keys, mt: str) -> dict:
    """llama, mistral, mixtral, phi3: every layer the same. Mistral, Mixtral and Phi-3 slide a
    window over every layer when `sliding_window` is set (mistral/modeling_mistral.py "main
    diff with Llama"; phi3/modeling_phi3.py); llama has no window. Mixtral: every FFN is an
    MoE of `num_local_experts` experts of width `intermediate_size`."""
    windowed = mt in ("mistral", "mixtral", "phi3")
    c.check_per_layer_keys(mt, {"sliding_window"} if windowed else set())
    kw = _basics(c)
    L = kw["n_layers"]
    kw.update(ffn_dim=c.int("intermediate_size"), attn_bias=c.flag("attention_bias", False),
              ffn_bias=c.flag("mlp_bias", False))
    w = c.int("sliding_window", default=0) if windowed else 0
    mixer = _window(w) if w else FULL
    ffn = "dense"
    if mt == "mixtral":
        kw.update(n_experts=c.int("num_local_experts"),
                  experts_per_token=c.int("num_experts_per_tok"))
        ffn = "moe"
    return _defaults(kw, _stack([mixer] * L, [ffn] * L))


def qwen(c: Keys, mt: str) -> dict:
    """qwen2, qwen3, qwen2_moe, qwen3_moe, qwen3_next.

    Mixers: `layer_types` if given; else qwen2/qwen3 slide the window on layers
    i >= `max_window_layers` when `use_sliding_window` (qwen2/configuration_qwen2.py:84-96);
    qwen3_next: full attention on every `full_attention_interval`-th layer, Gated DeltaNet on
    the others (configuration_qwen3_next.py:126-136). The MoE types with
    `use_sliding_window: true` and no `layer_types` are refused: for qwen2_moe transformers
    v4.57 and v5 disagree on which layers slide (configuration_qwen2_moe.py:116 vs v4
    modeling_qwen2_moe.py:459-466); qwen3_moe / qwen3_next configs give no per-layer rule.
    FFN: MoE on layer i iff i is not in `mlp_only_layers` and (i + 1) % `decoder_sparse_step`
    == 0 (modeling_qwen2_moe.py:358-359), else dense of `intermediate_size`; qwen2_moe and
    qwen3_next add one always-on shared expert of `shared_expert_intermediate_size`.
    Attention: qwen2 / qwen2_moe have q, k, v biases; qwen3* per-head q/k RMSNorm; qwen3_next
    a sigmoid output gate (its q projection is 2 H d_h wide).
    """
    moe = mt in ("qwen2_moe", "qwen3_moe", "qwen3_next")
    understood = {"layer_types", "sliding_window", "use_sliding_window", "max_window_layers"}
    if moe:
        understood |= {"decoder_sparse_step", "mlp_only_layers"}
    if mt == "qwen3_next":
        understood.add("full_attention_interval")
    c.check_per_layer_keys(mt, understood)
    kw = _basics(c)
    L = kw["n_layers"]
    kw["ffn_dim"] = c.int("intermediate_size")
    if mt == "qwen2":
        kw["attn_bias"] = True  # q, k, v biases (qwen2/modeling_qwen2.py:181-184)
    elif mt == "qwen2_moe":
        kw["attn_bias"] = c.flag("qkv_bias", True)
    else:
        kw["attn_bias"] = c.flag("attention_bias", False)
        kw["qk_norm"] = True
    if mt == "qwen3_next":
        kw["attn_output_gate"] = True
        hk, hv = c.int("linear_num_key_heads"), c.int("linear_num_value_heads")
        if hv % hk:
            raise c.error("linear_num_value_heads", f"{hv} value heads are not a multiple "
                          f"of the {hk} key heads (linear_num_key_heads)")
        kw.update(linear_key_heads=hk, linear_value_heads=hv,
                  linear_key_dim=c.int("linear_key_head_dim"),
                  linear_value_dim=c.int("linear_value_head_dim"),
                  linear_conv=c.int("linear_conv_kernel_dim", default=4),
                  default_linear_variant="gated_deltanet")
    gdn = LayerSpec(kind="linear", variant="gated_deltanet")
    if c.has("layer_types"):
        kinds = {"full_attention": lambda: FULL, "sliding_attention": _sliding(c)}
        if mt == "qwen3_next":
            kinds = {"full_attention": lambda: FULL, "linear_attention": lambda: gdn}
        mixers = _mixers_from_layer_types(c, L, kinds)
    else:
        use_sw = c.flag("use_sliding_window", False)
        if use_sw and mt != "qwen2" and mt != "qwen3":
            why = "transformers releases disagree on which layers slide" \
                if mt == "qwen2_moe" else "its config class gives no per-layer rule"
            raise c.error("use_sliding_window", f"true is not supported for {mt} without "
                          f"layer_types: {why}")
        if mt == "qwen3_next":
            every = c.int("full_attention_interval", default=4)
            mixers = [gdn if (i + 1) % every else FULL for i in range(L)]
        elif use_sw and c.has("sliding_window"):
            w = c.int("sliding_window")
            first = c.int("max_window_layers", default=L, minimum=0)
            mixers = [_window(w) if i >= first else FULL for i in range(L)]
        else:
            mixers = [FULL] * L
    ffns = ["dense"] * L
    if moe:
        E = c.int("num_experts", default=0, minimum=0)
        if E:
            kw.update(n_experts=E, experts_per_token=c.int("num_experts_per_tok"),
                      moe_ffn_dim=c.int("moe_intermediate_size"),
                      _experts_key=("num_experts", "num_experts_per_tok"))
            if mt != "qwen3_moe":
                kw["shared_expert_ffn_dim"] = c.int("shared_expert_intermediate_size",
                                                    default=0, minimum=0)
            step = c.int("decoder_sparse_step", default=1)
            dense_only = set(c.int_list("mlp_only_layers", below=L)) \
                if c.has("mlp_only_layers") else set()
            ffns = ["moe" if i not in dense_only and (i + 1) % step == 0 else "dense"
                    for i in range(L)]
    return _defaults(kw, _stack(mixers, ffns))


def gemma(c: Keys, mt: str) -> dict:
    """gemma2, gemma3 (its `text_config`), gemma3_text.

    Mixers: `layer_types` if given; else Gemma-2 slides on even layers (layer i sliding iff
    (i + 1) % 2, configuration_gemma2.py:94-98) and Gemma-3 on all but every
    `sliding_window_pattern`-th layer (sliding iff (i + 1) % pattern != 0, default 6,
    configuration_gemma3.py:100-112). Four RMSNorms per layer; Gemma-3 adds q/k norms.
    Gemma3TextConfig defaults fill what Google's minimal gemma-3 configs omit: vocab 262,208,
    context 131,072, head_dim 256, window 4096, pattern 6, tied embeddings.
    """
    if mt == "gemma3":
        text = c.cfg.get("text_config")
        if not isinstance(text, dict):
            raise c.error("text_config", "missing: a gemma3 config keeps the language model "
                          "in text_config")
        c = Keys(text, c.where, "text_config.")
        mt = "gemma3_text"
    g3 = mt == "gemma3_text"
    understood = {"layer_types", "sliding_window"}
    understood |= {"sliding_window_pattern", "_sliding_window_pattern",
                   "use_bidirectional_attention"} if g3 else {"sliding_window_size"}
    c.check_per_layer_keys(mt, understood)
    if g3:
        if c.flag("use_bidirectional_attention", False):
            raise c.error("use_bidirectional_attention", "true makes Gemma-3 an encoder "
                          "(EmbeddingGemma); simkit models causal decoders")
        kw = dict(n_layers=c.int("num_hidden_layers"),
                  vocab_size=c.int("vocab_size", default=262_208),
                  max_context=c.int("max_position_embeddings", default=131_072),
                  tie_embeddings=c.flag("tie_word_embeddings", True), qk_norm=True)
        d, H, kv, hd = heads_and_dims(c, head_dim_default=256)
        kw.update(d_model=d, n_heads=H, n_kv_heads=kv, head_dim=hd)
        w_default = 4096
    else:
        kw = _basics(c, tie_default=True)
        w_default = None
        if c.has("sliding_window_size") and c.has("sliding_window") and \
                c.int("sliding_window_size") != c.int("sliding_window"):
            raise c.error("sliding_window_size", f"{c.cfg['sliding_window_size']} disagrees "
                          f"with sliding_window {c.cfg['sliding_window']}")
    L = kw["n_layers"]
    kw.update(ffn_dim=c.int("intermediate_size"), norms_per_layer=4,
              attn_bias=c.flag("attention_bias", False))

    def sliding() -> LayerSpec:
        return _window(c.int("sliding_window") if w_default is None else
                       c.int("sliding_window", default=w_default))

    if c.has("layer_types"):
        mixers = _mixers_from_layer_types(c, L, {"full_attention": lambda: FULL,
                                                 "sliding_attention": sliding})
    else:
        every = c.int("sliding_window_pattern", "_sliding_window_pattern",
                      default=6) if g3 else 2
        mixers = [sliding() if (i + 1) % every else FULL for i in range(L)]
    return _defaults(kw, _stack(mixers, ["dense"] * L))


def gpt_oss(c: Keys, mt: str) -> dict:
    """gpt_oss: `layer_types` (default: even layers slide, configuration_gpt_oss.py:80-97);
    MoE on every layer (`num_local_experts`, top `num_experts_per_tok`, width
    `intermediate_size`, expert biases); q, k, v, o biases; one learned sink per head."""
    c.check_per_layer_keys(mt, {"layer_types", "sliding_window"})
    kw = _basics(c)
    L = kw["n_layers"]
    k = c.int("num_experts_per_tok", "experts_per_token")
    if c.has("experts_per_token") and c.int("experts_per_token") != k:
        raise c.error("experts_per_token", f"{c.cfg['experts_per_token']} disagrees with "
                      f"num_experts_per_tok {k}")
    F = c.int("intermediate_size")
    kw.update(ffn_dim=F, moe_ffn_dim=F, n_experts=c.int("num_local_experts"),
              experts_per_token=k, ffn_bias=True, attn_bias=c.flag("attention_bias", True),
              attn_sinks=True)
    if c.has("layer_types"):
        mixers = _mixers_from_layer_types(c, L, {"full_attention": lambda: FULL,
                                                 "sliding_attention": _sliding(c)})
    else:
        mixers = [_window(c.int("sliding_window")) if (i + 1) % 2 else FULL
                  for i in range(L)]
    return _defaults(kw, _stack(mixers, ["moe"] * L))


def llama4(c: Keys, mt: str) -> dict:
    """llama4 (its `text_config`) / llama4_text.

    Mixers: `layer_types` if given; else `no_rope_layers[i]` (1 = this layer uses RoPE, the
    name is inverted; default 1 unless (i + 1) % `no_rope_layer_interval` == 0, interval 4)
    makes layer i chunked local attention of `attention_chunk_size` (default 8192), the
    others global NoPE full attention (configuration_llama4.py:165-193).
    FFN: MoE on `moe_layers` (default every `interleave_moe_layer_step`-th layer from
    step - 1): `num_local_experts` experts of `intermediate_size`, top `num_experts_per_tok`,
    plus one shared expert of the same width (modeling_llama4.py:164); dense layers have
    `intermediate_size_mlp`. Its q/k norm is parameter-free (L2).
    """
    top = c
    if mt == "llama4":
        text = c.cfg.get("text_config")
        if not isinstance(text, dict):
            raise c.error("text_config", "missing: a llama4 config keeps the language model "
                          "in text_config")
        c = Keys(text, c.where, "text_config.")
    c.check_per_layer_keys("llama4", {"layer_types", "attention_chunk_size",
                                      "no_rope_layers", "no_rope_layer_interval",
                                      "interleave_moe_layer_step", "moe_layers"})
    kw = _basics(c)
    if not c.has("tie_word_embeddings"):
        kw["tie_embeddings"] = top.flag("tie_word_embeddings", False)
    L = kw["n_layers"]
    F_e = c.int("intermediate_size")
    kw.update(n_experts=c.int("num_local_experts"), experts_per_token=c.int(
        "num_experts_per_tok"), moe_ffn_dim=F_e, shared_expert_ffn_dim=F_e,
        attn_bias=c.flag("attention_bias", False))
    # an explicit null switches chunking off (transformers: `attention_chunk_size is None`)
    chunk = None if "attention_chunk_size" in c.cfg and c.cfg["attention_chunk_size"] is None \
        else c.int("attention_chunk_size", default=8192)

    def local() -> LayerSpec:
        return LayerSpec(kind="chunked", chunk=chunk) if chunk else FULL

    if c.has("layer_types"):
        mixers = _mixers_from_layer_types(c, L, {"full_attention": lambda: FULL,
                                                 "chunked_attention": local})
    else:
        if c.carries("no_rope_layers"):
            rope = c.int_list("no_rope_layers", L)
            for i, v in enumerate(rope):
                if v > 1:
                    raise c.error(f"no_rope_layers[{i}]", f"must be 0 or 1, got {v}")
        else:
            every = c.int("no_rope_layer_interval", default=4)
            rope = [int((i + 1) % every != 0) for i in range(L)]
        mixers = [local() if r else FULL for r in rope]
    if c.carries("moe_layers"):
        moe_at = set(c.int_list("moe_layers", below=L))
    else:
        step = c.int("interleave_moe_layer_step", default=1)
        moe_at = set(range(step - 1, L, step))
    ffns = ["moe" if i in moe_at else "dense" for i in range(L)]
    kw["ffn_dim"] = c.int("intermediate_size_mlp") if "dense" in ffns else \
        c.int("intermediate_size_mlp", default=F_e)
    return _defaults(kw, _stack(mixers, ffns))


def deepseek(c: Keys, mt: str) -> dict:
    """deepseek_v2 / deepseek_v3: MLA on every layer; a dense FFN (`intermediate_size`) on
    the first `first_k_dense_replace` layers, MoE after (modeling_deepseek_v3.py:493):
    `n_routed_experts` of `moe_intermediate_size`, top `num_experts_per_tok`, plus
    `n_shared_experts` of the same width. `moe_layer_freq` other than 1 is refused:
    transformers ignores it while the original code used layer_idx % freq == 0. The MTP
    module (`num_nextn_predict_layers`) is a speculative-decoding head outside the model
    (DeepSeek-V3's 671B excludes it) and is not modelled."""
    c.check_per_layer_keys(mt, {"first_k_dense_replace", "moe_layer_freq"})
    if c.has("moe_layer_freq") and c.int("moe_layer_freq") != 1:
        raise c.error("moe_layer_freq", f"{c.cfg['moe_layer_freq']}: only 1 is supported "
                      "(transformers ignores the key, the original code did not)")
    L = c.int("num_hidden_layers")
    H = c.int("num_attention_heads")
    kw = dict(n_layers=L, d_model=c.int("hidden_size"), n_heads=H, n_kv_heads=H,
              head_dim=c.int("qk_nope_head_dim"), v_head_dim=c.int("v_head_dim"),
              kv_lora_rank=c.int("kv_lora_rank"), q_lora_rank=c.int("q_lora_rank", default=0),
              qk_rope_head_dim=c.int("qk_rope_head_dim"), vocab_size=c.int("vocab_size"),
              max_context=c.int("max_position_embeddings"),
              tie_embeddings=c.flag("tie_word_embeddings", False),
              ffn_dim=c.int("intermediate_size"), attn_bias=c.flag("attention_bias", False),
              default_attention="mla")
    ffns = ["dense"] * L
    E = c.int("n_routed_experts", default=0, minimum=0)
    if E:
        first = c.int("first_k_dense_replace", default=0, minimum=0)
        if first > L:
            raise c.error("first_k_dense_replace", f"{first} exceeds the {L} layers")
        kw.update(n_experts=E, experts_per_token=c.int("num_experts_per_tok"),
                  n_shared_experts=c.int("n_shared_experts", default=0, minimum=0),
                  moe_ffn_dim=c.int("moe_intermediate_size"), first_dense_layers=first,
                  _experts_key=("n_routed_experts", "num_experts_per_tok"))
        ffns = ["dense" if i < first else "moe" for i in range(L)]
    return _defaults(kw, _stack([LayerSpec(kind="mla")] * L, ffns))


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
    kw = _basics(c)
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
    return _defaults(kw, _stack(mixers, ffns))


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
    kw = _basics(c)
    L = kw["n_layers"]
    light = LayerSpec(kind="linear", variant="lightning")
    from_types = from_list = None
    if c.has("layer_types"):
        from_types = _mixers_from_layer_types(c, L, {"full_attention": lambda: FULL,
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
    return _defaults(kw, _stack(from_types or from_list, ["moe"] * L))


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
    return _defaults(kw, tuple(spec[t] for t in pattern))


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


# --------------------------------------------------------------------------- classic MHA

def opt(c: Keys, mt: str) -> dict:
    """opt: pre-LN, ReLU MLP of `ffn_dim`, biases everywhere (`enable_bias`), learned
    positions with an offset of 2 (modeling_opt.py:54), tied head. OPT-350m's projected
    embeddings (`word_embed_proj_dim` != hidden_size) are not modelled."""
    c.check_per_layer_keys(mt, set())
    kw = _basics(c, tie_default=True, kv_key="num_attention_heads")
    d = kw["d_model"]
    if c.has("word_embed_proj_dim") and c.int("word_embed_proj_dim") != d:
        raise c.error("word_embed_proj_dim", f"{c.cfg['word_embed_proj_dim']} != hidden_size "
                      f"{d}: projected embeddings (OPT-350m) are not modelled")
    bias = c.flag("enable_bias", True)
    kw.update(ffn_dim=c.int("ffn_dim"), ffn_gated=False, norm="layer", attn_bias=bias,
              ffn_bias=bias, learned_positions=kw["max_context"] + 2)
    return _defaults(kw, _stack([FULL] * kw["n_layers"], ["dense"] * kw["n_layers"]))


def falcon(c: Keys, mt: str) -> dict:
    """falcon (and the old RefinedWeb types): fused QKV (modeling_falcon.py:225-241):
    new_decoder_architecture -> `num_kv_heads` K/V heads, else `multi_query` -> one, else
    H; parallel attention + MLP read one LayerNorm (two with the new architecture's
    `num_ln_in_parallel_attn` 2); non-gated MLP of `ffn_hidden_size` (4 d); FalconConfig's
    context 2048 when the config omits it (Falcon-7B)."""
    c.check_per_layer_keys(mt, set())
    d = c.int("hidden_size")
    H = c.int("num_attention_heads", "n_head")
    L = c.int("num_hidden_layers", "n_layer")
    if d % H:
        raise c.error("num_attention_heads", f"{H} heads do not divide hidden_size {d}, and "
                      "no head_dim is given")
    new = c.flag("new_decoder_architecture", False)
    if new:
        kv = c.int("num_kv_heads", "n_head_kv", default=H)
        if H % kv:
            raise c.error("num_kv_heads", f"{kv} key/value heads do not divide the {H} query "
                          "heads (num_attention_heads)")
    else:
        kv = 1 if c.flag("multi_query", True) else H
    parallel = c.flag("parallel_attn", True)
    norms = 2 if (new and c.int("num_ln_in_parallel_attn", default=2) == 2) or \
        not parallel else 1
    bias = c.flag("bias", False)
    kw = dict(n_layers=L, d_model=d, n_heads=H, n_kv_heads=kv, head_dim=d // H,
              vocab_size=c.int("vocab_size"),
              max_context=c.int("max_position_embeddings", default=2048),
              ffn_dim=c.int("ffn_hidden_size", default=4 * d), ffn_gated=False, norm="layer",
              norms_per_layer=norms, attn_bias=bias, ffn_bias=bias,
              tie_embeddings=c.flag("tie_word_embeddings", True))
    return _defaults(kw, _stack([FULL] * L, ["dense"] * L))


def gpt2(c: Keys, mt: str) -> dict:
    """gpt2: MHA with biases, MLP of `n_inner` (4 d), learned positions (`n_positions`),
    two LayerNorms per layer, tied head."""
    c.check_per_layer_keys(mt, set())
    d = c.int("n_embd", "hidden_size")
    H = c.int("n_head", "num_attention_heads")
    L = c.int("n_layer", "num_hidden_layers")
    if d % H:
        raise c.error("n_head", f"{H} heads do not divide n_embd {d}, and no head_dim is "
                      "given")
    ctx = c.int("n_positions", "max_position_embeddings")
    kw = dict(n_layers=L, d_model=d, n_heads=H, n_kv_heads=H, head_dim=d // H,
              vocab_size=c.int("vocab_size"), max_context=ctx,
              ffn_dim=c.int("n_inner", default=4 * d), ffn_gated=False, norm="layer",
              attn_bias=True, ffn_bias=True, learned_positions=ctx,
              tie_embeddings=c.flag("tie_word_embeddings", True))
    return _defaults(kw, _stack([FULL] * L, ["dense"] * L))


def gpt_neox(c: Keys, mt: str) -> dict:
    """gpt_neox: fused QKV with biases (`attention_bias`), non-gated MLP with biases, two
    LayerNorms per layer (parallel residual: same weights), untied `embed_out`."""
    c.check_per_layer_keys(mt, set())
    kw = _basics(c, kv_key="num_attention_heads")
    bias = c.flag("attention_bias", True)
    kw.update(ffn_dim=c.int("intermediate_size"), ffn_gated=False, norm="layer",
              attn_bias=bias, ffn_bias=True)
    return _defaults(kw, _stack([FULL] * kw["n_layers"], ["dense"] * kw["n_layers"]))


# --------------------------------------------------------------------------- registry

READERS: dict[str, Callable[[Keys, str], dict]] = {
    "llama": llama_like, "mistral": llama_like, "mixtral": llama_like, "phi3": llama_like,
    "qwen2": qwen, "qwen3": qwen, "qwen2_moe": qwen, "qwen3_moe": qwen, "qwen3_next": qwen,
    "gemma2": gemma, "gemma3": gemma, "gemma3_text": gemma, "gpt_oss": gpt_oss,
    "llama4": llama4, "llama4_text": llama4, "deepseek_v2": deepseek, "deepseek_v3": deepseek,
    "jamba": jamba, "zamba2": zamba2, "minimax": minimax, "nemotron_h": nemotron_h,
    "mamba": mamba, "falcon_mamba": mamba, "mamba2": mamba2, "mamba_ssm": mamba_ssm,
    "opt": opt, "falcon": falcon, "gpt2": gpt2, "gpt_neox": gpt_neox,
}

#: the model_types of the issue, in its order (llama4_text / gemma3_text: the nested types)
SUPPORTED = ("llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen2_moe", "qwen3_moe",
             "gemma2", "gemma3", "gemma3_text", "gpt_oss", "llama4", "deepseek_v2",
             "deepseek_v3", "jamba", "zamba2", "qwen3_next", "minimax", "mamba", "mamba2",
             "falcon_mamba", "nemotron_h", "phi3", "opt", "falcon", "gpt2", "gpt_neox")

#: other spellings of supported architectures in published configs
ALIASES = {
    "llama4_text": "llama4_text",  # Llama-4's nested text_config, loaded on its own
    "minimax_m1": "minimax",  # MiniMaxAI/MiniMax-M1-* (remote code, attn_type_list)
    "minimaxtext01": "minimax",  # MiniMaxAI/MiniMax-Text-01 (remote code)
    "refinedweb": "falcon", "refinedwebmodel": "falcon",  # older tiiuae/falcon-* revisions
}


def canonical_type(model_type: str) -> str | None:
    """The reader key of a model_type (case-insensitive), or None if unsupported."""
    t = model_type.strip().lower()
    if t in SUPPORTED:
        return t
    return ALIASES.get(t)
