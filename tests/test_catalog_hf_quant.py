"""A checkpoint's own weight dtype (`simkit.catalog.hf_quant`): read from the real configs'
`quantization_config`, the default of every cost, and one line (exit 2) when a config
quantizes its weights in a way simkit does not read and the user gives no dtype.

Expected dtypes are written from each config's own keys; expected bytes from the published
parameter counts times the dtype's size, never from simkit's output.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from simkit.catalog import load_model
from simkit.catalog.hf import from_hf_config
from simkit.catalog.hf_quant import checkpoint_dtype, checkpoint_dtypes
from simkit.costs import ArchSpec, model_costs
from simkit.errors import SimkitError

CONFIGS = Path(__file__).resolve().parent / "data" / "hf_configs"
FILES = sorted(p.name for p in CONFIGS.glob("*.json"))
QUANT = Path(__file__).resolve().parent / "data" / "hf_configs_quantized"

#: the verbatim configs that carry a quantization_config (every other one is 16-bit):
#: DeepSeek-V3 `quant_method` "fp8" (e4m3, 128 x 128 blocks); gpt-oss "mxfp4" with
#: `modules_to_not_convert` = attention, router, embeddings and lm_head (bf16)
QUANTIZED = {"deepseek-ai__DeepSeek-V3.json": ("fp8", None),
             "openai__gpt-oss-20b.json": ("bf16", "mxfp4"),
             "openai__gpt-oss-120b.json": ("bf16", "mxfp4")}


@pytest.mark.parametrize("name", FILES)
def test_every_shipped_config_has_the_dtype_its_quantization_config_says(name):
    cfg = json.loads((CONFIGS / name).read_text())
    assert ("quantization_config" in cfg) == (name in QUANTIZED)
    model = from_hf_config(cfg, name=name)
    assert (model.weight_dtype, model.expert_weight_dtype) == QUANTIZED.get(name, ("bf16", None))


@pytest.mark.parametrize("catalog, file", [
    ("deepseek-v3", "deepseek-ai__DeepSeek-V3.json"),
    ("gpt-oss-20b", "openai__gpt-oss-20b.json"), ("gpt-oss-120b", "openai__gpt-oss-120b.json"),
    ("llama-3.1-8b", "meta-llama__Llama-3.1-8B.json")])
def test_catalog_entries_store_weights_as_their_published_checkpoints(catalog, file):
    a, b = load_model(catalog), load_model(CONFIGS / file)
    assert (a.weight_dtype, a.expert_weight_dtype) == (b.weight_dtype, b.expert_weight_dtype)


@pytest.mark.parametrize("q, dtype", [
    ({"quant_method": "fp8", "fmt": "e4m3"}, "fp8"),
    ({"quant_method": "fbgemm_fp8"}, "fp8"),
    ({"quant_method": "mxfp4"}, "mxfp4"),
    ({"quant_method": "awq", "bits": 4}, "int4"),
    ({"quant_method": "awq", "w_bit": 4}, "int4"),
    ({"quant_method": "gptq", "bits": 8}, "int8"),
    ({"quant_method": "auto-round", "bits": 4}, "int4"),
    ({"quant_method": "bitsandbytes", "load_in_4bit": True}, "int4"),
    ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "int8"),
    ({"quant_method": "compressed-tensors", "config_groups": {
        "group_0": {"weights": {"num_bits": 8, "type": "float"}, "targets": ["Linear"]}}},
     "fp8"),
    ({"quant_method": "compressed-tensors", "config_groups": {
        "group_0": {"weights": {"num_bits": 8, "type": "int"}}}}, "int8"),
    ({"quant_method": "compressed-tensors", "config_groups": {
        "group_0": {"weights": {"num_bits": 4, "type": "int"}}}}, "int4"),
    ({"quant_method": "modelopt", "quant_algo": "FP8"}, "fp8"),
    ({"quant_method": "modelopt", "quant_algo": "NVFP4"}, "nvfp4"),
    ({"quant_method": "compressed-tensors", "config_groups": {"group_0": {"weights": {
        "num_bits": 4, "type": "float", "group_size": 16}}}}, "nvfp4"),  # nvfp4-pack-quantized
    ({"quant_method": "compressed-tensors", "config_groups": {"group_0": {"weights": {
        "num_bits": 4, "type": "int", "group_size": 128}}}}, "int4"),
    ({"quant_algo": "FP8", "producer": {"name": "modelopt"}}, "fp8"),  # no quant_method
])
def test_each_quantization_method_reads_as_its_stored_dtype(q, dtype):
    assert checkpoint_dtype({"quantization_config": q})[0] == dtype


def test_mxfp4_that_leaves_attention_out_quantizes_the_routed_experts_only():
    gpt_oss = {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}
    assert checkpoint_dtypes({"quantization_config": gpt_oss})[:2] == ("bf16", "mxfp4")
    whole = {"quant_method": "mxfp4", "modules_to_not_convert": ["lm_head"]}
    assert checkpoint_dtypes({"quantization_config": whole})[:2] == ("mxfp4", None)
    assert checkpoint_dtypes({})[:2] == ("bf16", None)


def test_gpt_oss_weighs_its_experts_at_4_25_bits_and_the_rest_at_16():
    """gpt-oss-20b's config: 24 layers x 32 experts x (3 x 2880 x 2880 weights + 3 x 2880
    biases) routed-expert elements at 4.25 bits (OCP MX: 32 FP4 values + one 8-bit scale),
    the rest of its 20.91B (arXiv:2508.10925 Table 1) at 2 bytes."""
    experts = 24 * 32 * (3 * 2880 * 2880 + 3 * 2880)
    expected = experts * 4.25 / 8 + (20.91e9 - experts) * 2
    m = load_model("gpt-oss-20b")
    mc = model_costs(m, ArchSpec.for_model(m))
    assert float(mc.numeric(mc.weight_bytes)) == pytest.approx(expected, rel=2e-3)
    assert float(mc.numeric(mc.expert_bytes)) == pytest.approx(experts * 4.25 / 8, rel=1e-12)
    # a what-if dtype applies to every weight, experts included
    bf16 = model_costs(m, ArchSpec.for_model(m, weight_dtype="bf16"))
    assert float(bf16.numeric(bf16.weight_bytes)) == pytest.approx(20.91e9 * 2, rel=2e-3)


@pytest.mark.parametrize("q, named", [
    ({"quant_method": "hqq"}, "'hqq'"),
    ({"quant_method": "gptq", "bits": 3}, "bits 3"),
    ({"quant_method": "bitsandbytes"}, "neither load_in_4bit"),
    ({"quant_method": "compressed-tensors", "config_groups": {
        "a": {"weights": {"num_bits": 8, "type": "float"}},
        "b": {"weights": {"num_bits": 4, "type": "int"}}}}, "fp8, int4"),
    ({"quant_method": "modelopt", "quant_algo": "INT2"}, "'INT2'"),
    ("fp8", "not a table"),
])
def test_a_quantization_simkit_cannot_read_leaves_the_dtype_unknown_and_says_why(q, named):
    dtype, why = checkpoint_dtype({"quantization_config": q})
    assert dtype is None and named in why


def test_weights_default_to_the_checkpoint_and_an_explicit_dtype_overrides_it():
    ds = load_model("deepseek-v3")
    # DeepSeek-V3 Technical Report (arXiv:2412.19437): 671B parameters, 1 byte each in fp8
    fp8 = model_costs(ds, ArchSpec.for_model(ds))
    assert float(fp8.numeric(fp8.weight_bytes)) == pytest.approx(671e9, rel=0.01)
    bf16 = ArchSpec.for_model(ds, weight_dtype="bf16")
    assert bf16.weight_dtype == "bf16"
    assert float(model_costs(ds, bf16).numeric(model_costs(ds, bf16).weight_bytes)) == \
        pytest.approx(2 * 671e9, rel=0.01)


def test_an_unread_quantization_is_an_error_only_when_the_dtype_is_left_to_it():
    cfg = json.loads((CONFIGS / "meta-llama__Llama-3.1-8B.json").read_text())
    cfg["quantization_config"] = {"quant_method": "hqq", "nbits": 4}
    model = from_hf_config(cfg, name="llama-hqq")
    with pytest.raises(SimkitError, match=r"model\.weight_dtype: .*'hqq'"):
        ArchSpec.for_model(model)
    assert ArchSpec.for_model(model, weight_dtype="int4").weight_dtype == "int4"


def test_cost_of_deepseek_v3_on_eight_h200s_fits_in_its_published_fp8(run_cli):
    r = run_cli("cost", "deepseek-v3", "--hardware", "h200", "--gpus", "8", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    # 671e9 bytes of fp8 weights (arXiv:2412.19437: 671B parameters) against 8 x 143,771
    # MiB (nvidia-smi's H200 total) x 0.9 = 1.085e12 bytes
    assert out["weight_dtype"] == "fp8" and out["fits"]
    assert out["weight_bytes"] == pytest.approx(671e9, rel=0.01)
    r = run_cli("cost", "deepseek-v3", "--hardware", "h200", "--gpus", "8", "--json",
                "--weight-dtype", "bf16")
    assert not json.loads(r.out)["fits"]  # 1.34e12 bytes do not


def test_cli_with_an_unread_quantization_and_no_dtype_is_one_line_exit_2(run_cli, tmp_path):
    cfg = json.loads((CONFIGS / "meta-llama__Llama-3.1-8B.json").read_text())
    cfg["quantization_config"] = {"quant_method": "hqq"}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    r = run_cli("cost", path)
    assert r.code == 2 and r.out == ""
    assert len(r.err.strip().splitlines()) == 1 and "hqq" in r.err and "--weight-dtype" in r.err
    assert run_cli("cost", path, "--weight-dtype", "int4").code == 0


@pytest.mark.parametrize("path, dtype", [
    ("Qwen__Qwen3-32B-FP8.json", "fp8"),  # quant_method "fp8", 128 x 128 blocks
    ("Qwen__Qwen3-235B-A22B-FP8.json", "fp8"),  # fp8, gates and norms left out
    ("Qwen__Qwen3-32B-FP8-Static-PerTensor.json", "fp8"),  # ModelOpt: quant_algo "FP8"
    ("nvidia__Llama-3.1-70B-Instruct-FP8", "fp8"),  # hf_quant_config.json: quant_algo "FP8"
    # NVFP4, leaving out only the routers and lm_head
    ("nvidia__Qwen3-235B-A22B-NVFP4", "nvfp4"),
])
def test_published_quantized_checkpoints_read_as_their_dtype(path, dtype):
    model = load_model(QUANT / path)
    assert (model.weight_dtype, model.expert_weight_dtype) == (dtype, None)


def test_deepseek_nvfp4_keeps_attention_out_so_its_routed_experts_are_nvfp4():
    """nvidia/DeepSeek-V3.1-NVFP4's hf_quant_config.json: quant_algo NVFP4, group_size 16,
    `exclude_modules` naming every layer's self_attn projections and lm_head."""
    m = load_model(QUANT / "nvidia__DeepSeek-V3.1-NVFP4" / "config.json")
    assert (m.weight_dtype, m.expert_weight_dtype) == ("bf16", "nvfp4")


def test_nvfp4_weights_weigh_4_5_bits_beside_a_16_bit_vocabulary():
    """NVFP4 stores 16 E2M1 values with one E4M3 scale: 4 + 8 / 16 = 4.5 bits per weight
    (NVIDIA, 'Introducing NVFP4', 2025-06-24). Qwen3-235B-A22B-NVFP4 leaves out its 94
    routers (4096 x 128) and its untied LM head (151,936 x 4096), which stay bf16, and the
    token embedding (151,936 x 4096) is no linear layer: simkit holds the embedding and the
    LM head in 16 bits, every other weight at 4.5 bits, so only the routers' 49M weights are
    short (about 70 MB, 0.05%)."""
    m = load_model(QUANT / "nvidia__Qwen3-235B-A22B-NVFP4")
    nv, bf = model_costs(m, ArchSpec.for_model(m)), model_costs(m, ArchSpec(weight_dtype="bf16"))
    params = float(bf.numeric(bf.params))
    vocab = 2 * 151936 * 4096  # the embedding and the untied LM head
    assert float(nv.numeric(nv.weight_bytes)) == pytest.approx(
        (params - vocab) * 4.5 / 8 + vocab * 2, rel=1e-12)
    # every step reads the LM head, not the embedding table
    assert float(nv.numeric(nv.streamed_weight_bytes)) == pytest.approx(
        (params - vocab) * 4.5 / 8 + vocab / 2 * 2, rel=1e-12)
    left_out = 94 * 4096 * 128 * (2 - 4.5 / 8)
    assert left_out / float(nv.numeric(nv.weight_bytes)) < 0.001


def test_a_modelopt_checkpoint_without_its_quant_file_is_16_bit_and_with_a_bad_one_unknown(
        tmp_path, run_cli):
    cfg = (QUANT / "nvidia__Llama-3.1-70B-Instruct-FP8" / "config.json").read_text()
    (tmp_path / "config.json").write_text(cfg)
    assert load_model(tmp_path / "config.json").weight_dtype == "bf16"  # nothing beside it
    (tmp_path / "hf_quant_config.json").write_text('{"quantization": {"quant_algo": "W2"}}')
    model = load_model(tmp_path / "config.json")
    assert model.weight_dtype is None and "'W2'" in model.weight_dtype_note
    r = run_cli("cost", tmp_path / "config.json")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "'W2'" in r.err


def test_kimi_k2_reads_as_the_deepseek_v3_layout_it_names_in_fp8():
    """moonshotai/Kimi-K2-Instruct's config names DeepseekV3ForCausalLM: 61 layers, the
    first dense (first_k_dense_replace 1), 384 routed experts of which 8 per token plus one
    shared, 64 MLA heads, fp8 blocks. Moonshot's model card: 1T total, 32B activated."""
    m = load_model(QUANT / "moonshotai__Kimi-K2-Instruct.json")
    assert (m.n_layers, m.first_dense_layers, m.n_experts, m.experts_per_token,
            m.n_shared_experts, m.n_heads, m.kv_lora_rank) == (61, 1, 384, 8, 1, 64, 512)
    assert m.weight_dtype == "fp8"
    mc = model_costs(m, ArchSpec.for_model(m))
    assert float(mc.numeric(mc.params)) == pytest.approx(1e12, rel=0.05)
    assert float(mc.numeric(mc.active_params)) == pytest.approx(32e9, rel=0.05)


def test_minimax_m2_layers_and_parameters_from_its_config(run_cli, tmp_path):
    """MiniMaxAI/MiniMax-M2.5's config: 62 layers of full attention (48 heads, 8 KV heads of
    128, q/k norm) and an MoE of 256 experts of 1536 (3 matrices), 8 per token, no shared
    expert; vocabulary 200,064, untied; fp8. Parameters by the config's arithmetic, with
    simkit's per-head q/k norm (2 x 128; the checkpoint's spans (48 + 8) x 128): 228.69B
    (MiniMax-M2's model card: 230B total)."""
    m = load_model(QUANT / "MiniMaxAI__MiniMax-M2.5.json")
    assert (m.n_layers, m.n_heads, m.n_kv_heads, m.head_dim, m.n_experts,
            m.experts_per_token, m.weight_dtype) == (62, 48, 8, 128, 256, 8, "fp8")
    d, q, kv = 3072, 48 * 128, 8 * 128
    layer = d * q + 2 * d * kv + q * d + 2 * 128 + 2 * d + d * 256 + 256 * 3 * d * 1536
    expected = 62 * layer + 2 * 200064 * d + d
    mc = model_costs(m, ArchSpec.for_model(m))
    assert float(mc.numeric(mc.params)) == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(230e9, rel=0.01)
    cfg = json.loads((QUANT / "MiniMaxAI__MiniMax-M2.5.json").read_text())
    cfg["shared_intermediate_size"] = 1536
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    r = run_cli("cost", tmp_path / "config.json")
    assert r.code == 2 and len(r.err.strip().splitlines()) == 1 and "shared" in r.err
