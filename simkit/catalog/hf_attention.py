"""Hugging Face readers of the attention decoders: llama, mistral, mixtral, minimax_m2, phi3,
qwen2 / qwen3 / qwen2_moe / qwen3_moe / qwen3_next, gemma2 / gemma3, gpt_oss, llama4,
deepseek_v2 / v3, kimi_k25, opt, falcon, gpt2, gpt_neox. Each takes the validated keys of
`simkit.catalog.hf.Keys` and returns the `ModelConfig` fields, `layers` built layer by layer.

The rules follow the transformers configuration and modeling classes of each `model_type`
(files under transformers/models/<type>/, v4.57.1 / v5; line numbers as in the project's
notes), with those classes' defaults where a published config omits a key.
`max_position_embeddings` is required except where a published config omits it (Falcon-7B,
Gemma-3).
"""

from __future__ import annotations

from simkit.catalog.hf import (FULL, Keys, basics, heads_and_dims, mixers_from_layer_types,
                               sliding, stack_of, window, with_defaults)
from simkit.stack import LayerSpec


def text_keys(c: Keys, mt: str) -> Keys:
    """The language model of a vision-language config: its `text_config`, keys named so."""
    text = c.cfg.get("text_config")
    if not isinstance(text, dict):
        raise c.error("text_config", f"missing: a {mt} config keeps the language model in "
                      "text_config")
    return Keys(text, c.where, "text_config.")


# --------------------------------------------------------------------------- dense / MoE GQA

def llama_like(c: Keys, mt: str) -> dict:
    """llama, mistral, mixtral, phi3: every layer the same. Mistral, Mixtral and Phi-3 slide a
    window over every layer when `sliding_window` is set (mistral/modeling_mistral.py "main
    diff with Llama"; phi3/modeling_phi3.py); llama has no window. Mixtral: every FFN is an
    MoE of `num_local_experts` experts of width `intermediate_size`."""
    windowed = mt in ("mistral", "mixtral", "phi3")
    c.check_per_layer_keys(mt, {"sliding_window"} if windowed else set())
    kw = basics(c)
    L = kw["n_layers"]
    kw.update(ffn_dim=c.int("intermediate_size"), attn_bias=c.flag("attention_bias", False),
              ffn_bias=c.flag("mlp_bias", False))
    w = c.int("sliding_window", default=0) if windowed else 0
    mixer = window(w) if w else FULL
    ffn = "dense"
    if mt == "mixtral":
        kw.update(n_experts=c.int("num_local_experts"),
                  experts_per_token=c.int("num_experts_per_tok"))
        ffn = "moe"
    return with_defaults(kw, stack_of([mixer] * L, [ffn] * L))


def minimax_m2(c: Keys, mt: str) -> dict:
    """minimax_m2 (MiniMaxAI/MiniMax-M2*, remote code `MiniMaxM2ForCausalLM`): every layer
    full GQA attention (`head_dim` given) with q and k RMSNorm (`use_qk_norm`), and an MoE of
    `num_local_experts` experts of width `intermediate_size`, `num_experts_per_tok` per token,
    with no always-on expert (`shared_intermediate_size` 0; another value is refused, its
    layout unread). Its norm spans the whole q and k projections (`qk_norm_type` per_layer):
    (H + H_kv) d_h weights a layer where simkit's per-head norm counts 2 d_h -- 7,168 against
    256 on MiniMax-M2, a few hundred thousand of its 230B. The multi-token-prediction modules
    (`use_mtp`) are not counted, as DeepSeek-V3's are not."""
    c.check_per_layer_keys(mt, set())
    if c.int("shared_intermediate_size", default=0, minimum=0):
        raise c.error("shared_intermediate_size", "a shared expert is not read for minimax_m2")
    kw = basics(c)
    L = kw["n_layers"]
    kw.update(ffn_dim=c.int("intermediate_size"), qk_norm=c.flag("use_qk_norm", False),
              attn_bias=c.flag("attention_bias", False),
              n_experts=c.int("num_local_experts"),
              experts_per_token=c.int("num_experts_per_tok"))
    return with_defaults(kw, stack_of([FULL] * L, ["moe"] * L))


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
    kw = basics(c)
    L = kw["n_layers"]
    # (Qwen3.5's MoE configs route every layer and give no dense width: refused below if a
    # layer is dense after all)
    kw["ffn_dim"] = c.int("intermediate_size", default=0) if moe else c.int("intermediate_size")
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
        kinds = {"full_attention": lambda: FULL, "sliding_attention": sliding(c)}
        if mt == "qwen3_next":
            kinds = {"full_attention": lambda: FULL, "linear_attention": lambda: gdn}
        mixers = mixers_from_layer_types(c, L, kinds)
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
            mixers = [window(w) if i >= first else FULL for i in range(L)]
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
    if "dense" in ffns and not kw["ffn_dim"]:
        raise c.error("intermediate_size", "missing, and some layers have a dense FFN")
    return with_defaults(kw, stack_of(mixers, ffns))


def qwen3_5(c: Keys, mt: str) -> dict:
    """qwen3_5 / qwen3_5_moe (their `text_config`) and qwen3_5_text / qwen3_5_moe_text: the
    Qwen3-Next layout -- Gated DeltaNet and gated full attention by `layer_types` (one full
    layer in `full_attention_interval`), q/k norm, and on the MoE types `num_experts` routed
    experts plus one shared expert -- with the same keys, read by `qwen` as qwen3_next. The
    MoE configs give no `intermediate_size` (every layer routed; `mlp_only_layers` empty):
    a dense layer there is refused. The vision encoder is not counted."""
    if mt in ("qwen3_5", "qwen3_5_moe"):
        c = text_keys(c, mt)
    return qwen(c, "qwen3_next")


def kimi_k25(c: Keys, mt: str) -> dict:
    """kimi_k25 (moonshotai/Kimi-K2.5): a vision-language wrapper whose `text_config` is a
    Kimi-K2, which names DeepseekV3ForCausalLM: read as deepseek_v3 (the vision encoder is
    not counted)."""
    return deepseek(text_keys(c, mt), "deepseek_v3")


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
        c = text_keys(c, mt)
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
        kw = basics(c, tie_default=True)
        w_default = None
        if c.has("sliding_window_size") and c.has("sliding_window") and \
                c.int("sliding_window_size") != c.int("sliding_window"):
            raise c.error("sliding_window_size", f"{c.cfg['sliding_window_size']} disagrees "
                          f"with sliding_window {c.cfg['sliding_window']}")
    L = kw["n_layers"]
    kw.update(ffn_dim=c.int("intermediate_size"), norms_per_layer=4,
              attn_bias=c.flag("attention_bias", False))

    def local() -> LayerSpec:
        return window(c.int("sliding_window") if w_default is None else
                      c.int("sliding_window", default=w_default))

    if c.has("layer_types"):
        mixers = mixers_from_layer_types(c, L, {"full_attention": lambda: FULL,
                                                 "sliding_attention": local})
    else:
        every = c.int("sliding_window_pattern", "_sliding_window_pattern",
                      default=6) if g3 else 2
        mixers = [local() if (i + 1) % every else FULL for i in range(L)]
    return with_defaults(kw, stack_of(mixers, ["dense"] * L))


def gpt_oss(c: Keys, mt: str) -> dict:
    """gpt_oss: `layer_types` (default: even layers slide, configuration_gpt_oss.py:80-97);
    MoE on every layer (`num_local_experts`, top `num_experts_per_tok`, width
    `intermediate_size`, expert biases); q, k, v, o biases; one learned sink per head."""
    c.check_per_layer_keys(mt, {"layer_types", "sliding_window"})
    kw = basics(c)
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
        mixers = mixers_from_layer_types(c, L, {"full_attention": lambda: FULL,
                                                 "sliding_attention": sliding(c)})
    else:
        mixers = [window(c.int("sliding_window")) if (i + 1) % 2 else FULL
                  for i in range(L)]
    return with_defaults(kw, stack_of(mixers, ["moe"] * L))


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
        c = text_keys(c, mt)
    c.check_per_layer_keys("llama4", {"layer_types", "attention_chunk_size",
                                      "no_rope_layers", "no_rope_layer_interval",
                                      "interleave_moe_layer_step", "moe_layers"})
    kw = basics(c)
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
        mixers = mixers_from_layer_types(c, L, {"full_attention": lambda: FULL,
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
    return with_defaults(kw, stack_of(mixers, ffns))


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
    return with_defaults(kw, stack_of([LayerSpec(kind="mla")] * L, ffns))


# --------------------------------------------------------------------------- classic MHA

def opt(c: Keys, mt: str) -> dict:
    """opt: pre-LN, ReLU MLP of `ffn_dim`, biases everywhere (`enable_bias`), learned
    positions with an offset of 2 (modeling_opt.py:54), tied head. OPT-350m's projected
    embeddings (`word_embed_proj_dim` != hidden_size) are not modelled."""
    c.check_per_layer_keys(mt, set())
    kw = basics(c, tie_default=True, kv_key="num_attention_heads")
    d = kw["d_model"]
    if c.has("word_embed_proj_dim") and c.int("word_embed_proj_dim") != d:
        raise c.error("word_embed_proj_dim", f"{c.cfg['word_embed_proj_dim']} != hidden_size "
                      f"{d}: projected embeddings (OPT-350m) are not modelled")
    bias = c.flag("enable_bias", True)
    kw.update(ffn_dim=c.int("ffn_dim"), ffn_gated=False, norm="layer", attn_bias=bias,
              ffn_bias=bias, learned_positions=kw["max_context"] + 2)
    return with_defaults(kw, stack_of([FULL] * kw["n_layers"], ["dense"] * kw["n_layers"]))


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
    return with_defaults(kw, stack_of([FULL] * L, ["dense"] * L))


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
    return with_defaults(kw, stack_of([FULL] * L, ["dense"] * L))


def gpt_neox(c: Keys, mt: str) -> dict:
    """gpt_neox: fused QKV with biases (`attention_bias`), non-gated MLP with biases, two
    LayerNorms per layer (parallel residual: same weights), untied `embed_out`."""
    c.check_per_layer_keys(mt, set())
    kw = basics(c, kv_key="num_attention_heads")
    bias = c.flag("attention_bias", True)
    kw.update(ffn_dim=c.int("intermediate_size"), ffn_gated=False, norm="layer",
              attn_bias=bias, ffn_bias=True)
    return with_defaults(kw, stack_of([FULL] * kw["n_layers"], ["dense"] * kw["n_layers"]))
