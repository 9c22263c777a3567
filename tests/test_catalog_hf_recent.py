"""Model types read after the layer-stack tests' set (`simkit.catalog.hf_attention.qwen3_5`),
against verbatim published configs (tests/data/hf_configs_recent): the stack their own
`layer_types` describe, their MoE settings, and parameter counts against the checkpoints'
names. Expected values come from the configs' keys and the names, never from simkit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simkit.catalog import load_model
from simkit.costs import ArchSpec, model_costs

RECENT = Path(__file__).resolve().parent / "data" / "hf_configs_recent"


def _text(name: str) -> dict:
    return json.loads((RECENT / name).read_text())["text_config"]


@pytest.mark.parametrize("name", ["Qwen__Qwen3.5-27B.json", "Qwen__Qwen3.5-35B-A3B.json",
                                  "Qwen__Qwen3.5-397B-A17B.json"])
def test_qwen3_5_layers_follow_their_layer_types(name):
    """linear_attention -> Gated DeltaNet, full_attention -> full (Qwen3-Next's layout)."""
    kinds = {"linear_attention": "linear", "full_attention": "full"}
    text = _text(name)
    m = load_model(RECENT / name)
    assert [s.kind for s in m.stack()] == [kinds[t] for t in text["layer_types"]]
    assert (m.n_experts, m.experts_per_token) == (text.get("num_experts", 0),
                                                  text.get("num_experts_per_tok", 0))
    assert m.shared_expert_ffn_dim == text.get("shared_expert_intermediate_size", 0)
    assert m.attn_output_gate and m.qk_norm


@pytest.mark.parametrize("name, total, active", [
    ("Qwen__Qwen3.5-27B.json", 27e9, 27e9),
    ("Qwen__Qwen3.5-35B-A3B.json", 35e9, 3e9),
    ("Qwen__Qwen3.5-397B-A17B.json", 397e9, 17e9),
])
def test_qwen3_5_parameters_match_their_names(name, total, active):
    """The checkpoints' names give total and active parameters in billions (rounded, the
    vision encoder included); the language model alone is within 2% of the total and 16% of
    the active figure (Qwen3.5-35B-A3B: 3.46B active, named A3B)."""
    m = load_model(RECENT / name)
    mc = model_costs(m, ArchSpec.for_model(m))
    assert float(mc.numeric(mc.params)) == pytest.approx(total, rel=0.02)
    assert float(mc.numeric(mc.active_params)) == pytest.approx(active, rel=0.16)


def test_qwen3_5_moe_without_a_dense_width_refuses_a_dense_layer(run_cli, tmp_path):
    cfg = json.loads((RECENT / "Qwen__Qwen3.5-35B-A3B.json").read_text())
    cfg["text_config"]["mlp_only_layers"] = [0]  # a dense layer, and no intermediate_size
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    r = run_cli("cost", tmp_path / "config.json")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1
    assert "text_config.intermediate_size" in r.err


def test_kimi_k2_5_is_a_deepseek_v3_with_int4_routed_experts():
    """moonshotai/Kimi-K2.5: its text_config names DeepseekV3ForCausalLM (61 layers, the first
    dense, 384 experts, 8 per token, 1 shared, 64 MLA heads); its compressed-tensors
    quantization (in text_config) is 4-bit integer weights and ignores self_attn, the shared
    experts, the dense MLPs and lm_head: the routed experts in int4, the rest bf16."""
    m = load_model(RECENT / "moonshotai__Kimi-K2.5.json")
    assert (m.n_layers, m.first_dense_layers, m.n_experts, m.experts_per_token,
            m.n_shared_experts, m.n_heads) == (61, 1, 384, 8, 1, 64)
    assert (m.weight_dtype, m.expert_weight_dtype) == ("bf16", "int4")
    mc = model_costs(m, ArchSpec.for_model(m))
    # every routed expert: 60 layers x 384 x 3 x 7168 x 2048 elements at half a byte
    experts = 60 * 384 * 3 * 7168 * 2048
    rest = float(mc.numeric(mc.params)) - experts
    assert float(mc.numeric(mc.weight_bytes)) == pytest.approx(experts / 2 + rest * 2,
                                                               rel=1e-9)
