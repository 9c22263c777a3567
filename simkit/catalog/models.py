"""Model configurations: the thirteen catalog models and a Hugging Face `config.json` loader.

Every entry carries its source. Shapes follow the Hugging Face configs (the authority for
Llama-2 shapes) or the paper named beside them. Traps handled here:
- Falcon-7B's `multi_query: true` means ONE key/value head (71 query heads of 64).
- Mistral-7B's default attention is its 4096-token sliding window (rolling buffer).
- DeepSeek-V2 uses multi-head latent attention (MLA) and a DeepSeekMoE FFN whose first layer
  is dense.
- Mamba has no attention: its mixer is a selective SSM (conv + state); `n_heads` is only
  used when a what-if swaps attention in, and is then d_model / 128.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from simkit.errors import SimkitError


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of one model. Counts are per layer unless the name says otherwise."""

    name: str
    source: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    vocab_size: int
    max_context: int
    ffn_dim: int
    ffn_gated: bool = True  # SwiGLU (3 matrices) vs plain MLP (2 matrices)
    norm: str = "rms"  # rms (weight only) | layer (weight + bias)
    norms_per_layer: int = 2  # Falcon's parallel block has 1
    attn_bias: bool = False  # biases on q, k, v, o
    ffn_bias: bool = False
    tie_embeddings: bool = False
    learned_positions: int = 0  # rows of a learned position-embedding table (OPT, GPT-3)
    # MoE FFN (Mixtral, DeepSeek-V2)
    n_experts: int = 0  # routed experts; 0 = dense FFN
    experts_per_token: int = 0
    n_shared_experts: int = 0
    moe_ffn_dim: int = 0  # width of one routed/shared expert (default ffn_dim)
    first_dense_layers: int = 0  # leading layers with a dense FFN (DeepSeek-V2: 1)
    # MLA (DeepSeek-V2)
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    v_head_dim: int = 0
    shared_expert_ffn_dim: int = 0  # width of the always-on shared expert (0: moe_ffn_dim)
    # attention details that add parameters (not cache)
    qk_norm: bool = False  # per-head RMSNorm of q and k (Qwen3, Gemma-3): 2 d_h weights
    attn_output_gate: bool = False  # sigmoid gate on the attention output (Qwen3-Next)
    attn_sinks: bool = False  # one learned sink logit per head (gpt-oss)
    # SSM (Mamba-1 / Mamba-2)
    d_state: int = 16
    d_conv: int = 4
    ssm_expand: int = 2
    dt_rank: int = 0  # 0 -> ceil(d_model / 16)
    ssm_head_dim: int = 0  # Mamba-2 head dim P (heads = d_inner / P)
    ssm_groups: int = 1  # Mamba-2 groups of B/C (n_groups)
    # linear attention (Gated DeltaNet: Qwen3-Next; lightning: MiniMax); 0 -> attention's
    linear_key_heads: int = 0
    linear_value_heads: int = 0
    linear_key_dim: int = 0
    linear_value_dim: int = 0
    linear_conv: int = 0  # Gated DeltaNet's short-conv width
    # defaults for the attention kind and its settings
    default_attention: str = "full"
    default_window: int = 0
    default_chunk: int = 0
    default_ssm_variant: str = "mamba1"
    default_linear_variant: str = "plain"
    #: the model's own layer stack (None: every layer runs `default_attention`, with
    #: `first_dense_layers` dense FFNs before the MoE ones)
    layers: tuple | None = None
    param_count_published: float = 0.0  # published total, for tests and reports
    param_count_published_source: str = ""
    active_params_published: float = 0.0

    @property
    def d_inner(self) -> int:
        return self.ssm_expand * self.d_model

    @property
    def ssm_dt_rank(self) -> int:
        return self.dt_rank or math.ceil(self.d_model / 16)

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    def stack(self) -> tuple:
        """The model's own layers as `LayerSpec`s (settings resolved for this model)."""
        from simkit.stack import LayerSpec

        if self.layers is not None:
            return tuple(s.resolved(self) for s in self.layers)
        ffn = "moe" if self.is_moe else ("dense" if self.ffn_dim else "none")
        spec = LayerSpec(kind=self.default_attention, ffn=ffn).resolved(self)
        dense = replace(spec, ffn="dense")
        k = self.first_dense_layers if self.is_moe else 0
        return (dense,) * k + (spec,) * (self.n_layers - k)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_LLAMA2_SRC = "huggingface.co/meta-llama/{}/config.json"

CATALOG: dict[str, ModelConfig] = {
    "llama-2-7b": ModelConfig(
        name="llama-2-7b", source=_LLAMA2_SRC.format("Llama-2-7b-hf"),
        n_layers=32, d_model=4096, n_heads=32, n_kv_heads=32, head_dim=128, vocab_size=32000,
        max_context=4096, ffn_dim=11008,
        param_count_published=6_738_415_616,
        param_count_published_source="PEFT print_trainable_parameters on llama-7b and keras-hub "
        "llama_7b_en preset: 6,738,415,616"),
    "llama-2-13b": ModelConfig(
        name="llama-2-13b", source=_LLAMA2_SRC.format("Llama-2-13b-hf"),
        n_layers=40, d_model=5120, n_heads=40, n_kv_heads=40, head_dim=128, vocab_size=32000,
        max_context=4096, ffn_dim=13824,
        param_count_published=13e9, param_count_published_source="Touvron et al. 2023, "
        "'Llama 2', arXiv:2307.09288, Table 1 (13B)"),
    "llama-2-70b": ModelConfig(
        name="llama-2-70b", source=_LLAMA2_SRC.format("Llama-2-70b-hf"),
        n_layers=80, d_model=8192, n_heads=64, n_kv_heads=8, head_dim=128, vocab_size=32000,
        max_context=4096, ffn_dim=28672,
        param_count_published=70e9, param_count_published_source="Touvron et al. 2023, "
        "arXiv:2307.09288, Table 1 (70B)"),
    "llama-3-8b": ModelConfig(
        name="llama-3-8b", source="huggingface.co/meta-llama/Meta-Llama-3-8B/config.json",
        n_layers=32, d_model=4096, n_heads=32, n_kv_heads=8, head_dim=128, vocab_size=128256,
        max_context=8192, ffn_dim=14336,
        param_count_published=8e9, param_count_published_source="Meta Llama 3 model card (8B)"),
    "llama-3-70b": ModelConfig(
        name="llama-3-70b", source="huggingface.co/meta-llama/Meta-Llama-3-70B/config.json",
        n_layers=80, d_model=8192, n_heads=64, n_kv_heads=8, head_dim=128, vocab_size=128256,
        max_context=8192, ffn_dim=28672,
        param_count_published=70e9, param_count_published_source="Meta Llama 3 model card (70B)"),
    "mistral-7b": ModelConfig(
        name="mistral-7b", source="Jiang et al. 2023, 'Mistral 7B', arXiv:2310.06825, Table 1 "
        "(dim 4096, 32 layers, 32 heads, 8 KV heads, hidden 14336, window 4096, context 8192)",
        n_layers=32, d_model=4096, n_heads=32, n_kv_heads=8, head_dim=128, vocab_size=32000,
        max_context=8192, ffn_dim=14336, default_attention="window", default_window=4096,
        param_count_published=7.3e9, param_count_published_source="Jiang et al. 2023, "
        "arXiv:2310.06825, abstract ('7-billion-parameter'); Mistral AI announcement: 7.3B"),
    "mixtral-8x7b": ModelConfig(
        name="mixtral-8x7b", source="Jiang et al. 2024, 'Mixtral of Experts', arXiv:2401.04088 "
        "Table 1; HF mistralai/Mixtral-8x7B-v0.1 config.json",
        n_layers=32, d_model=4096, n_heads=32, n_kv_heads=8, head_dim=128, vocab_size=32000,
        max_context=32768, ffn_dim=14336, n_experts=8, experts_per_token=2,
        param_count_published=47e9, active_params_published=13e9,
        param_count_published_source="arXiv:2401.04088 abstract: 47B parameters, 13B active"),
    "opt-13b": ModelConfig(
        name="opt-13b", source="cli99/llm-analysis model_configs/facebook_opt-13b.json (HF "
        "facebook/opt-13b config); vLLM paper arXiv:2309.06180 Sec. 3",
        n_layers=40, d_model=5120, n_heads=40, n_kv_heads=40, head_dim=128, vocab_size=50272,
        max_context=2048, ffn_dim=20480, ffn_gated=False, norm="layer", attn_bias=True,
        ffn_bias=True, tie_embeddings=True, learned_positions=2048 + 2,  # OPT offsets by 2
        param_count_published=13e9, param_count_published_source="Zhang et al. 2022, 'OPT', "
        "arXiv:2205.01068, Table 1 (13B)"),
    "gpt-3-175b": ModelConfig(
        name="gpt-3-175b", source="Brown et al. 2020, arXiv:2005.14165, Table 2.1 (96 layers, "
        "d_model 12288, 96 heads of 128, n_ctx 2048, d_ff = 4 d_model); vocab = GPT-2 BPE 50257",
        n_layers=96, d_model=12288, n_heads=96, n_kv_heads=96, head_dim=128, vocab_size=50257,
        max_context=2048, ffn_dim=49152, ffn_gated=False, norm="layer", attn_bias=True,
        ffn_bias=True, tie_embeddings=True, learned_positions=2048,
        param_count_published=175e9, param_count_published_source="arXiv:2005.14165 "
        "Table 2.1 (175.0B)"),
    "falcon-7b": ModelConfig(
        name="falcon-7b", source="huggingface.co/tiiuae/falcon-7b/config.json (hidden_size "
        "4544, n_head 71, n_layer 32, multi_query true, parallel_attn true, bias false, "
        "vocab_size 65024); max context 2048 (Almazrouei et al. 2023, arXiv:2311.16867)",
        n_layers=32, d_model=4544, n_heads=71, n_kv_heads=1, head_dim=64, vocab_size=65024,
        max_context=2048, ffn_dim=4 * 4544, ffn_gated=False, norm="layer", norms_per_layer=1,
        tie_embeddings=True,
        param_count_published=7e9, param_count_published_source="arXiv:2311.16867 (Falcon-7B)"),
    "deepseek-67b": ModelConfig(
        name="deepseek-67b", source="HF deepseek-ai/deepseek-llm-67b-base config.json; DeepSeek "
        "LLM arXiv:2401.02954 Table 2 (95 layers, 8192, 64 heads, 8 KV heads)",
        n_layers=95, d_model=8192, n_heads=64, n_kv_heads=8, head_dim=128, vocab_size=102400,
        max_context=4096, ffn_dim=22016,
        param_count_published=67e9, param_count_published_source="arXiv:2401.02954 (67B)"),
    "deepseek-v2": ModelConfig(
        name="deepseek-v2", source="DeepSeek-AI 2024, arXiv:2405.04434 Sec. 3.1.2 (60 layers, "
        "hidden 5120, 128 heads of 128, d_c 512, d'_c 1536, rope 64; 2 shared + 160 routed "
        "experts of 1536, top-6, first layer dense); HF deepseek-ai/DeepSeek-V2 config.json "
        "(vocab 102400, intermediate 12288)",
        n_layers=60, d_model=5120, n_heads=128, n_kv_heads=128, head_dim=128,
        vocab_size=102400, max_context=131072, ffn_dim=12288, n_experts=160,
        experts_per_token=6, n_shared_experts=2, moe_ffn_dim=1536, first_dense_layers=1,
        q_lora_rank=1536, kv_lora_rank=512, qk_rope_head_dim=64, v_head_dim=128,
        default_attention="mla",
        param_count_published=236e9, active_params_published=21e9,
        param_count_published_source="arXiv:2405.04434 abstract: 236B total, 21B activated"),
    # Splitwise's measured model (simkit/data/measurements/splitwise.csv). ALiBi positions (no
    # parameters); its embedding LayerNorm (2 x 14336 weights) has no field here, so the
    # count is 28,672 (1.6e-7) under the published 176,247,271,424.
    "bloom-176b": ModelConfig(
        name="bloom-176b", source="huggingface.co/bigscience/bloom config.json (n_layer 70, "
        "hidden_size 14336, n_head 112, vocab_size 250880, tied embeddings, ALiBi) and model "
        "card (4 x hidden FFN with GELU, LayerNorm, biases, sequence length 2048)",
        n_layers=70, d_model=14336, n_heads=112, n_kv_heads=112, head_dim=128,
        vocab_size=250880, max_context=2048, ffn_dim=4 * 14336, ffn_gated=False, norm="layer",
        attn_bias=True, ffn_bias=True, tie_embeddings=True,
        param_count_published=176_247_271_424, param_count_published_source="huggingface.co/"
        "bigscience/bloom model card: 176,247,271,424 parameters"),
    "mamba-2.8b": ModelConfig(
        name="mamba-2.8b", source="state-spaces/mamba README (64 layers, d_model 2560) and "
        "mamba_ssm config_mamba.py / mamba_simple.py (vocab 50277 padded to 50280, d_state 16, "
        "d_conv 4, expand 2, dt_rank = ceil(d_model/16) = 160, tied embeddings)",
        n_layers=64, d_model=2560, n_heads=20, n_kv_heads=20, head_dim=128, vocab_size=50280,
        max_context=1_000_000, ffn_dim=0, norm="rms", norms_per_layer=1, tie_embeddings=True,
        d_state=16, d_conv=4, ssm_expand=2, dt_rank=160, default_attention="ssm",
        param_count_published=2.8e9, param_count_published_source="Gu & Dao 2023, 'Mamba', "
        "arXiv:2312.00752 (Mamba-2.8B)"),
}


def model_names() -> list[str]:
    return list(CATALOG)


def load_model(name_or_path: str | Path) -> ModelConfig:
    """A catalog model by name, or a Hugging Face `config.json` by path."""
    key = str(name_or_path)
    if key in CATALOG:
        return CATALOG[key]
    p = Path(key)
    if p.suffix == ".json" or p.exists():
        if not p.is_file():
            raise SimkitError(f"model: no such config file {key!r}")
        try:
            data = json.loads(p.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise SimkitError(f"model: {key}: not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise SimkitError(f"model: {key}: a config.json must hold a JSON object")
        return from_hf_config(data, name=p.parent.name or p.stem, source=str(p))
    raise SimkitError(f"model: unknown model {key!r}; choose one of {', '.join(CATALOG)} "
                      "or give a path to a Hugging Face config.json")


def _get(d: Mapping[str, Any], where: str, *keys: str, default: Any = None) -> Any:
    for k in keys:
        if k in d and d[k] is not None:
            v = d[k]
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise SimkitError(f"{where}: {k} must be a number, got {v!r}")
            if v <= 0 and not k.startswith(("first_k", "n_shared", "num_local")):
                raise SimkitError(f"{where}: {k} must be > 0, got {v!r}")
            return v
    if default is None:
        raise SimkitError(f"{where}: missing {' or '.join(keys)}")
    return default


def from_hf_config(cfg: Mapping[str, Any], name: str = "custom",
                   source: str = "config.json") -> ModelConfig:
    """Read a Hugging Face config (llama, mistral, mixtral, opt, falcon, gpt2, gpt_neox,
    deepseek_v2, mamba). Unknown `model_type`s that use llama-style keys load as llama."""
    mt = str(cfg.get("model_type", "llama")).lower()
    w = f"model: {source}"
    g = lambda *k, default=None: _get(cfg, w, *k, default=default)  # noqa: E731
    if mt == "mamba":
        d = int(g("hidden_size", "d_model"))
        vocab = int(g("vocab_size"))
        pad = int(cfg.get("pad_vocab_size_multiple", 8) or 1)
        vocab = -(-vocab // pad) * pad
        return ModelConfig(
            name=name, source=source, n_layers=int(g("num_hidden_layers", "n_layer")),
            d_model=d, n_heads=max(1, d // 128), n_kv_heads=max(1, d // 128), head_dim=128,
            vocab_size=vocab, max_context=1_000_000, ffn_dim=0, norms_per_layer=1,
            tie_embeddings=bool(cfg.get("tie_word_embeddings", cfg.get("tie_embeddings", True))),
            d_state=int(g("state_size", "d_state", default=16)),
            d_conv=int(g("conv_kernel", "d_conv", default=4)),
            ssm_expand=int(g("expand", default=2)),
            dt_rank=int(cfg["time_step_rank"]) if isinstance(cfg.get("time_step_rank"), int)
            else math.ceil(d / 16),
            default_attention="ssm")
    if mt in ("gpt2", "gpt_neox", "gptj", "opt", "falcon", "refinedweb", "refinedwebmodel"):
        d = int(g("hidden_size", "n_embd", "d_model"))
        L = int(g("num_hidden_layers", "n_layer", "num_layers"))
        H = int(g("num_attention_heads", "n_head"))
        if mt in ("falcon", "refinedweb", "refinedwebmodel"):
            if cfg.get("new_decoder_architecture"):
                kv = int(g("num_kv_heads", "n_head_kv", default=H))
            elif cfg.get("multi_query", True):
                kv = 1  # Falcon-7B: multi_query means a single shared K/V head
            else:
                kv = H
            parallel = bool(cfg.get("parallel_attn", True))
            return ModelConfig(
                name=name, source=source, n_layers=L, d_model=d, n_heads=H, n_kv_heads=kv,
                head_dim=d // H, vocab_size=int(g("vocab_size")),
                max_context=int(g("max_position_embeddings", default=2048)),
                ffn_dim=int(g("ffn_hidden_size", default=4 * d)), ffn_gated=False,
                norm="layer", norms_per_layer=1 if parallel else 2,
                attn_bias=bool(cfg.get("bias", False)), ffn_bias=bool(cfg.get("bias", False)),
                tie_embeddings=bool(cfg.get("tie_word_embeddings", True)))
        ffn = int(g("ffn_dim", "n_inner", "intermediate_size", default=4 * d))
        positions = 0
        if mt in ("gpt2", "opt"):
            positions = int(g("max_position_embeddings", "n_positions", default=2048))
            positions += 2 if mt == "opt" else 0
        return ModelConfig(
            name=name, source=source, n_layers=L, d_model=d, n_heads=H, n_kv_heads=H,
            head_dim=d // H, vocab_size=int(g("vocab_size")),
            max_context=int(g("max_position_embeddings", "n_positions", "n_ctx", default=2048)),
            ffn_dim=ffn, ffn_gated=False, norm="layer", attn_bias=True, ffn_bias=True,
            tie_embeddings=bool(cfg.get("tie_word_embeddings", mt != "gpt_neox")),
            learned_positions=positions)
    # llama family (llama, mistral, mixtral, qwen2-like, deepseek, deepseek_v2)
    d = int(g("hidden_size"))
    H = int(g("num_attention_heads"))
    kv = int(g("num_key_value_heads", default=H))
    head_dim = int(g("head_dim", default=d // H))
    sliding = cfg.get("sliding_window")
    window = int(sliding) if isinstance(sliding, int) and not isinstance(sliding, bool) and \
        sliding > 0 and cfg.get("use_sliding_window", True) else 0
    kw: dict[str, Any] = dict(
        name=name, source=source, n_layers=int(g("num_hidden_layers")), d_model=d,
        n_heads=H, n_kv_heads=kv, head_dim=head_dim, vocab_size=int(g("vocab_size")),
        max_context=int(g("max_position_embeddings", default=4096)),
        ffn_dim=int(g("intermediate_size")),
        tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        default_attention="window" if window else "full", default_window=window)
    if "num_local_experts" in cfg:  # mixtral
        kw.update(n_experts=int(g("num_local_experts")),
                  experts_per_token=int(g("num_experts_per_tok", default=2)))
    if mt == "deepseek_v2" or "kv_lora_rank" in cfg:
        kw.update(
            kv_lora_rank=int(g("kv_lora_rank")), q_lora_rank=int(cfg.get("q_lora_rank") or 0),
            qk_rope_head_dim=int(g("qk_rope_head_dim")),
            head_dim=int(g("qk_nope_head_dim", default=head_dim)),
            v_head_dim=int(g("v_head_dim", default=head_dim)), n_kv_heads=H,
            default_attention="mla")
        if cfg.get("n_routed_experts"):
            kw.update(n_experts=int(g("n_routed_experts")),
                      experts_per_token=int(g("num_experts_per_tok")),
                      n_shared_experts=int(cfg.get("n_shared_experts") or 0),
                      moe_ffn_dim=int(g("moe_intermediate_size")),
                      first_dense_layers=int(cfg.get("first_k_dense_replace") or 0))
    return ModelConfig(**kw)


def with_overrides(model: ModelConfig, **changes: Any) -> ModelConfig:
    return replace(model, **changes)
