"""Model configurations: `ModelConfig`, the catalog and `load_model`.

Every entry carries its source. The original thirteen follow the Hugging Face configs (the
authority for Llama-2 shapes) or the paper named beside them; the recent entries are their
published `config.json` (architecture keys, source beside each) read by the Hugging Face
importer (`simkit.catalog.hf`), so one place knows each family's layer layout. Traps:
- Falcon-7B's `multi_query: true` means ONE key/value head (71 query heads of 64).
- Mistral-7B's default attention is its 4096-token sliding window (rolling buffer).
- DeepSeek-V2 uses multi-head latent attention (MLA) and a DeepSeekMoE FFN whose first layer
  is dense.
- Mamba has no attention: its mixer is a selective SSM (conv + state); `n_heads` is only
  used when a what-if swaps attention in, and is then d_model / 128.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from simkit.catalog.hf import from_hf_config, load_hf_file
from simkit.errors import SimkitError

__all__ = ["CATALOG", "ModelConfig", "from_hf_config", "load_model", "model_names",
           "with_overrides"]


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
    # weights each invocation of a shared block owns (Zamba2, arXiv:2411.15242; transformers
    # zamba2/modeling_zamba2.py): a d x d projection of the block's output
    # (`Zamba2HybridLayer.linear`) and LoRA adapters of rank `adapter_rank` on the MLP input
    # (`use_shared_mlp_adapter`) and on q, k, v (`use_shared_attention_adapter`)
    block_out_proj: bool = False
    block_adapter_rank: int = 0
    block_mlp_adapters: bool = False
    block_attn_adapters: bool = False
    # defaults for the attention kind and its settings
    default_attention: str = "full"
    default_window: int = 0
    default_chunk: int = 0
    default_ssm_variant: str = "mamba1"
    default_linear_variant: str = "plain"
    #: the model's own layer stack (None: every layer runs `default_attention`, with
    #: `first_dense_layers` dense FFNs before the MoE ones)
    layers: tuple | None = None
    #: the dtype the published checkpoint stores its weights in (`simkit.catalog.hf_quant`;
    #: None: a quantization simkit does not read), the default of `model.weight_dtype`
    weight_dtype: str | None = "bf16"
    expert_weight_dtype: str | None = None  # its routed experts' dtype (None: the same)
    weight_dtype_note: str = "16-bit checkpoint"
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



_LAYER = ["sliding_attention", "full_attention"]  # gpt-oss's layer_types, as published
#: gpt-oss's published quantization: MX FP4 MoE experts, everything else bf16
_MXFP4_EXPERTS = {"modules_to_not_convert": ["model.layers.*.self_attn",
                                             "model.layers.*.mlp.router", "model.embed_tokens",
                                             "lm_head"], "quant_method": "mxfp4"}


def _from_config(name: str, source: str, config: Mapping[str, Any], *, total: float,
                 total_source: str, active: float = 0.0) -> ModelConfig:
    """A catalog entry read from its published config by the Hugging Face importer."""
    m = from_hf_config(config, name=name, source=source)
    return replace(m, param_count_published=total, param_count_published_source=total_source,
                   active_params_published=active)


#: recent entries: (name, config source, the config's architecture keys, published counts).
#: Counts and their counting conventions: tests/data/published_models.json.
_PUBLISHED_CONFIGS: tuple = (
    ("llama-3.1-8b", "huggingface.co/meta-llama/Llama-3.1-8B/config.json",
     {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
      "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
      "vocab_size": 128256, "max_position_embeddings": 131072, "attention_bias": False,
      "mlp_bias": False, "tie_word_embeddings": False},
     dict(total=8e9, total_source="Llama 3 Herd of Models, arXiv:2407.21783, Table 3 (8B); "
          "model card")),
    ("llama-3.1-70b", "huggingface.co/meta-llama/Llama-3.1-70B/config.json",
     {"model_type": "llama", "hidden_size": 8192, "intermediate_size": 28672,
      "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8,
      "vocab_size": 128256, "max_position_embeddings": 131072, "attention_bias": False,
      "mlp_bias": False, "tie_word_embeddings": False},
     dict(total=70e9, total_source="arXiv:2407.21783, Table 3 (70B); model card")),
    ("llama-3.1-405b", "huggingface.co/meta-llama/Llama-3.1-405B/config.json",
     {"model_type": "llama", "hidden_size": 16384, "intermediate_size": 53248,
      "num_hidden_layers": 126, "num_attention_heads": 128, "num_key_value_heads": 8,
      "vocab_size": 128256, "max_position_embeddings": 131072, "attention_bias": False,
      "mlp_bias": False, "tie_word_embeddings": False},
     dict(total=405e9, total_source="arXiv:2407.21783, Table 3 (405B); model card")),
    ("qwen2.5-7b", "huggingface.co/Qwen/Qwen2.5-7B-Instruct/config.json",
     {"model_type": "qwen2", "hidden_size": 3584, "intermediate_size": 18944,
      "num_hidden_layers": 28, "num_attention_heads": 28, "num_key_value_heads": 4,
      "vocab_size": 152064, "max_position_embeddings": 32768, "use_sliding_window": False,
      "sliding_window": None, "max_window_layers": 28, "tie_word_embeddings": False},
     dict(total=7.61e9, total_source="huggingface.co/Qwen/Qwen2.5-7B-Instruct model card: "
          "'Number of Parameters: 7.61B'")),
    ("qwen3-32b", "huggingface.co/Qwen/Qwen3-32B/config.json",
     {"model_type": "qwen3", "hidden_size": 5120, "intermediate_size": 25600,
      "num_hidden_layers": 64, "num_attention_heads": 64, "num_key_value_heads": 8,
      "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 40960,
      "attention_bias": False, "use_sliding_window": False, "sliding_window": None,
      "max_window_layers": 64, "tie_word_embeddings": False},
     dict(total=32.8e9, total_source="huggingface.co/Qwen/Qwen3-32B model card: 'Number of "
          "Parameters: 32.8B'")),
    ("qwen3-30b-a3b", "huggingface.co/Qwen/Qwen3-30B-A3B/config.json",
     {"model_type": "qwen3_moe", "hidden_size": 2048, "intermediate_size": 6144,
      "moe_intermediate_size": 768, "num_hidden_layers": 48, "num_attention_heads": 32,
      "num_key_value_heads": 4, "head_dim": 128, "num_experts": 128,
      "num_experts_per_tok": 8, "decoder_sparse_step": 1, "mlp_only_layers": [],
      "vocab_size": 151936, "max_position_embeddings": 40960, "attention_bias": False,
      "use_sliding_window": False, "sliding_window": None, "max_window_layers": 48,
      "tie_word_embeddings": False},
     dict(total=30.5e9, active=3.3e9, total_source="huggingface.co/Qwen/Qwen3-30B-A3B model "
          "card: '30.5B in total and 3.3B activated'")),
    ("gpt-oss-20b", "huggingface.co/openai/gpt-oss-20b/config.json",
     {"model_type": "gpt_oss", "hidden_size": 2880, "intermediate_size": 2880,
      "num_hidden_layers": 24, "num_attention_heads": 64, "num_key_value_heads": 8,
      "head_dim": 64, "num_local_experts": 32, "num_experts_per_tok": 4,
      "experts_per_token": 4, "layer_types": _LAYER * 12, "sliding_window": 128,
      "vocab_size": 201088, "max_position_embeddings": 131072, "attention_bias": True,
      "tie_word_embeddings": False, "quantization_config": _MXFP4_EXPERTS},
     dict(total=20.91e9, active=3.61e9, total_source="gpt-oss model card (OpenAI 2025, "
          "arXiv:2508.10925) Table 1: 20.91B total, 3.61B active")),
    ("gpt-oss-120b", "huggingface.co/openai/gpt-oss-120b/config.json",
     {"model_type": "gpt_oss", "hidden_size": 2880, "intermediate_size": 2880,
      "num_hidden_layers": 36, "num_attention_heads": 64, "num_key_value_heads": 8,
      "head_dim": 64, "num_local_experts": 128, "num_experts_per_tok": 4,
      "experts_per_token": 4, "layer_types": _LAYER * 18, "sliding_window": 128,
      "vocab_size": 201088, "max_position_embeddings": 131072, "attention_bias": True,
      "tie_word_embeddings": False, "quantization_config": _MXFP4_EXPERTS},
     dict(total=116.83e9, active=5.13e9, total_source="arXiv:2508.10925 Table 1: 116.83B "
          "total, 5.13B active")),
    ("gemma-3-27b", "huggingface.co/google/gemma-3-27b-it/config.json (text_config; the "
     "omitted keys take Gemma3TextConfig defaults)",
     {"model_type": "gemma3", "text_config": {
         "model_type": "gemma3_text", "hidden_size": 5376, "intermediate_size": 21504,
         "num_hidden_layers": 62, "num_attention_heads": 32, "num_key_value_heads": 16,
         "head_dim": 128, "sliding_window": 1024}},
     dict(total=27e9, total_source="Gemma 3 Technical Report, arXiv:2503.19786, Table 1 "
          "(27B, including the 417M SigLIP vision encoder)")),
    ("deepseek-v3", "huggingface.co/deepseek-ai/DeepSeek-V3/config.json",
     {"model_type": "deepseek_v3", "hidden_size": 7168, "intermediate_size": 18432,
      "moe_intermediate_size": 2048, "num_hidden_layers": 61, "num_attention_heads": 128,
      "num_key_value_heads": 128, "kv_lora_rank": 512, "q_lora_rank": 1536,
      "qk_nope_head_dim": 128, "qk_rope_head_dim": 64, "v_head_dim": 128,
      "n_routed_experts": 256, "n_shared_experts": 1, "num_experts_per_tok": 8,
      "first_k_dense_replace": 3, "moe_layer_freq": 1, "vocab_size": 129280,
      "max_position_embeddings": 163840, "attention_bias": False,
      "tie_word_embeddings": False,
      "quantization_config": {"activation_scheme": "dynamic", "fmt": "e4m3",
                              "quant_method": "fp8", "weight_block_size": [128, 128]}},
     dict(total=671e9, active=37e9, total_source="DeepSeek-V3 Technical Report, "
          "arXiv:2412.19437, abstract: 671B total, 37B activated (without the 14B MTP "
          "module)")),
    ("jamba-1.5-mini", "huggingface.co/ai21labs/AI21-Jamba-1.5-Mini/config.json",
     {"model_type": "jamba", "hidden_size": 4096, "intermediate_size": 14336,
      "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
      "attn_layer_period": 8, "attn_layer_offset": 4, "expert_layer_period": 2,
      "expert_layer_offset": 1, "num_experts": 16, "num_experts_per_tok": 2,
      "mamba_d_state": 16, "mamba_d_conv": 4, "mamba_expand": 2, "mamba_dt_rank": 256,
      "mamba_proj_bias": False, "sliding_window": None, "vocab_size": 65536,
      "max_position_embeddings": 262144, "tie_word_embeddings": False},
     dict(total=52e9, active=12e9, total_source="Jamba-1.5, arXiv:2408.12570, abstract and "
          "model card: 12B active, 52B total")),
    ("qwen3-next-80b-a3b", "huggingface.co/Qwen/Qwen3-Next-80B-A3B-Thinking/config.json "
     "(the -Instruct release has the same architecture keys)",
     {"model_type": "qwen3_next", "hidden_size": 2048, "intermediate_size": 5120,
      "moe_intermediate_size": 512, "shared_expert_intermediate_size": 512,
      "num_hidden_layers": 48, "num_attention_heads": 16, "num_key_value_heads": 2,
      "head_dim": 256, "num_experts": 512, "num_experts_per_tok": 10,
      "decoder_sparse_step": 1, "mlp_only_layers": [], "full_attention_interval": 4,
      "linear_num_key_heads": 16, "linear_num_value_heads": 32, "linear_key_head_dim": 128,
      "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4, "use_sliding_window": False,
      "vocab_size": 151936, "max_position_embeddings": 262144,
      "tie_word_embeddings": False},
     dict(total=80e9, active=3e9, total_source="huggingface.co/Qwen/Qwen3-Next-80B-A3B-"
          "Instruct model card: '80B in total and 3B activated'")),
    ("mamba-2-2.7b", "huggingface.co/state-spaces/mamba2-2.7b/config.json (mamba_ssm "
     "format, no model_type; Mamba2 module defaults for absent keys)",
     {"d_model": 2560, "d_intermediate": 0, "n_layer": 64, "vocab_size": 50277,
      "ssm_cfg": {"layer": "Mamba2"}, "attn_layer_idx": [], "rms_norm": True,
      "pad_vocab_size_multiple": 16, "tie_embeddings": True},
     dict(total=2.7e9, total_source="Dao & Gu 2024, 'Transformers are SSMs' (Mamba-2), "
          "arXiv:2405.21060, model size 2.7B; checkpoint name")),
    ("llama-4-scout", "huggingface.co/meta-llama/Llama-4-Scout-17B-16E-Instruct/config.json "
     "(text_config; omitted per-layer keys take Llama4TextConfig defaults)",
     {"model_type": "llama4", "text_config": {
         "model_type": "llama4_text", "hidden_size": 5120, "intermediate_size": 8192,
         "intermediate_size_mlp": 16384, "num_hidden_layers": 48, "num_attention_heads": 40,
         "num_key_value_heads": 8, "head_dim": 128, "num_local_experts": 16,
         "num_experts_per_tok": 1, "interleave_moe_layer_step": 1,
         "attention_chunk_size": 8192, "use_qk_norm": True, "attention_bias": False,
         "vocab_size": 202048, "max_position_embeddings": 10485760}},
     dict(total=109e9, active=17e9, total_source="huggingface.co/meta-llama/Llama-4-Scout-"
          "17B-16E-Instruct model card: 17B activated, 109B total (with the vision "
          "encoder)")),
)

CATALOG.update({name: _from_config(name, src, cfg, **pub)
                for name, src, cfg, pub in _PUBLISHED_CONFIGS})


def model_names() -> list[str]:
    return list(CATALOG)


def load_model(name_or_path: str | Path) -> ModelConfig:
    """A catalog model by name, or a Hugging Face `config.json` by path."""
    key = str(name_or_path)
    if key in CATALOG:
        return CATALOG[key]
    p = Path(key)
    if p.suffix == ".json" or p.exists():
        return load_hf_file(p)
    raise SimkitError(f"model: unknown model {key!r}; choose one of {', '.join(CATALOG)} "
                      "or give a path to a Hugging Face config.json")


def with_overrides(model: ModelConfig, **changes: Any) -> ModelConfig:
    return replace(model, **changes)
