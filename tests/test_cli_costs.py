"""`simkit models|hardware|cost|formula|crossover` from the command line."""

import json
import subprocess
import sys

import pytest

from simkit.catalog import load_model, model_names

COST_KEYS = {"param_count", "weight_bytes", "kv_cache_bytes", "kv_cache_bytes_per_sequence",
             "kv_cache_bytes_per_token", "prefill_flops", "attention_prefill_flops",
             "decode_flops_per_token", "attention_decode_flops_per_token", "prefill_seconds",
             "decode_seconds_per_step", "prefill_bound", "decode_bound", "complexity",
             "weight_dtype", "expert_weight_dtype"}
#: bytes per weight of the catalog checkpoints' dtypes
_SIZE = {"bf16": 2, "fp16": 2, "fp8": 1}


def test_help_does_not_import_heavy_libraries():
    code = ("import sys, simkit.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('sympy', 'numpy', 'scipy', 'matplotlib') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_models_and_hardware_list_sources(run_cli):
    r = run_cli("models")
    assert r.code == 0 and all(n in r.out for n in model_names())
    assert "arXiv:2310.06825" in r.out
    # each row names the dtype its published checkpoint stores the weights in
    rows = {line.split()[0]: line.split()[6] for line in r.out.splitlines()[1:]}
    assert rows["deepseek-v3"] == "fp8" and rows["gpt-oss-20b"] == "bf16+mxfp4"
    assert rows["llama-3-8b"] == "bf16"
    r = run_cli("hardware", "--json")
    assert r.code == 0 and "sparsity" in r.json()["h100-sxm"]["source"]


@pytest.mark.parametrize("name", model_names())
def test_cost_json_has_the_contract_keys(run_cli, name):
    gpus = {"gpt-3-175b": "8", "deepseek-v2": "8", "llama-2-70b": "2", "llama-3-70b": "2",
            "deepseek-67b": "2", "mixtral-8x7b": "2", "llama-3.1-70b": "2",
            "llama-3.1-405b": "16", "gpt-oss-120b": "4", "deepseek-v3": "32",
            "jamba-1.5-mini": "2", "qwen3-next-80b-a3b": "4", "llama-4-scout": "4",
            "bloom-176b": "8"}.get(name, "1")
    r = run_cli("cost", name, "--seq", "1024", "--batch", "2", "--gpus", gpus, "--json")
    assert r.code == 0, r.err
    d = r.json()
    assert COST_KEYS <= set(d)
    assert d["kv_cache_bytes"] == pytest.approx(2 * d["kv_cache_bytes_per_sequence"])
    assert d["prefill_bound"] in ("compute", "memory") and d["decode_bound"] == "memory"
    assert set(d["complexity"]) == {"time", "cache"}
    assert d["fits"] is True
    if d["expert_weight_dtype"] == d["weight_dtype"]:
        # one dtype: every weight that size, but the token embedding and the LM head, which
        # stay 16-bit beside layers quantized below that
        m = load_model(name)
        vocab = m.vocab_size * m.d_model * (1 if m.tie_embeddings else 2) \
            + m.learned_positions * m.d_model
        size = _SIZE[d["weight_dtype"]]
        assert d["weight_bytes"] == pytest.approx(
            (d["param_count"] - vocab) * size + vocab * max(size, 2), rel=1e-9)
        # a step reads the LM head, not the embedding table (nor learned positions)
        assert d["streamed_weight_bytes"] == pytest.approx(
            (d["param_count"] - vocab) * size + m.vocab_size * m.d_model * max(size, 2),
            rel=1e-9)


def test_cost_ideal_is_faster_and_options_apply(run_cli):
    real = run_cli("cost", "llama-3-8b", "--seq", "4096", "--json").json()
    ideal = run_cli("cost", "llama-3-8b", "--seq", "4096", "--ideal", "--json").json()
    assert ideal["decode_seconds_per_step"] < real["decode_seconds_per_step"]
    win = run_cli("cost", "llama-3-8b", "--seq", "4096", "--attention", "window",
                  "--window", "512", "--kv-dtype", "int4", "--json").json()
    assert win["kv_cache_bytes_per_sequence"] == 512 * real["kv_cache_bytes_per_token"] / 4
    assert win["complexity"] == {"time": "O(n*w)", "cache": "O(w)"}
    mist = run_cli("cost", "mistral-7b", "--seq", "8000", "--json").json()
    assert mist["attention"] == "window" and mist["window"] == 4096


def test_cost_text_and_does_not_fit(run_cli):
    r = run_cli("cost", "gpt-3-175b")
    assert r.code == 0 and "needs at least 5 h100-sxm" in r.out


@pytest.mark.parametrize("args, msg", [
    (["cost", "nope"], "unknown model 'nope'"),
    (["cost", "llama-2-7b", "--seq", "0"], "--seq: must be a positive integer"),
    (["cost", "llama-2-7b", "--seq", "-3"], "--seq"),
    (["cost", "llama-2-7b", "--attention", "quantum"], "invalid choice"),
    (["cost", "llama-2-7b", "--window", "16"], "--window: no layer of llama-2-7b (32 layers: full) takes a window"),
    (["cost", "llama-2-7b", "--attention", "linear", "--memory-slots", "4"], "--memory-slots"),
    (["cost", "llama-2-7b", "--hardware", "tpu"], "unknown hardware 'tpu'"),
    (["cost", "llama-2-7b", "--hardware", "missing.toml"], "no such profile file"),
    (["cost", "llama-2-7b", "--attention", "mla"], "mla needs"),
    (["cost", "llama-2-7b", "--kv-dtype", "fp4"], "invalid choice"),
    (["formula", "llama-2-7b", "--quantity", "speed"], "unknown quantity 'speed'"),
    (["crossover", "llama-2-7b", "--a", "full", "--b", "bogus"], "invalid choice"),
])
def test_bad_input_is_one_line_and_exit_2(run_cli, args, msg):
    r = run_cli(*args)
    assert r.code == 2 and r.out == ""
    assert msg in r.err and len(r.err.strip().splitlines()) == 1
    assert "Traceback" not in r.err


def test_formula_plain_latex_and_big_o(run_cli):
    r = run_cli("formula", "llama-3-8b", "--quantity", "cache_bytes")
    assert r.code == 0 and "131072*t" in r.out and "O(n)" in r.out
    r = run_cli("formula", "mistral-7b", "--quantity", "attention_prefill_flops", "--latex")
    assert "\\begin{cases}" in r.out and "O(n*w)" in r.out
    d = run_cli("formula", "mamba-2.8b", "--json").json()
    assert d["big_o"] == {"time": "O(n)", "cache": "O(1)"} and "scan" in d["prefill_note"]
    assert set(d["quantities"]) >= {"prefill_flops", "cache_bytes", "decode_bytes"}


def test_crossover_cli(run_cli):
    d = run_cli("crossover", "llama-3-8b", "--a", "full", "--b", "linear", "--quantity",
                "attention_prefill_flops", "--json").json()
    assert d["lengths"] == [161]
    r = run_cli("crossover", "llama-3-8b", "--a", "full", "--b", "window", "--window", "2048",
                "--quantity", "cache_bytes")
    assert "2048 and 2049" in r.out


def test_python_m_simkit_runs():
    out = subprocess.run([sys.executable, "-m", "simkit", "cost", "llama-2-7b", "--json"],
                         capture_output=True, text=True)
    assert out.returncode == 0 and json.loads(out.stdout)["param_count"] == 6738415616


def test_formula_sensitivity(run_cli):
    d = run_cli("formula", "llama-3-8b", "--quantity", "attention_prefill_flops", "--wrt", "n",
                "--seq", "2048", "--json").json()["sensitivity"]
    # d/dn of 2 H L d_h n (n+1) at n = 2048 is 2 H L d_h (2n + 1)
    assert d["value"] == 2 * 32 * 32 * 128 * (2 * 2048 + 1)
    assert d["elasticity"] == pytest.approx(2 * 2048 / 2049 + 1 / 2049)
    r = run_cli("formula", "llama-3-8b", "--quantity", "cache_bytes", "--wrt", "F")
    assert r.code == 2 and "does not depend on 'F'" in r.err
    r = run_cli("formula", "llama-3-8b", "--wrt", "n")
    assert r.code == 2 and "--wrt: give the --quantity" in r.err
