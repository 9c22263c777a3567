"""Engine profiles (simkit.costs.engine), their terms in THE step-time formula
(simkit.costs.compiled), the symbolic formula (simkit.costs.steptime) and hardware.engine.

Expected step times are written out here from the model's published shapes, the hardware
datasheet and the profile's constants -- never read back from simkit's own output."""

from __future__ import annotations

import dataclasses
import math

import pytest

from simkit.catalog import load_hardware, load_model
from simkit.costs.arch import ArchSpec
from simkit.costs.compiled import build_step_model
from simkit.costs.engine import (CONSTANTS, DEFAULT_ENGINE, IDEAL, ROOFLINE, EngineProfile,
                                 engine_from_dict, engine_names, engine_to_toml, engines,
                                 load_engine, read_engine)
from simkit.errors import SimkitError

SHIPPED_FITTED = ("vllm", "vllm-0.6", "tensorrt-llm", "splitwise-2023")

#: a profile with every term switched on, round numbers for hand arithmetic
TOY = EngineProfile(
    name="toy", description="toy", source="test", data_date="", gemm_efficiency=0.5,
    gemm_tokens_half=16.0, gemm_width_half=1024.0, memory_efficiency=0.8,
    gemm_serial_fraction=0.5, attn_prefill_efficiency=0.5, attn_decode_efficiency=0.5,
    step_overhead_s=2e-3,
    layer_overhead_s=1e-5, sequence_overhead_s=5e-5, allreduce_latency_s=2e-5,
    allreduce_step_latency_s=1e-6, allreduce_efficiency=0.5)


def test_the_issue_s_engines_are_shipped_and_vllm_is_the_default():
    names = engine_names()
    assert {"roofline", "vllm", "tensorrt-llm"} <= set(names)
    assert DEFAULT_ENGINE == "vllm" and load_engine(None) is engines()["vllm"]
    assert load_engine("roofline") is ROOFLINE


def test_scenario_default_engine_is_the_cost_layer_default():
    from simkit.scenario import HardwareSection

    assert HardwareSection().engine == DEFAULT_ENGINE


@pytest.mark.parametrize("name", SHIPPED_FITTED)
def test_fitted_profiles_cite_their_data_and_stay_physical(name):
    from simkit.calibrate.engine_fit import PRIORS

    p = load_engine(name)
    assert p.source and p.data_date and p.fit and p.engine_version
    for k, (_, _, _, lo, hi, _) in PRIORS.items():
        v = getattr(p, k)
        assert v is not None and lo <= v <= hi, (k, v)
    # efficiencies are fractions of what the hardware's best kernels reach
    for k in ("gemm_efficiency", "attn_prefill_efficiency", "allreduce_efficiency"):
        assert 0 < getattr(p, k) <= 1.1, k
    errs = dict(p.errors)
    assert any(k.startswith("heldout_k_fold.") for k in errs)


#: targets the shipped fits miss today, each with why (the test fails if one is fixed, so
#: this list stays true, or if a new one appears)
_KRAI = ("Krai's three MLPerf v5.0 runs are vLLM's only Llama-2-70B, TP 1, H200 and fp8 "
         "measurements: held out, the fp8 GEMM efficiency they alone show falls back to its "
         "prior and they come out 15-36% fast")
_TTFT = ("the six times to first token (16 x 1024 tokens, TP 1) are prefills at 77% of the "
         "A100's dense peak but 59% of the H100's: one set of engine constants relative to "
         "the hardware's measured GEMM efficiency (0.87 and 0.80) splits the difference; "
         "held out by TP degree, the only TP 1 prefill data go with them")
_V1_TP2 = ("vLLM V1's only TP 2 measurements are Krai's three runs on one 8x H100 system: "
           "fitted on those alone, the eight constants follow their shapes (GEMMs at 0.84 of "
           "the hardware's rate, fp8 at 0.99 of that) and the 14 TP 1 runs come out 8-22% "
           "fast (MI300X 40-44%), while the TP 1 runs' fit predicts the TP 2 ones within 11%")
KNOWN_MISSES: dict[tuple[str, str], str] = {
    ("vllm", "heldout_leave_one_TP_degree_out.server.median_abs"): _V1_TP2,
    ("vllm-0.6", "heldout_leave_one_model_out.offline.median_abs"): _KRAI,
    ("vllm-0.6", "heldout_leave_one_model_out.server.median_abs"): _KRAI,
    ("vllm-0.6", "heldout_leave_one_TP_degree_out.offline.median_abs"): _KRAI,
    ("vllm-0.6", "heldout_leave_one_TP_degree_out.server.median_abs"): _KRAI,
    ("vllm-0.6", "in_sample.ttft.median_abs"): _TTFT,
    ("vllm-0.6", "heldout_leave_one_model_out.ttft.median_abs"): _TTFT,
    ("vllm-0.6", "heldout_leave_one_TP_degree_out.ttft.median_abs"): _TTFT,
    ("tensorrt-llm", "in_sample.ttft.median"): _TTFT,
    ("tensorrt-llm", "heldout_leave_one_TP_degree_out.ttft.median_abs"): _TTFT,
}


@pytest.mark.parametrize("name", SHIPPED_FITTED)
def test_fitted_profiles_meet_the_issue_targets_on_their_own_data(name):
    """Issue 10: median |error| <= 10% per phase in-sample, <= 15% leaving one model or one
    TP degree out, signed median within 5% (as the fit recorded them)."""
    misses = set()
    for k, v in dict(load_engine(name).errors).items():
        split, phase, stat = k.rsplit(".", 2)
        if (stat == "median_abs" and split == "in_sample" and v > 0.10
                or stat == "median_abs" and v > 0.15 and split in (
                    "heldout_leave_one_model_out", "heldout_leave_one_TP_degree_out")
                or stat == "median" and split == "in_sample" and abs(v) > 0.05):
            misses.add((name, k))
    assert misses == {m for m in KNOWN_MISSES if m[0] == name}


@pytest.mark.parametrize("name", SHIPPED_FITTED)
def test_profile_toml_round_trips_exactly(tmp_path, name):
    p = load_engine(name)
    f = tmp_path / "e.toml"
    f.write_text(engine_to_toml(p))
    q = read_engine(f)
    assert dataclasses.replace(q, path="") == dataclasses.replace(p, path="")
    assert load_engine(str(f)).constants() == p.constants()


#: profiles derived from `vllm` without its host costs per step and per sequence, and the
#: held-out check each carries (simulated throughput of runs it was not fitted on)
DERIVED = {"sglang": "heldout_simulated.offline", "vllm-async": "heldout_simulated.closed_loop"}


@pytest.mark.parametrize("name", sorted(DERIVED))
def test_derived_profiles_are_vllm_without_host_costs(name):
    """SGLang's overlap scheduler and vLLM's async scheduling run the scheduler's host work
    one step ahead, beside the GPU's: the same kernels as `vllm`, no cost per step or per
    sequence. Each carries the held-out errors of the runs it was checked on, within the
    issue's 10% median."""
    base, p = load_engine("vllm"), load_engine(name)
    assert p.step_overhead_s == 0 and p.sequence_overhead_s == 0
    for k, v in base.constants().items():
        if k not in ("step_overhead_s", "sequence_overhead_s"):
            assert p.constants()[k] == v, k
    errs = dict(p.errors)
    assert abs(errs[DERIVED[name] + ".median_abs"]) <= 0.10
    assert "not fitted" in p.fit
    # vLLM keeps its profiling pass and its kernels' L40S factor; SGLang has neither
    assert p.reserves_activations == (name == "vllm-async")
    assert bool(p.fp8_gemm_by_hardware) == (name == "vllm-async")


@pytest.mark.parametrize("text, msg", [
    ('name = "x"\ncolour = "red"\n', "x.toml.colour: unknown key"),
    ('description = "no name"\n', "x.toml.name: missing"),
    ('name = "x"\n[constants]\ngemm_speed = 1.0\n', "constants.gemm_speed: unknown constant"),
    ('name = "x"\n[constants]\ngemm_efficiency = -0.5\n',
     "gemm_efficiency: must be a number in (0, 2]"),
    ('name = "x"\n[constants]\nmemory_efficiency = 0\n',
     "memory_efficiency: must be a number in (0, 2]"),
    ('name = "x"\n[constants]\nlayer_overhead_s = "fast"\n', "layer_overhead_s: must be a number"),
    ('name = "x"\n[constants]\nstep_overhead_s = -1\n',
     "step_overhead_s: must be a number in [0, 10]"),
    ('name = "x"\n[errors]\n"a.b.c" = "big"\n', "errors.a.b.c: must be a number"),
    ('name = \n', "not valid TOML"),
    ('name = "x"\nreserves_activations = "yes"\n',
     "x.toml.reserves_activations: must be true or false"),
])
def test_bad_engine_files_give_one_line(tmp_path, text, msg):
    f = tmp_path / "x.toml"
    f.write_text(text)
    with pytest.raises(SimkitError) as e:
        load_engine(str(f))
    assert msg in e.value.messages[0] and "\n" not in e.value.messages[0]


def test_unknown_engine_and_missing_file():
    with pytest.raises(SimkitError, match="unknown engine 'vllm-9'.*choose one of roofline"):
        load_engine("vllm-9")
    with pytest.raises(SimkitError, match="no such engine profile file"):
        load_engine("nowhere/engine.toml")


def test_gemm_factor_halves_at_the_half_points():
    assert TOY.gemm_factor(16, 1024) == pytest.approx(0.5 * 0.5 * 0.5)
    assert TOY.gemm_factor(48, 3072) == pytest.approx(0.5 * 0.75 * 0.75)
    assert ROOFLINE.gemm_factor(1, 1) == 1.0


def test_allreduce_time_is_latency_plus_ring_steps_plus_bytes():
    from simkit.costs.roofline import roofline_for

    hw = load_hardware("h100-sxm")
    r = roofline_for(hw, gpus=4, engine=TOY)
    nbytes = 8 * 8192 * 2  # 8 tokens of d = 8192 in bf16
    link = 900e9 / 2 * 0.5  # NVLink 900 GB/s both ways -> 450 one way, at efficiency 0.5
    want = 2e-5 + 2 * 3 * 1e-6 + 2 * 3 / 4 * nbytes / link
    assert r.allreduce_time_s(nbytes) == pytest.approx(want, rel=1e-12)
    assert roofline_for(hw, gpus=1, engine=TOY).allreduce_time_s(nbytes) == 0


def _llama2_7b_streamed_bytes():
    # Llama-2-7B: 32 layers, d 4096, 32 heads of 128 (MHA), FFN 11008 SwiGLU, vocab 32000,
    # untied embeddings (HF config); 2 bytes per bf16 weight
    d, L, F, V = 4096, 32, 11008, 32000
    per_layer = 4 * d * d + 3 * d * F + 2 * d
    # a step reads every weight but the embedding table, of which it gathers its tokens' rows
    return 2 * (L * per_layer + V * d + d), L, d, F, V


def test_decode_step_by_hand_llama2_7b_h100_toy_engine():
    """One decode step at batch 1, context 1000, under the toy engine: every term by hand."""
    W, L, d, F, V = _llama2_7b_streamed_bytes()
    hw = load_hardware("h100-sxm")
    sm = build_step_model(load_model("llama-2-7b"), ArchSpec(), hw, engine=TOY)
    t, b = 1000, 1
    bw = 3350e9 * hw.memory_efficiency  # datasheet x the hardware's STREAM fraction
    peak = 989.5e12 * hw.compute_efficiency
    lin_flops = 2 * (L * (4 * d * d + 3 * d * F) + V * d)  # projections, FFN, LM head
    gemm = 0.5 * (1 / (1 + 16)) * (d / (d + 1024))
    compute, stream = lin_flops / (peak * gemm), W / (bw * 0.8)
    # the longer of the two plus the unhidden half (gemm_serial_fraction 0.5) of the shorter
    weights = max(compute, stream) + 0.5 * min(compute, stream)
    kv_read = L * 2 * t * d * 2  # keys and values of t positions, every layer, bf16
    kv_write = 0  # the new token's K/V is among the t positions read (simkit's convention)
    attn = max(4 * L * t * d / (peak * 0.5), (kv_read + kv_write) / (bw * 0.5))
    fixed = 2e-3 + L * 1e-5 + b * 5e-5
    assert sm.decode_time_s(t, b) == pytest.approx(fixed + weights + attn, rel=2e-3)


def test_ideal_is_the_pure_roofline_whatever_the_engine():
    W, L, d, F, V = _llama2_7b_streamed_bytes()
    hw = load_hardware("h100-sxm")
    for eng in ("vllm", "tensorrt-llm", TOY):
        sm = build_step_model(load_model("llama-2-7b"), ArchSpec(), hw, ideal=True,
                              engine=eng)
        assert sm.engine is IDEAL
        # batch 1 at context 1: weights plus 2 positions' worth of K/V... streamed at 3.35 TB/s
        got = sm.decode_time_s(1, 1)
        assert W / 3350e9 <= got <= W / 3350e9 * 1.001


def test_engines_order_as_their_constants_say():
    """A profile with larger fixed costs is slower at batch 1; the roofline is fastest."""
    hw = load_hardware("h100-sxm")
    m = load_model("llama-3-8b")
    t = {e: build_step_model(m, ArchSpec(), hw, engine=e).decode_time_s(2048, 1)
         for e in ("roofline", "vllm", "tensorrt-llm")}
    assert t["roofline"] < t["tensorrt-llm"] and t["roofline"] < t["vllm"]
    slow = dataclasses.replace(load_engine("vllm"), layer_overhead_s=1e-3)
    assert build_step_model(m, ArchSpec(), hw, engine=slow).decode_time_s(2048, 1) \
        == pytest.approx(t["vllm"] + 32 * (1e-3 - load_engine("vllm").layer_overhead_s))


@pytest.mark.parametrize("model, gpus, engine", [
    ("llama-3-8b", 1, "vllm"), ("llama-2-70b", 4, "tensorrt-llm"),
    ("mixtral-8x7b", 2, "splitwise-2023"), ("mistral-7b", 1, "roofline"),
    ("mamba-2.8b", 1, TOY), ("qwen3-30b-a3b", 1, "vllm")])
def test_symbolic_step_time_equals_the_numeric_formula(model, gpus, engine):
    from simkit.costs.steptime import step_time_exprs

    m, hw = load_model(model), load_hardware("h100-sxm")
    st = step_time_exprs(m, ArchSpec(), hw, gpus=gpus, engine=engine)
    sm = build_step_model(m, ArchSpec(), hw, gpus=gpus, engine=engine)
    for b, n in ((1, 100), (8, 3000), (64, 9000)):
        assert st.value("decode", b, n) == pytest.approx(sm.decode_time_s(n, b), rel=1e-12)
        assert st.value("prefill", b, n) == pytest.approx(
            sm.step_time_s((), [0] * b, [n] * b), rel=1e-12)


@pytest.mark.parametrize("hw_name, engine", [("b200", "vllm"), ("h100-sxm", "tensorrt-llm")])
def test_symbolic_step_time_equals_the_numeric_formula_for_nvfp4_weights(hw_name, engine):
    """NVFP4 weights run on B200's FP4 tensor cores (its own GEMM and streaming factors)
    and weight-only on H100: both forms agree either way."""
    from simkit.costs.steptime import step_time_exprs

    m, hw, arch = load_model("llama-3.1-70b"), load_hardware(hw_name), ArchSpec(
        weight_dtype="nvfp4")
    st = step_time_exprs(m, arch, hw, gpus=2, engine=engine)
    sm = build_step_model(m, arch, hw, gpus=2, engine=engine)
    for b, n in ((1, 100), (64, 9000)):
        assert st.value("decode", b, n) == pytest.approx(sm.decode_time_s(n, b), rel=1e-12)
        assert st.value("prefill", b, n) == pytest.approx(
            sm.step_time_s((), [0] * b, [n] * b), rel=1e-12)


def test_nvfp4_gemms_use_fp4_tensor_cores_only_where_the_gpu_has_them():
    """B200: 9,000 dense FP4 TFLOP/s (NVIDIA HGX table) x its measured bf16 GEMM fraction x
    the engine's fp8 factor x 0.82 (NVIDIA's aiconfigurator B200 GEMM latencies, nvfp4
    against fp8), weights streamed at 0.73 of the fp8 (= 16-bit) rate; H100 has no FP4
    tensor cores: 989.5 TFLOP/s 16-bit, the 16-bit streaming rate. The pure roofline
    (`ideal`) drops the factors."""
    from simkit.costs.roofline import roofline_for

    b200, h100 = load_hardware("b200"), load_hardware("h100-sxm")
    eng = dataclasses.replace(ROOFLINE, gemm_fp8_efficiency=0.5, memory_efficiency=0.8)
    r = roofline_for(b200, "nvfp4", "fp8", engine=eng)
    assert r.matmul_flops_per_s == pytest.approx(
        9000e12 * b200.compute_efficiency * 0.5 * 0.82)
    assert r.bytes_per_s == pytest.approx(7700e9 * b200.memory_efficiency * 0.8)
    assert r.weight_bytes_per_s == pytest.approx(r.bytes_per_s * 0.73)
    fp8 = roofline_for(b200, "fp8", "fp8", engine=eng)
    assert fp8.matmul_flops_per_s == pytest.approx(4500e12 * b200.compute_efficiency * 0.5)
    assert fp8.weight_bytes_per_s == fp8.bytes_per_s
    r = roofline_for(h100, "nvfp4", "fp8", engine=eng)
    assert r.matmul_flops_per_s == pytest.approx(989.5e12 * h100.compute_efficiency)
    assert r.weight_bytes_per_s == r.bytes_per_s
    ideal = roofline_for(b200, "nvfp4", "fp8", ideal=True)
    assert ideal.matmul_flops_per_s == 9000e12 and ideal.weight_bytes_per_s == 7700e9


def test_nvfp4_decode_reads_4_5_bit_weights_at_b200_s_fp4_streaming_rate():
    """A batch-1 decode of Llama-3.1-70B on one B200 is weight streaming: its linear layers
    are 4.5 bits per weight (`weight_dtype` nvfp4) and its LM head (128,256 x 8,192) stays
    16-bit, all over 0.73 of the 16-bit streaming rate, against 16 bits at the full rate,
    once the step's fixed cost is set aside (the one cached token's KV read is negligible;
    the embedding table is not streamed)."""
    m, hw = load_model("llama-3.1-70b"), load_hardware("b200")
    nv = build_step_model(m, ArchSpec(weight_dtype="nvfp4"), hw, engine=ROOFLINE)
    bf = build_step_model(m, ArchSpec(weight_dtype="bf16"), hw, engine=ROOFLINE)
    fixed = hw.step_overhead_s  # the roofline engine's only fixed cost: the GPU's step cost
    ratio = (nv.decode_time_s(1, 1) - fixed) / (bf.decode_time_s(1, 1) - fixed)
    head = 128256 * 8192
    body = 70_553_706_496 - 2 * head  # Llama-3.1-70B's weights but its two vocabulary matrices
    assert ratio == pytest.approx((body * 4.5 / 8 + head * 2) / 0.73 / ((body + head) * 2),
                                  rel=0.01)


@pytest.mark.parametrize("dtype, layers_peak", [("fp8", 1979e12), ("bf16", 989.5e12)])
def test_the_lm_head_multiplies_in_16_bit_beside_fp8_layers(dtype, layers_peak):
    """The LM head stays bf16 beside fp8 layers, and its matmul runs at bf16's rate: a
    decode step of 256 Llama-3.1-8B sequences on one H100 spends its layers' FLOPs at the
    fp8 rate (1,979 TFLOP/s dense x the engine's fp8 efficiency) and the head's at bf16's
    989.5 (H100 SXM datasheet), both under the same GEMM shape factor; in bf16 both run at
    989.5."""
    from simkit.costs.compiled import step_breakdown

    hw = load_hardware("h100-sxm")
    eng = dataclasses.replace(TOY, gemm_fp8_efficiency=0.8)
    sm = build_step_model(load_model("llama-3.1-8b"), ArchSpec(weight_dtype=dtype), hw,
                          engine=eng)
    b, d, L, F, V = 256, 4096, 32, 14336, 128256
    # q and o 4096 x 4096, k and v 4096 x 1024 (8 KV heads of 128), SwiGLU 3 x 4096 x 14336
    layers = b * 2 * L * (2 * d * d + 2 * d * 1024 + 3 * d * F)
    head = b * 2 * d * V
    low = 0.8 if dtype == "fp8" else 1.0
    shape = 0.5 * b / (b + 16) * d / (d + 1024)  # TOY's GEMM factor at 256 tokens
    want = (layers / (layers_peak * low) + head / 989.5e12) / (hw.compute_efficiency * shape)
    got = step_breakdown(sm, decode_ctx=[100] * b)["linear_compute_s"]
    assert got == pytest.approx(want, rel=1e-9)


def test_symbolic_step_time_shows_engine_terms_as_symbols():
    from simkit.costs import steptime as T

    st = T.step_time_exprs(load_model("llama-3-8b"), ArchSpec(), load_hardware("a100-80gb"),
                           gpus=2, engine="vllm")
    for sym in (T.T_s, T.T_l, T.T_q, T.eta_g, T.M_h, T.w_h, T.f_s, T.alpha, T.alpha_r,
                T.eta_ar, T.eta_da):
        assert sym in st.decode.free_symbols, sym
        assert sym in T.MEANING
    assert st.values[T.T_l] == load_engine("vllm").layer_overhead_s
    assert st.values[T.B_m] == 2039e9  # the A100 80GB datasheet


def test_fast_path_equals_stepping_with_every_engine_term_on():
    """The simulator's exact fast paths stay exact with tensor parallelism, per-layer and
    per-sequence overheads and ring latency all non-zero."""
    from conftest import assert_same_run
    from simkit.scenario import scenario_from_dict
    from simkit.sim import simulate

    d = {"model": {"name": "llama-3-8b"},
         "hardware": {"name": "a100-80gb", "gpus_per_replica": 2, "engine": "tensorrt-llm"},
         "workload": {"requests": 80, "arrival": {"process": "poisson", "rate": 6.0},
                      "prompt_tokens": {"dist": "lognormal", "median": 500, "sigma": 1.0,
                                        "max": 4000},
                      "output_tokens": {"dist": "lognormal", "median": 80, "sigma": 1.0,
                                        "max": 800}},
         "serving": {"max_batch": 32}}
    sc = scenario_from_dict(d)
    a = simulate(sc, seed=3)
    assert a.summary["engine"] == "tensorrt-llm"
    assert_same_run(a, simulate(sc, seed=3, fast=False))


def test_scenario_engine_key(tmp_path):
    from simkit.scenario import scenario_from_dict

    base = {"model": {"name": "llama-3-8b"}, "hardware": {"name": "h100-sxm"}}
    assert scenario_from_dict(base).hardware.engine == "vllm"
    s = scenario_from_dict({**base, "hardware": {"name": "h100-sxm",
                                                 "engine": "tensorrt-llm"}})
    assert s.hardware.engine == "tensorrt-llm"
    (tmp_path / "mine.toml").write_text(engine_to_toml(TOY))
    s = scenario_from_dict({**base, "hardware": {"name": "h100-sxm", "engine": "mine.toml"}},
                           base_dir=tmp_path)
    assert s.hardware.engine == str(tmp_path / "mine.toml")
    from simkit.costs.compiled import step_model_for

    assert step_model_for(s).engine.name == "toy"
    for bad, msg in (("nope", "hardware.engine: unknown engine 'nope'"),
                     ("missing.toml", "hardware.engine: no such engine profile file"),
                     (3, "hardware.engine: must be an engine name")):
        with pytest.raises(SimkitError) as e:
            scenario_from_dict({**base, "hardware": {"name": "h100-sxm", "engine": bad}},
                               base_dir=tmp_path)
        assert msg in str(e.value)


def test_constants_table_covers_every_profile_constant():
    names = {f.name for f in dataclasses.fields(EngineProfile)}
    assert set(CONSTANTS) <= names
    meta = {"name", "description", "source", "data_date", "engine_version", "fit", "errors",
            "path"}
    # not fitted: measured kernel costs (off only in the roofline); how the cache is sized
    switches = {"moe_kernels", "reserves_activations"}
    per_gpu = {"fp8_gemm_by_hardware", "fp8_gemm_source"}  # measured kernels, not fitted
    assert names - set(CONSTANTS) == meta | switches | per_gpu
    assert all(math.isfinite(v) for v in (lo for lo, _, _, _ in CONSTANTS.values()))


def test_the_report_names_the_engine():
    from simkit.report.pages.assumptions import assumptions_data
    from simkit.scenario import scenario_from_dict

    s = scenario_from_dict({"model": {"name": "llama-3-8b"},
                            "hardware": {"name": "h100-sxm", "engine": "tensorrt-llm"}})
    text = " ".join(line for _, lines in assumptions_data(s) for line in lines)
    assert "Serving engine tensorrt-llm" in text and "NVIDIA/TensorRT-LLM" in text
    # a per-GPU fp8 factor is named where it applies, and only there
    for gpu, shown in (("l40s", True), ("h100-sxm", False)):
        s = scenario_from_dict({"model": {"name": "llama-3-8b"},
                                "hardware": {"name": gpu, "engine": "vllm"}})
        text = " ".join(line for _, lines in assumptions_data(s) for line in lines)
        assert ("fp8 GEMMs run at 0.744 x" in text and "sglang#6756" in text) == shown


@pytest.mark.parametrize("hw_name, dtype, latency_s, slot_bytes", [
    # `python benchmarks/fit_moe_kernels.py`'s constants, by the dtype the expert GEMMs run in
    ("h200", "bf16", 39.0e-6, 55.0e3), ("h200", "fp8", 42.3e-6, 85.0e3),
    ("b200", "nvfp4", 73.6e-6, 137.5e3),  # FP4 tensor cores
    ("h100-sxm", "nvfp4", 39.0e-6, 55.0e3),  # no FP4 tensor cores: 16-bit GEMMs
])
def test_routed_expert_layers_pay_their_kernels(hw_name, dtype, latency_s, slot_bytes):
    """Qwen3-30B-A3B (config.json: 48 layers, every one routed, 8 experts per token): each
    step adds 48 x (latency + tokens x 8 x bytes / one GPU's datasheet bandwidth)."""
    m, hw = load_model("qwen3-30b-a3b"), load_hardware(hw_name)
    bw = {"h200": 4.8e12, "b200": 7.7e12, "h100-sxm": 3.35e12}[hw_name]  # datasheets
    arch = ArchSpec(weight_dtype=dtype)
    off = dataclasses.replace(load_engine("vllm"), moe_kernels=False)
    for gpus in (1, 2):
        on_m = build_step_model(m, arch, hw, gpus=gpus, engine="vllm")
        off_m = build_step_model(m, arch, hw, gpus=gpus, engine=off)
        for b, n in ((1, 500), (64, 4000)):
            extra = on_m.decode_time_s(n, b) - off_m.decode_time_s(n, b)
            assert extra == pytest.approx(48 * (latency_s + b * 8 * slot_bytes / bw), rel=1e-9)
        extra = on_m.step_time_s((), [0], [3000]) - off_m.step_time_s((), [0], [3000])
        assert extra == pytest.approx(48 * (latency_s + 3000 * 8 * slot_bytes / bw), rel=1e-9)


@pytest.mark.parametrize("engine", ["roofline", "ideal"])
def test_the_roofline_leaves_routed_expert_kernels_out(engine):
    m, hw = load_model("qwen3-30b-a3b"), load_hardware("h200")
    sm = build_step_model(m, ArchSpec(), hw, ideal=engine == "ideal",
                          engine=None if engine == "ideal" else engine)
    assert sm.roof.moe_layer_s == sm.roof.moe_slot_s == 0.0


def test_dense_models_have_no_routed_expert_term():
    m, hw = load_model("llama-3.1-8b"), load_hardware("h200")
    off = dataclasses.replace(load_engine("vllm"), moe_kernels=False)
    on_m, off_m = (build_step_model(m, ArchSpec(), hw, engine=e) for e in ("vllm", off))
    assert on_m.moe_blocks == 0
    assert on_m.decode_time_s(2000, 32) == off_m.decode_time_s(2000, 32)


# ---- per-GPU fp8 GEMM factors ------------------------------------------------------------

def test_vllm_fp8_factor_on_the_l40s_is_the_measured_kernel_ratio():
    # sgl-project/sglang#6756 (2025-05-30), "Main (with L40S)": bench_fp8_gemm.py figures
    # (4 x TFLOP/s) of vllm-fp8-bf16 and sglang-fp8-bf16 at (M, N, K) = (1024, 6144, 4096),
    # (2048, 6144, 4096), (1024, 4096, 4096)
    ratios = [8.118999e5 / 1.266360e6, 1.045980e6 / 1.448570e6, 9.870155e5 / 1.109373e6]
    expected = (ratios[0] * ratios[1] * ratios[2]) ** (1 / 3)
    eng = load_engine("vllm")
    assert dict(eng.fp8_gemm_by_hardware) == {"l40s": pytest.approx(expected, rel=1e-12)}
    assert "sglang#6756" in eng.fp8_gemm_source
    assert eng.fp8_gemm_efficiency_on("l40s") == pytest.approx(
        eng.gemm_fp8_efficiency * expected, rel=1e-12)
    assert eng.fp8_gemm_efficiency_on("h100-sxm") == eng.gemm_fp8_efficiency


def test_the_fp8_factor_scales_fp8_gemms_on_its_gpu_only():
    from simkit.costs.roofline import roofline_for

    eng = load_engine("vllm")
    plain = dataclasses.replace(eng, fp8_gemm_by_hardware=())
    f = dict(eng.fp8_gemm_by_hardware)["l40s"]
    l40s, h100 = load_hardware("l40s"), load_hardware("h100-sxm")
    def rate(hw, dtype, e):
        return roofline_for(hw, dtype, "bf16", 1, engine=e).matmul_flops_per_s

    assert rate(l40s, "fp8", eng) == pytest.approx(f * rate(l40s, "fp8", plain), rel=1e-12)
    assert rate(l40s, "bf16", eng) == rate(l40s, "bf16", plain)
    assert rate(h100, "fp8", eng) == rate(h100, "fp8", plain)
    # the symbolic formula takes the same factor: an fp8 model's steps on the L40S
    from simkit.costs.steptime import step_time_exprs

    m, arch = load_model("llama-3.1-8b"), ArchSpec(weight_dtype="fp8")
    for e in (eng, plain):
        st = step_time_exprs(m, arch, l40s, engine=e)
        sm = build_step_model(m, arch, l40s, engine=e)
        for b, n in ((1, 100), (64, 9000)):
            assert st.value("decode", b, n) == pytest.approx(sm.decode_time_s(n, b), rel=1e-12)
            assert st.value("prefill", b, n) == pytest.approx(
                sm.step_time_s((), [0] * b, [n] * b), rel=1e-12)
    prefill = [build_step_model(m, arch, l40s, engine=e).step_time_s((), [0] * 8, [2048] * 8)
               for e in (eng, plain)]
    assert prefill[0] > prefill[1]  # compute-bound prefill: slower GEMMs, a longer step


def test_fp8_factors_round_trip_through_toml(tmp_path):
    eng = load_engine("vllm")
    p = tmp_path / "e.toml"
    p.write_text(engine_to_toml(eng))
    back = read_engine(p)
    assert back.fp8_gemm_by_hardware == eng.fp8_gemm_by_hardware
    assert back.fp8_gemm_source == eng.fp8_gemm_source
    assert back.constants() == eng.constants()


@pytest.mark.parametrize("table, extra, msg", [
    ({"nope-gpu": 0.5}, {"fp8_gemm_source": "x"}, "fp8_gemm_by_hardware.nope-gpu: unknown GPU"),
    ({"l40s": 0.0}, {"fp8_gemm_source": "x"}, "must be a number in (0, 2]"),
    ({"l40s": 3.0}, {"fp8_gemm_source": "x"}, "must be a number in (0, 2]"),
    ({"l40s": "half"}, {"fp8_gemm_source": "x"}, "must be a number in (0, 2]"),
    ({"l40s": 0.7}, {}, "e.toml.fp8_gemm_source: missing"),
    (0.7, {"fp8_gemm_source": "x"}, "must be a table of GPU = factor"),
])
def test_bad_fp8_factor_tables_are_refused(tmp_path, table, extra, msg):
    doc = {"name": "x", "constants": {"gemm_efficiency": 0.5}, **extra,
           "fp8_gemm_by_hardware": table}
    with pytest.raises(SimkitError) as e:
        engine_from_dict(doc, where="e.toml")
    assert msg in str(e.value)
