"""Published measurements in simkit/data/measurements/: format, physics and the Splitwise
conversion.

Every CSV there is either a step-time file (the `simkit calibrate --measurements` format) or a
`throughput_*.csv` file of end-to-end figures; README.md beside them documents each. Physical
floors here use model shapes and datasheet peaks written in this file (independent of simkit's
cost model), so a transcription slip of an order of magnitude, a wrong GPU label or a per-GPU
figure read as a total shows up as a row faster than the hardware allows.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
from pathlib import Path

import pytest

from simkit.errors import SimkitError

ROOT = Path(__file__).resolve().parent.parent
MEAS = ROOT / "simkit" / "data" / "measurements"
STEP_COLUMNS = ["model", "hardware", "tensor_parallel", "phase", "batch_size", "prompt_tokens",
                "context_tokens", "seconds"]
THROUGHPUT_COLUMNS = ["engine", "engine_version", "model", "hardware", "tensor_parallel",
                      "precision", "input_tokens", "output_tokens", "concurrency_or_batch",
                      "metric", "value", "unit"]
EXTRA_THROUGHPUT_COLUMNS = ["num_gpus", "request_rate_per_s", "source"]
#: optional, together: files of dataset-driven serving runs (README.md)
DATASET_COLUMNS = ["dataset", "mean_input_tokens", "mean_output_tokens", "kv_precision",
                   "max_batch", "max_batch_tokens", "memory_fraction"]

# Catalog names (simkit/catalog, and the entries issue 10 adds) plus bloom-176b (Splitwise).
KNOWN_MODELS = {
    "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3-70b", "mistral-7b",
    "mixtral-8x7b", "opt-13b", "gpt-3-175b", "falcon-7b", "deepseek-67b", "deepseek-v2",
    "mamba-2.8b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b", "qwen2.5-7b", "qwen3-32b",
    "qwen3-30b-a3b", "gpt-oss-20b", "gpt-oss-120b", "gemma-3-27b", "deepseek-v3",
    "jamba-1.5-mini", "qwen3-next-80b-a3b", "mamba-2-2.7b", "llama-4-scout", "bloom-176b"}
KNOWN_HARDWARE = {"a100-40gb", "a100-80gb", "h100-sxm", "h200", "l4", "mi300x", "b200",
                  "h100-pcie", "l40s", "mi325x"}
METRIC_UNITS = {"output_tokens_per_s": "tokens/s", "total_tokens_per_s": "tokens/s",
                "requests_per_s": "1/s"}
LATENCY_METRICS = {"e2e_s", "e2e_p50_s", "e2e_p99_s", "ttft_s", "ttft_p50_s", "ttft_p90_s",
                   "ttft_p99_s", "tpot_s", "tpot_p50_s", "tpot_p90_s", "tpot_p99_s", "itl_s",
                   "itl_p50_s"}
PRECISIONS = {"fp16": 2, "bf16": 2, "fp8": 1, "nvfp4": 4.5 / 8}  # bytes per weight

# Dense models' shapes (Hugging Face config.json of each): layers, hidden, query width
# (heads x head_dim), key/value width (kv heads x head_dim), SwiGLU width, vocabulary.
DENSE = {
    "llama-2-7b": (32, 4096, 4096, 4096, 11008, 32000),  # meta-llama/Llama-2-7b-hf
    "llama-2-70b": (80, 8192, 8192, 1024, 28672, 32000),  # meta-llama/Llama-2-70b-hf
    "llama-3-8b": (32, 4096, 4096, 1024, 14336, 128256),  # meta-llama/Meta-Llama-3-8B
    "llama-3-70b": (80, 8192, 8192, 1024, 28672, 128256),  # meta-llama/Meta-Llama-3-70B
    "llama-3.1-8b": (32, 4096, 4096, 1024, 14336, 128256),  # meta-llama/Llama-3.1-8B
    "llama-3.1-70b": (80, 8192, 8192, 1024, 28672, 128256),  # meta-llama/Llama-3.1-70B
    "llama-3.1-405b": (126, 16384, 16384, 1024, 53248, 128256),  # meta-llama/Llama-3.1-405B
    "mistral-7b": (32, 4096, 4096, 1024, 14336, 32000),  # mistralai/Mistral-7B-v0.1
}
# Dense peaks per GPU (datasheets; sparse figures halved) in FLOP/s by precision, and HBM B/s.
# A100 datasheet: 312 TF fp16/bf16, 1,555 GB/s (40GB) / 2,039 GB/s (80GB). H100 SXM: 989.5 TF
# bf16, 1,979 TF fp8, 3.35 TB/s. H200: same compute, 4.8 TB/s. L40S: 362.05 TF bf16, 733 TF
# fp8, 864 GB/s. MI300X: 1,307.4 TF bf16, 2,614.9 TF fp8, 5.3 TB/s; MI325X the same compute
# at 6.0 TB/s. B200 (HGX table): 2,250 TF bf16, 4,500 fp8, 9,000 fp4 (NVFP4), 7.7 TB/s.
PEAKS = {
    "a100-40gb": ({"fp16": 312e12, "bf16": 312e12}, 1555e9),
    "a100-80gb": ({"fp16": 312e12, "bf16": 312e12}, 2039e9),
    "h100-sxm": ({"fp16": 989.5e12, "bf16": 989.5e12, "fp8": 1979e12}, 3350e9),
    "h200": ({"fp16": 989.5e12, "bf16": 989.5e12, "fp8": 1979e12}, 4800e9),
    "l40s": ({"fp16": 362.05e12, "bf16": 362.05e12, "fp8": 733e12}, 864e9),
    "mi300x": ({"fp16": 1307.4e12, "bf16": 1307.4e12, "fp8": 2614.9e12}, 5300e9),
    "mi325x": ({"fp16": 1307.4e12, "bf16": 1307.4e12, "fp8": 2614.9e12}, 6000e9),
    "b200": ({"fp16": 2250e12, "bf16": 2250e12, "fp8": 4500e12, "nvfp4": 9000e12}, 7700e9),
}


def _matmul_params(model: str) -> tuple[int, int]:
    """(weight-matrix parameters of all layers, LM-head parameters)."""
    layers, d, q, kv, ffn, vocab = DENSE[model]
    return layers * (d * q + 2 * d * kv + q * d + 3 * d * ffn), vocab * d


def _read(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="") as f:
        r = csv.DictReader(f)
        return list(r.fieldnames or []), list(r)


CSV_FILES = sorted(MEAS.glob("*.csv"))
STEP_FILES = [p for p in CSV_FILES
              if not p.name.startswith(("throughput_", "lengths_", "kernels_", "preemptions_",
                                        "steps_detail_", "steps_mixed_"))]
THROUGHPUT_FILES = [p for p in CSV_FILES if p.name.startswith("throughput_")]
LENGTH_FILES = [p for p in CSV_FILES if p.name.startswith("lengths_")]


def _pos_int(s: str) -> int:
    v = int(s)
    assert v >= 1, s
    return v


def test_every_file_is_documented_and_licensed():
    assert CSV_FILES, "no measurement files"
    readme = (MEAS / "README.md").read_text()
    for p in CSV_FILES:
        assert f"`{p.name}`" in readme, f"{p.name} is not described in README.md"
    assert "MIT License" in (MEAS / "LICENSE-splitwise-sim.txt").read_text()
    assert "Apache License" in (MEAS / "LICENSE-aiconfigurator.txt").read_text()


def test_moe_kernel_timings_are_physical():
    """Every MoE-layer timing is no faster than streaming the experts its tokens touch
    (uniform routing) at the datasheet bandwidth, nor than its expert FLOPs at the dense
    peak of its dtype (datasheets: H100 SXM 3.35 TB/s, 989.5 / 1,979 TFLOP/s bf16 / fp8;
    H200 4.8 TB/s, the same peaks; B200 7.7 TB/s, 2,250 / 4,500 / 9,000 bf16 / fp8 / fp4)."""
    bw = {"h100-sxm": 3.35e12, "h200": 4.8e12, "b200": 7.7e12}
    peak = {"bf16": 1, "fp8": 2, "nvfp4": 4}
    dense16 = {"h100-sxm": 989.5e12, "h200": 989.5e12, "b200": 2250e12}
    weight_bytes = {"bf16": 2, "fp8": 1, "nvfp4": 4.5 / 8}
    header, rows = _read(MEAS / "kernels_moe_aiconfigurator.csv")
    assert header == ["engine", "engine_version", "hardware", "dtype", "kernel", "tokens",
                      "hidden_size", "expert_ffn", "experts", "experts_per_token",
                      "latency_ms"]
    assert len(rows) == 4092
    for i, r in enumerate(rows):
        where = f"kernels_moe_aiconfigurator.csv:{i + 2}"
        t, h, f = int(r["tokens"]), int(r["hidden_size"]), int(r["expert_ffn"])
        e, k, d, hw = int(r["experts"]), int(r["experts_per_token"]), r["dtype"], r["hardware"]
        touched = e * (1 - (1 - k / e) ** t)
        floor_s = max(touched * 3 * h * f * weight_bytes[d] / bw[hw],
                      t * k * 6 * h * f / (dense16[hw] * peak[d]))
        assert float(r["latency_ms"]) * 1e-3 >= floor_s, where


@pytest.mark.parametrize("path", STEP_FILES, ids=lambda p: p.name)
def test_step_file_format(path):
    header, rows = _read(path)
    assert header == STEP_COLUMNS
    assert rows
    for i, r in enumerate(rows):
        where = f"{path.name}:{i + 2}"
        assert r["model"] in KNOWN_MODELS, where
        assert r["hardware"] in KNOWN_HARDWARE, where
        assert r["phase"] in ("prefill", "decode"), where
        _pos_int(r["tensor_parallel"]), _pos_int(r["batch_size"])
        prompt, ctx = int(r["prompt_tokens"]), int(r["context_tokens"])
        if r["phase"] == "prefill":
            assert prompt >= 1 and ctx >= 0, where
        else:
            assert prompt == 0 and ctx >= 1, where
        s = float(r["seconds"])
        assert math.isfinite(s) and s > 0, where


@pytest.mark.parametrize("path", THROUGHPUT_FILES, ids=lambda p: p.name)
def test_throughput_file_format(path):
    header, rows = _read(path)
    assert header[:len(THROUGHPUT_COLUMNS)] == THROUGHPUT_COLUMNS
    extra = header[len(THROUGHPUT_COLUMNS):]
    assert extra in (EXTRA_THROUGHPUT_COLUMNS, EXTRA_THROUGHPUT_COLUMNS + DATASET_COLUMNS,
                     EXTRA_THROUGHPUT_COLUMNS + ["kv_precision"])
    assert rows
    for i, r in enumerate(rows):
        where = f"{path.name}:{i + 2}"
        assert r["engine"] and r["engine_version"] and r["source"], where
        assert r["model"] in KNOWN_MODELS and r["hardware"] in KNOWN_HARDWARE, where
        tp, gpus = _pos_int(r["tensor_parallel"]), _pos_int(r["num_gpus"])
        assert gpus % tp == 0, where
        assert r["precision"] in PRECISIONS, where
        for k in ("input_tokens", "output_tokens"):
            assert r[k] == "" or _pos_int(r[k]), where
        conc, rate = r["concurrency_or_batch"], r["request_rate_per_s"]
        if conc == "":  # open loop: requests arrive at a rate
            assert rate == "inf" or float(rate) > 0, where
        else:
            assert conc == "max" or _pos_int(conc), where
            assert rate == "", where
        m, v = r["metric"], float(r["value"])
        assert math.isfinite(v) and v > 0, where
        assert r["unit"] == ("s" if m in LATENCY_METRICS else METRIC_UNITS.get(m)), where
        if "kv_precision" in r:
            assert r["kv_precision"] == "" or r["kv_precision"] in PRECISIONS, where
        if "dataset" in r:
            assert r["dataset"] in ("openorca", "sharegpt", "cnn_dailymail",
                                    "mlperf_mixtral"), where
            assert r["input_tokens"] == r["output_tokens"] == "", where  # lengths vary
            for k in ("mean_input_tokens", "mean_output_tokens", "memory_fraction"):
                assert r[k] == "" or 0 < float(r[k]), where
            assert r["memory_fraction"] == "" or float(r["memory_fraction"]) <= 1, where
            for k in ("max_batch", "max_batch_tokens"):
                assert r[k] == "" or _pos_int(r[k]), where


@pytest.mark.parametrize("path", LENGTH_FILES, ids=lambda p: p.name)
def test_length_file_format(path):
    header, rows = _read(path)
    assert header == ["input_length", "output_length"]
    assert rows
    for i, r in enumerate(rows):
        _pos_int(r["input_length"]), _pos_int(r["output_length"])


def test_openorca_lengths_are_mlperf_s_set():
    """MLPerf's Llama-2-70B set: 24,576 samples (every log's performance_sample_count), prompts
    cut at 1,024 tokens (processorca.py --seqlen_limit=1024)."""
    rows = _read(MEAS / "lengths_openorca_llama2.csv")[1]
    assert len(rows) == 24576
    assert max(int(r["input_length"]) for r in rows) < 1024


def test_cnn_dailymail_lengths_are_mlperf_s_llama3_1_8b_set():
    """MLPerf's Llama-3.1-8B set: 13,368 samples (every log's performance_sample_count);
    every Red Hat run generated 128 tokens per sample (tokens/s over samples/s)."""
    rows = _read(MEAS / "lengths_cnn_dailymail_llama3.1.csv")[1]
    assert len(rows) == 13368
    runs = [r for r in _read(MEAS / "throughput_mlperf_inference_v5.1_redhat.csv")[1]
            if r["metric"] == "requests_per_s"]
    assert runs and all(float(r["mean_output_tokens"]) == pytest.approx(128, abs=1.1)
                        for r in runs)


def test_mixtral_lengths_are_mlperf_s_set():
    """MLPerf's Mixtral-8x7B set: 15,000 samples (every mixtral log's
    performance_sample_count), answers of at most 1,024 tokens; the runs generated close to the
    reference answers' mean (143.4-143.8 tokens per sample against 144.8)."""
    rows = _read(MEAS / "lengths_mlperf_mixtral.csv")[1]
    assert len(rows) == 15000
    outs = [int(r["output_length"]) for r in rows]
    assert max(outs) <= 1024
    runs = [r for r in _read(MEAS / "throughput_mlperf_inference_v5.1_rocm.csv")[1]
            if r["metric"] == "requests_per_s" and r["dataset"] == "mlperf_mixtral"]
    assert runs and all(float(r["mean_output_tokens"]) == pytest.approx(sum(outs) / len(outs),
                                                                         rel=0.02)
                        for r in runs)


def test_mean_outputs_are_the_runs_own_ratio():
    """Where a serving run gives requests/s and output tokens/s, its mean_output_tokens is
    their ratio (two decimals)."""
    checked = 0
    for path in THROUGHPUT_FILES:
        runs: dict[str, dict] = {}
        for r in _read(path)[1]:
            if r.get("mean_output_tokens"):
                runs.setdefault(r["source"], {})[r["metric"]] = (float(r["value"]),
                                                                 float(r["mean_output_tokens"]))
        for source, m in runs.items():
            if "requests_per_s" in m and "output_tokens_per_s" in m:
                ratio = m["output_tokens_per_s"][0] / m["requests_per_s"][0]
                assert m["requests_per_s"][1] == pytest.approx(ratio, abs=0.006), source
                checked += 1
    assert checked >= 15


def _throughput_rows():
    for p in THROUGHPUT_FILES:
        for i, r in enumerate(_read(p)[1]):
            yield f"{p.name}:{i + 2}", r


def test_throughput_rows_respect_the_hardware_roofs():
    """No dense-model figure beats its GPUs' compute or memory roof."""
    checked = 0
    for where, r in _throughput_rows():
        if r["model"] not in DENSE:
            continue
        n, lm_head = _matmul_params(r["model"])
        flops_s, bw = PEAKS[r["hardware"]]
        tp, gpus = int(r["tensor_parallel"]), int(r["num_gpus"])
        peak = flops_s[r["precision"]]
        weight_read_s = PRECISIONS[r["precision"]] * (n + lm_head) / (tp * bw)
        m, v = r["metric"], float(r["value"])
        isl = int(r["input_tokens"]) if r["input_tokens"] else None
        osl = int(r["output_tokens"]) if r["output_tokens"] else None
        batch = int(r["concurrency_or_batch"]) if r["concurrency_or_batch"].isdigit() else None
        if m.startswith(("tpot", "itl")):
            assert v >= weight_read_s, (where, v, weight_read_s)
        elif m == "e2e_s" and batch and isl and osl:  # one static batch
            floor = max((osl - 1) * weight_read_s,
                        2 * n * batch * (isl + osl - 1) / (tp * peak))
            assert v >= floor, (where, v, floor)
        elif m == "ttft_s" and isl:
            floor = 2 * n * (batch or 1) * isl / (tp * peak)
            assert v >= floor, (where, v, floor)
        elif m == "output_tokens_per_s":
            share = osl / (isl + osl) if isl and osl else 1.0
            roof = gpus * peak / (2 * n) * share
            assert v <= roof, (where, v, roof)
        else:
            continue
        checked += 1
    assert checked > 1500


def test_online_serving_totals_match_their_lengths():
    """TRT-LLM online table: total/output token rates must be (ISL+OSL)/OSL (rounded ints)."""
    groups: dict[tuple, dict] = {}
    for where, r in _throughput_rows():
        if r["metric"] in ("total_tokens_per_s", "output_tokens_per_s") and r["request_rate_per_s"]:
            key = (r["source"], r["model"], r["hardware"], r["input_tokens"], r["output_tokens"],
                   r["request_rate_per_s"])
            groups.setdefault(key, {})[r["metric"]] = float(r["value"])
    pairs = [(k, g) for k, g in groups.items() if len(g) == 2]
    assert len(pairs) == 72
    for k, g in pairs:
        isl, osl = int(k[3]), int(k[4])
        ratio = g["total_tokens_per_s"] / g["output_tokens_per_s"]
        assert ratio == pytest.approx((isl + osl) / osl, rel=0.03), k


def test_static_batch_rate_matches_latency():
    """Where a source gives both, output tokens/s of one batch = batch * OSL / e2e."""
    groups: dict[tuple, dict] = {}
    for where, r in _throughput_rows():
        if r["concurrency_or_batch"].isdigit() and r["metric"] in ("e2e_s", "output_tokens_per_s"):
            key = (r["source"], r["model"], r["hardware"], r["tensor_parallel"],
                   r["input_tokens"], r["output_tokens"], r["concurrency_or_batch"])
            groups.setdefault(key, {})[r["metric"]] = float(r["value"])
    pairs = [(k, g) for k, g in groups.items() if len(g) == 2]
    assert len(pairs) >= 9
    for k, g in pairs:
        expected = int(k[6]) * int(k[5]) / g["e2e_s"]
        assert g["output_tokens_per_s"] == pytest.approx(expected, rel=0.02), k


# --- Splitwise conversion ------------------------------------------------------------------

def _converter():
    spec = importlib.util.spec_from_file_location(
        "convert_splitwise", ROOT / "benchmarks" / "convert_splitwise.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


SW_HEADER = ("model,hardware,prompt_size,batch_size,token_size,peak_power,average_power,"
             "prompt_time,token_time,e2e_time,tensor_parallel").split(",")
# Rows copied verbatim from Mutinifni/splitwise-sim data/perf_model.csv (commit 8f99e7dc9b40,
# MIT License), with their line numbers in that file.
SW_LINES = {
    2: "llama2-70b,a100-80gb,512,1,128,1.0000125,0.73599375,196.2532191537321,54.87951193752838,7168.983697891235,2",
    52: "llama2-70b,a100-80gb,512,32,128,0.0,0.0,6638.894984964281,72.0921725981653,18486.89866065979,2",
    62: "llama2-70b,a100-80gb,512,64,128,0.0,0.0,802.0069060148671,67.29530307437872,159757.9095363617,2",
    172: "llama2-70b,a100-80gb,512,1,1024,0.0,0.0,194.70052106771615,59.61368031573933,10153.443813323976,2",
    174: "llama2-70b,a100-80gb,512,1,1024,0.0,0.0,195.72180497925729,60.54843464701956,62151.04055404663,2",
    767: "bloom-176b,h100-80gb,8192,1,128,0.0,0.0,1535.395085986238,37.35344543343586,6295.004606246948,8",
    1192: "bloom-176b,h100-80gb-pcap,128,1,128,0.0,0.0,62.55133433151059,35.17928509743825,4518.982172012329,8",
}


def _sw_rows(lines):
    return [dict(zip(SW_HEADER, SW_LINES[n].split(","))) for n in lines]


def _expected(model, hw, tp, phase, batch, prompt, ctx, seconds):
    return {"model": model, "hardware": hw, "tensor_parallel": tp, "phase": phase,
            "batch_size": batch, "prompt_tokens": prompt, "context_tokens": ctx,
            "seconds": seconds}


def test_splitwise_conversion_by_hand():
    cs = _converter()
    out, flagged, counts = cs.convert(_sw_rows([2, 52, 62, 172, 174, 767, 1192]))
    # Derived by hand from the rows above. Decode context = prompt + (n + 1) // 2 with
    # n = min(token_size - 1, floor((e2e - prompt_time) / token_time)):
    #   line 2:   (7168.98 - 196.25) / 54.880 = 127.05 -> n = 127 -> 512 + 64 = 576
    #   line 52:  (18486.90 - 6638.89) / 72.092 = 164.3 > 1.02 * 127 -> decode flagged
    #   line 62:  prefill 0.802 s < 2 * 68.45e9 * 64 * 512 / (2 * 312e12) = 7.19 s -> flagged;
    #             decode (159757.9 - 802.0) / 67.295 = 2362 iterations -> flagged
    #   line 172: (10153.44 - 194.70) / 59.614 = 167.05 -> n = 167 -> 512 + 84 = 596
    #   line 174: (62151.04 - 195.72) / 60.548 = 1023.2 -> n = 1023 -> 512 + 512 = 1024
    #   line 767: (6295.00 - 1535.40) / 37.353 = 127.4 -> n = 127 -> 8192 + 64 = 8256
    #   line 1192: power-capped H100, left out
    assert out == [
        _expected("llama-2-70b", "a100-80gb", 2, "prefill", 1, 512, 0, "0.1962532191537321"),
        _expected("llama-2-70b", "a100-80gb", 2, "decode", 1, 0, 576, "0.05487951193752838"),
        _expected("llama-2-70b", "a100-80gb", 2, "prefill", 32, 512, 0, "6.638894984964281"),
        _expected("llama-2-70b", "a100-80gb", 2, "prefill", 1, 512, 0, "0.19470052106771615"),
        _expected("llama-2-70b", "a100-80gb", 2, "decode", 1, 0, 596, "0.05961368031573933"),
        _expected("llama-2-70b", "a100-80gb", 2, "prefill", 1, 512, 0, "0.19572180497925729"),
        _expected("llama-2-70b", "a100-80gb", 2, "decode", 1, 0, 1024, "0.06054843464701956"),
        _expected("bloom-176b", "h100-sxm", 8, "prefill", 1, 8192, 0, "1.535395085986238"),
        _expected("bloom-176b", "h100-sxm", 8, "decode", 1, 0, 8256, "0.03735344543343586"),
    ]
    assert [(f["source_line"], f["phase"], f["rule"]) for f in flagged] == [
        (3, "decode", "decode_not_one_batch"),  # line numbers within the 7-row input
        (4, "prefill", "prefill_faster_than_compute_peak"),
        (4, "decode", "decode_not_one_batch")]
    assert flagged[1]["limit"] == pytest.approx(2 * 68_451_041_280 * 64 * 512 / (2 * 312e12))
    assert counts["excluded_hardware"] == 1


def test_splitwise_committed_file_holds_the_hand_rows():
    """The committed conversion contains the rows derived by hand above, as text."""
    text = (MEAS / "splitwise.csv").read_text().splitlines()
    for line in ("llama-2-70b,a100-80gb,2,decode,1,0,576,0.05487951193752838",
                 "llama-2-70b,a100-80gb,2,decode,1,0,596,0.05961368031573933",
                 "llama-2-70b,a100-80gb,2,decode,1,0,1024,0.06054843464701956",
                 "bloom-176b,h100-sxm,8,prefill,1,8192,0,1.535395085986238",
                 "bloom-176b,h100-sxm,8,decode,1,0,8256,0.03735344543343586"):
        assert line in text, line
    # The flagged batch-64 prefill at TP2 (0.802 s) and the power-capped H100 are absent.
    assert "llama-2-70b,a100-80gb,2,prefill,64,512,0,0.8020069060148671" not in text
    assert not any(",h100-80gb-pcap," in t for t in text)


def test_splitwise_shapes_match_the_published_configs():
    """The converter's Llama-2-70B count equals the catalog config's weight matrices."""
    from simkit.catalog.models import load_model

    cs = _converter()
    c = load_model("llama-2-70b")
    q, kv = c.n_heads * c.head_dim, c.n_kv_heads * c.head_dim
    per_layer = c.d_model * q + 2 * c.d_model * kv + q * c.d_model + 3 * c.d_model * c.ffn_dim
    assert cs.MODELS["llama2-70b"].matmul_params == c.n_layers * per_layer == 68_451_041_280
    # BLOOM-176B: 70 layers x 12 x 14336^2 (bigscience/bloom config.json)
    assert cs.MODELS["bloom-176b"].matmul_params == 70 * 12 * 14336 ** 2


def test_splitwise_step_rows_respect_the_roofs():
    """Every kept Splitwise row is slower than its compute (prefill) or weight-read floor."""
    bloom_n, bloom_head = 70 * 12 * 14336 ** 2, 250880 * 14336
    llama_n, llama_head = _matmul_params("llama-2-70b")
    shapes = {"llama-2-70b": (llama_n, llama_head), "bloom-176b": (bloom_n, bloom_head)}
    for r in _read(MEAS / "splitwise.csv")[1]:
        n, head = shapes[r["model"]]
        flops_s, bw = PEAKS[r["hardware"]]
        tp, b, s = int(r["tensor_parallel"]), int(r["batch_size"]), float(r["seconds"])
        if r["phase"] == "prefill":
            assert s >= 2 * n * b * int(r["prompt_tokens"]) / (tp * flops_s["fp16"]), r
        else:
            assert s >= 2 * (n + head) / (tp * bw), r


def test_splitwise_converter_rejects_bad_input(tmp_path):
    cs = _converter()
    bad = _sw_rows([2])
    bad[0]["hardware"] = "v100-32gb"
    with pytest.raises(SimkitError, match=r"row 2\.hardware: unknown 'v100-32gb'"):
        cs.convert(bad)
    with pytest.raises(SimkitError, match="no such file"):
        cs.read_rows(tmp_path / "missing.csv")
    neg = _sw_rows([2])
    neg[0]["token_time"] = "-1"
    with pytest.raises(SimkitError, match=r"row 2\.token_time: must be a finite number > 0"):
        cs.convert(neg)


# --- MoE kernel costs --------------------------------------------------------------------

def test_moe_kernel_costs_are_the_fit_of_the_shipped_timings():
    """`MOE_KERNEL_COSTS` is what `benchmarks/fit_moe_kernels.py` fits on the TensorRT-LLM
    H200/B200 rows (to the three figures the constants keep), and the two terms bring every
    group of timings, fitted or held out, closer than streaming and GEMMs alone."""
    import numpy as np

    from simkit.costs.roofline import MOE_KERNEL_COSTS

    spec = importlib.util.spec_from_file_location(
        "fit_moe_kernels", ROOT / "benchmarks" / "fit_moe_kernels.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with open(MEAS / "kernels_moe_aiconfigurator.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    for dtype, cls in mod.CLASS.items():
        mine = [r for r in rows if r["dtype"] == dtype]
        lat, slot = mod.fit(mod.columns([r for r in mine
                                         if (r["engine"], r["hardware"]) in mod.FIT_ON]))
        assert MOE_KERNEL_COSTS[cls] == pytest.approx((lat, slot), rel=2e-3), cls
        for group in {(r["engine"], r["hardware"]) for r in mine}:
            c = mod.columns([r for r in mine if (r["engine"], r["hardware"]) == group])
            with_terms = np.median(np.abs(mod.errors(c, *MOE_KERNEL_COSTS[cls])))
            without = np.median(np.abs(c["base_s"] / c["latency_s"] - 1))
            assert with_terms < without, (cls, group)


# --- request lengths of the MLPerf sets, as the benchmarks draw them ---------------------

def test_openorca_prompts_of_llama3_runs_are_in_llama3_tokens():
    """OpenOrca's lengths file counts Llama-2 tokens; runs serving a Llama-3 model read its
    prompts at 3.17 / 3.94 of that (the Llama 3 paper's characters per token on English for
    the two tokenizers), every other set and model as the file has them. Outputs follow the
    run's own mean either way."""
    import numpy as np

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import _published as pub
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    ref = np.loadtxt(MEAS / "lengths_openorca_llama2.csv", delimiter=",", skiprows=1)
    p2, o2 = pub.mlperf_lengths("openorca", 296.0, "llama-2-70b")
    p3, o3 = pub.mlperf_lengths("openorca", 296.0, "llama-3.1-70b")
    assert np.array_equal(p2, ref[:, 0])
    assert np.array_equal(p3, np.maximum(1, np.rint(ref[:, 0] * 3.17 / 3.94)))
    assert np.array_equal(o2, o3) and o3.mean() == pytest.approx(296.0, rel=2e-3)
    cnn = np.loadtxt(MEAS / "lengths_cnn_dailymail_llama3.1.csv", delimiter=",", skiprows=1)
    assert np.array_equal(pub.mlperf_lengths("cnn_dailymail", 128.0, "llama-3.1-8b")[0],
                          cnn[:, 0])


# --- benchmarks/fidelity.py: the load at which simkit matches a measured TPOT -------------

def _benchmark(name: str):
    """A module of benchmarks/ (they import one another as top-level modules, some lazily:
    `fidelity` is imported first, which imports every module the others reach for)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        importlib.import_module("fidelity")
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


@pytest.mark.parametrize("measured_s, expected", [
    # a queue whose mean TPOT is 10 ms / (1 - load / 20): it equals the measured TPOT at
    # load 20 (1 - 10 ms / measured); the measured load is 10, so the multiple is that / 10
    (0.04, 20 * (1 - 0.01 / 0.04) / 10),   # 1.5: at the range's upper end exactly
    (0.025, 20 * (1 - 0.01 / 0.025) / 10),  # 1.2
    (0.0125, 0.5),  # simkit is already slower at half the load: the lower end
    (1.0, 1.5),  # never as slow within the range: the upper end
])
def test_tpot_matched_load_bisects_the_load_multiple(monkeypatch, measured_s, expected):
    fid = _benchmark("fidelity")
    monkeypatch.setattr(fid, "serving_scenario", lambda row, prof, requests, rate: rate)
    monkeypatch.setattr(fid, "_simulate",
                        lambda rate: {"tpot_s": {"mean": 0.01 / (1 - rate / 20.0)}})
    got = fid.tpot_matched_load({}, "vllm", 10.0, measured_s, steps=30)
    assert got == pytest.approx(expected, abs=1e-6)
    assert fid.metric_kind("server tpot-matched load") == "load at the measured TPOT"


def test_serving_runs_are_simulated_with_their_engines_schedulers():
    """Each engine's loop as its source sets it: vLLM V1 chunks every prompt within its token
    budget; vLLM V0 without chunked prefill (off below 32K tokens of max_model_len) runs
    prompts alone with its watermark; SGLang runs prompts alone, admits by its estimate on a
    per-token pool, and MLPerf's requests carry the reference harness's 1,024-token limit;
    TensorRT-LLM mixes prompts and decodes."""
    fid = _benchmark("fidelity")
    seen = set()
    for name in fid.SERVING_FILES:
        for row in fid.read_rows(name):
            key = (row["engine"], sys.modules["_published"].is_vllm_v1(row), "--num-scheduler-steps" in
                   row["engine_version"], row["dataset"] in fid.MLPERF_SET)
            if key in seen or fid.loadable(fid.setup_of(row)):
                continue
            seen.add(key)
            sv = fid.serving_scenario(row, "vllm", requests=10, rate=1.0)
            engine, v1, steps, mlperf = key
            expected = {"vllm": "chunked" if v1 else "prefill_first",
                        "sglang": "prefill_first", "tensorrt-llm": "continuous"}
            assert sv.serving.scheduler == expected[engine], key
            assert (sv.serving.admission == "new_token_ratio") == (engine == "sglang"), key
            assert (sv.serving.scheduler_steps > 1) == steps, key
            if engine == "sglang":
                assert sv.serving.block_size == 1
                assert sv.workload.max_new_tokens == (1024 if mlperf else None)
    assert {k[0] for k in seen} == {"vllm", "sglang", "tensorrt-llm"}


def test_online_runs_are_mean_iterations_by_hand():
    """TensorRT-LLM 0.14's online rows as the iteration a decoding request sees: itself, the
    rate x (output - 1) x ITL others decoding, rate x ITL prompts arriving per iteration.
    Llama-3.1-70B on 4 H100s, 467/256 at 2 QPS, ITL 21 ms (the page's row): 1 + round(2 x
    255 x 0.021) = 1 + 11 = 12 decodes at 467 + 128 = 595 tokens, 0.042 prompts of 467 per
    iteration (4.2% of iterations hold one); at 16 QPS its TTFT (0.175 s) is 2.8 x the 2-QPS
    0.062 s: queueing, left out."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import _published as pub
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    runs, skipped = pub.online_runs()
    by_line = {m.where.rsplit(":", 1)[1]: m for m in runs}
    rows = pub.read_rows("throughput_tensorrt_llm_perf_overview.csv")
    line = next(i for i, r in enumerate(rows, start=2)
                if (r["engine_version"], r["model"], r["hardware"]) ==
                ("0.14.0", "llama-3.1-70b", "h100-sxm")
                and (r["input_tokens"], r["output_tokens"], r["request_rate_per_s"])
                == ("467", "256", "2"))
    m = by_line[str(line)]
    assert m.phase == "server" and m.seconds == pytest.approx(0.021)
    (w0, s0), (w1, s1) = m.steps
    assert (w0, w1) == (pytest.approx(1 - 0.042), pytest.approx(0.042))
    assert (s0.decode_batch, s0.decode_context, s0.prefill_batch, s0.prompt_tokens) \
        == (12, 595, 0, 467)
    assert (s1.decode_batch, s1.prefill_batch) == (12, 1)
    why = dict(skipped)
    queued = [w for w, r in why.items() if r.startswith("queueing")]
    assert any("TTFT 0.175 s" in why[w] for w in queued)
    # every online ITL row at a finite rate is either kept or left out for queueing
    assert len(runs) + len(queued) == sum(
        1 for r in rows if r["metric"] == "itl_s" and r["request_rate_per_s"] not in ("", "inf"))


#: Krai's v5.1 vLLM 0.9.2 Offline run on 8x H200 (Llama-3.1-70B fp8, V1 chunked prefill)
KRAI51_OFFLINE = ("mlcommons/inference_results_v5.1@965182b03376:open/Krai/results/"
                  "xd670_h200_x8_vllm_092/llama3_1-70b-fp8_dyn/offline/performance/run_1/"
                  "mlperf_log_summary.txt")


@pytest.mark.parametrize("engine", ["vllm", "tensorrt-llm"])
def test_an_offline_schedule_is_the_simulated_run_under_any_profile(engine):
    """With every request queued at t = 0 the iterations do not depend on the step times:
    the schedule recorded once (under `roofline`'s step times, with the activation reserve
    both these engines size their caches with) and summed with a profile's step times
    gives that profile's simulated wall time (to the grouping's 0.5%), in as many
    iterations."""
    fid = _benchmark("fidelity")
    runs = sys.modules["_runs"]
    from simkit.calibrate.measurements import Design, Measurement
    from simkit.costs.engine import load_engine

    row = next(r for r in fid.read_rows("throughput_mlperf_inference_v5.1_krai.csv")
               if r["source"] == KRAI51_OFFLINE)
    iterations, steps = runs.offline_schedule(row, 1500)
    summ = fid._simulate(fid.serving_scenario(row, engine, requests=1500, rate=1e9))
    assert summ["preemptions"] > 0  # (memory-bound: the schedule holds recomputed prompts)
    assert iterations == summ["iterations"]
    assert sum(c for c, _ in steps) == iterations
    got = Design([Measurement(fid.setup_of(row), "offline", 1.0, steps)]).predict(
        load_engine(engine))[0]
    assert got == pytest.approx(summ["simulated_seconds"], rel=0.005)


KRAI50_OFFLINE = ("ntuhpc/mlperf_inference_results_v5.0@cf354115915e (copy of "
                  "mlcommons/inference_results_v5.0):open/Krai/results/xd670_h200_x8_vllm_064/"
                  "llama2-70b-fp8_dyn/offline/performance/run_1/mlperf_log_summary.txt")


def test_an_offline_run_is_fitted_as_its_wall_time():
    """A V0 Offline run is fitted as its simulated iterations against its wall time per
    engine instance: Krai's vLLM 0.6.4 run, 24,576 samples at 53.6459 samples/s over 8
    single-GPU instances."""
    pub = _benchmark("_published")
    (m,), skipped = pub.mlperf_runs("vllm", keep=lambda r: r["source"] == KRAI50_OFFLINE
                                    and r["concurrency_or_batch"] == "max")
    assert not skipped and m.phase == "offline"
    assert m.seconds == pytest.approx(24576 / (53.6459 / 8))
    assert sum(c for c, _ in m.steps) > 24576 * 296.5 / 1024  # at least its decode steps


def test_a_v1_offline_run_is_fitted_as_its_steady_batch():
    """A V1 Offline run keeps the closed form (`_published.mlperf_runs`: simkit's V1 loop
    preempts at the memory limit with every sample queued): B = the sequences its KV memory
    holds at the run's mean decode context, each iteration lasting B / (samples/s per
    instance x mean output)."""
    pub = _benchmark("_published")
    (m,), _ = pub.mlperf_runs("vllm", keep=lambda r: r["source"] == KRAI51_OFFLINE
                              and r["concurrency_or_batch"] == "max")
    _, e_out, ctx = pub.mlperf_stats("openorca", 296.0, "llama-3.1-70b")
    # H200: 143,771 MiB (nvidia-smi) x 0.95, less Llama-3.1-70B's fp8 layers (68.45e9 weights,
    # 1 byte) and its bf16 embedding and LM head (2 x 128,256 x 8,192 x 2 bytes); 327,680
    # bytes of bf16 KV per token (80 layers x 2 x 8 heads x 128 x 2)
    room = 143771 * 2**20 * 0.95 - (70_553_706_496 - 2 * 128256 * 8192) - 2 * 128256 * 8192 * 2
    # less vLLM's profiling pass at the run's 8,121-token budget and 1,232 sequences: its
    # sampler (1,232 x 128,256 logits x 14 bytes, and the 8,121 x 8,192 bf16 hidden states)
    # holds more than its forward (8,121 x 2 x (2 x 8192 + 3 x 28,672) bytes = 1.66 GB)
    room -= 1232 * 128256 * 14 + 8121 * 8192 * 2
    # a sequence holds its mean context less the prefix cache's one copy of the shared
    # openings: 3.083 blocks of 16 on average (`test_openorca_openings_by_hand`)
    per_seq = round(ctx - OPENORCA_SHARED_BLOCKS * 16) * 327680
    b = min(1232, int(room // per_seq), int(8121 // (1 + 178.88 / e_out)))
    assert m.steps[0][1].decode_batch == b
    assert sum(w for w, _ in m.steps) == pytest.approx(1.0)
    assert m.seconds == pytest.approx(b / (104.369 / 8 * e_out))


#: Krai's Llama-3 OpenOrca prompts open with 11 template tokens and an Orca system message;
#: each message's full 16-token blocks by hand (characters / 3.94 + 11 tokens): 3: 96 chars
#: -> 35 tokens, 2 blocks; 4: 109 -> 39, 2; 6: 148 -> 49, 3; 7: 184 -> 58, 3; 8: 224 -> 68,
#: 4; 10: 267 -> 79, 4; 11: 203 -> 63, 3; 13: 164 -> 53, 3; 14: 270 -> 80, 5; 15: 400 ->
#: 113, 7; 16: 59 -> 26, 1. Each sub-collection is a quarter of the set and its messages
#: equally likely: cot {6, 11, 16}, niv {7, 13, 14, 15}, t0 {3, 7}, flan {3, 4, 7, 8, 10}
OPENORCA_SHARED_BLOCKS = ((3 + 3 + 1) / 12 + (3 + 3 + 5 + 7) / 16 + (2 + 3) / 8
                          + (2 + 2 + 3 + 4 + 4) / 20)


def test_openorca_openings_by_hand():
    """The shared openings of Krai's Llama-3 OpenOrca prompts: message 16 ("You are an AI
    assistant that helps people find information.", 59 characters) is 11 + 15 = 26 tokens;
    message 7 carries 1/16 (niv) + 1/8 (t0) + 1/20 (flan) of the set; with 16-token blocks a
    sequence shares 3.083 blocks on average, with SGLang's per-token pool every token of
    the opening. Llama-2 runs (vLLM V0, TensorRT-LLM) get none."""
    wl = _benchmark("_workloads")
    tenants = wl.openorca_system_prompts("llama-3.1-70b")
    by_tokens = {t["system_prompt_tokens"]: t["weight"] for t in tenants}
    assert sum(by_tokens.values()) == pytest.approx(1.0)
    assert by_tokens[26] == pytest.approx(1 / 12)
    assert by_tokens[58] == pytest.approx(1 / 16 + 1 / 8 + 1 / 20)
    assert wl.shared_prefix_tokens("openorca", "llama-3.1-70b") == \
        pytest.approx(OPENORCA_SHARED_BLOCKS * 16)
    assert wl.shared_prefix_tokens("openorca", "llama-3.1-70b", block_size=1) == \
        pytest.approx(sum(k * w for k, w in by_tokens.items()))
    assert wl.openorca_system_prompts("llama-2-70b") is None
    assert wl.shared_prefix_tokens("cnn_dailymail", "llama-3.1-8b") == 0


def test_openorca_runs_carry_their_openings_and_paired_answers():
    """A Llama-3 OpenOrca run is simulated with its openings as tenants, the user's tokens
    after them (the mean prompt kept) and each answer from its prompt's row; vLLM V1 and
    SGLang cache prefixes, vLLM V0 does not (its default)."""
    import numpy as np

    fid = _benchmark("fidelity")
    pub = sys.modules["_published"]
    v1 = next(r for r in fid.read_rows("throughput_mlperf_inference_v5.1_krai.csv")
              if r["source"] == KRAI51_OFFLINE)
    s = fid.serving_scenario(v1, "vllm", requests=10, rate=1.0)
    assert s.serving.prefix_caching and s.workload.output_tokens.paired
    opening = sum(t.weight * t.system_prompt_tokens for t in s.workload.tenants)
    user = np.loadtxt(s.workload.prompt_tokens.path, delimiter=",", skiprows=1)[:, 0]
    full, _ = pub.mlperf_lengths("openorca", float(v1["mean_output_tokens"]), v1["model"])
    assert user.mean() + opening == pytest.approx(full.mean(), rel=2e-3)
    v0 = next(r for r in fid.read_rows("throughput_mlperf_inference_v5.0_krai.csv")
              if r["source"] == KRAI50_OFFLINE)
    s0 = fid.serving_scenario(v0, "vllm-0.6", requests=10, rate=1.0)
    assert not s0.serving.prefix_caching and not s0.workload.tenants


# ---- vLLM V1 under KV-cache pressure (vllm-project/vllm#44594) -------------------------------

PR44594_COLUMNS = ["watermark", "preemptions", "output_tokens_per_s", "requests_per_s",
                   "ttft_p50_s", "ttft_p99_s", "itl_p99_s", "e2e_p50_s"]


def test_pr44594_file_is_the_prs_table():
    """One row per watermark the PR ran (off, 0.02, 0.05, 0.10, 0.15), preemptions falling
    as the watermark rises; each run's output tokens/s over its requests/s is the same
    ~5,000-token answer (the random dataset's 5,000 +- 20%, --ignore-eos)."""
    header, rows = _read(MEAS / "preemptions_vllm_pr44594.csv")
    assert header == PR44594_COLUMNS
    assert [float(r["watermark"]) for r in rows] == [0.0, 0.02, 0.05, 0.10, 0.15]
    counts = [_pos_int(r["preemptions"]) for r in rows]
    assert counts == sorted(counts, reverse=True)
    for r in rows:
        assert 4000 <= float(r["output_tokens_per_s"]) / float(r["requests_per_s"]) <= 6000


def test_v1_loop_preempts_as_vllm_pr44594_measured():
    """simkit's V1 loop on the PR's setup (`fidelity.pr44594_scenario`), against the PR's
    table: each watermark's preemption count within a third of the measured one, the 2%
    watermark cutting them by more than half (1,065 -> 400 measured), and each watermark's
    throughput over the run without one within 3% of the measured ratio (+0.5% to +5.1%).
    With a closed-loop client the count depends on token counts and memory, not on the GPU
    or the engine's step times: the roofline gives the same."""
    from simkit.sim import simulate

    fid = _benchmark("fidelity")
    rows = _read(MEAS / "preemptions_vllm_pr44594.csv")[1]
    sims = [simulate(fid.pr44594_scenario(float(r["watermark"]))).summary for r in rows]
    for r, s in zip(rows, sims):
        assert s["requests_completed"] == 450
        assert abs(s["preemptions"] / float(r["preemptions"]) - 1) < 1 / 3, r["watermark"]
    assert sims[1]["preemptions"] < sims[0]["preemptions"] / 2
    base_sim, base_meas = sims[0]["throughput_tokens_per_s"], float(rows[0]["output_tokens_per_s"])
    for r, s in zip(rows[1:], sims[1:]):
        gain_sim = s["throughput_tokens_per_s"] / base_sim
        gain_meas = float(r["output_tokens_per_s"]) / base_meas
        assert gain_sim / gain_meas == pytest.approx(1, abs=0.03), r["watermark"]
    roof = simulate(fid.pr44594_scenario(0.0, profile="roofline")).summary
    assert roof["preemptions"] == sims[0]["preemptions"]



# --- this project's H200 measurements (benchmarks/gpu/measure.py) -----------------------

#: Qwen2.5-7B's shapes (huggingface.co/Qwen/Qwen2.5-7B-Instruct/config.json: 28 layers,
#: hidden 3584, 28 heads x 128, 4 KV heads x 128, intermediate 18944, vocabulary 152064)
DENSE_QWEN = (28, 3584, 3584, 512, 18944, 152064)
#: one GPU's share of Llama-3.1-70B at tensor parallelism 8: its heads, KV heads and FFN
#: columns split eight ways, its LM head by vocabulary rows
SHARE_70B_TP8 = (80, 8192, 8192 // 8, 1024 // 8, 28672 // 8, 128256 // 8)


def _weights(shape) -> tuple[int, int]:
    layers, d, q, kv, ffn, vocab = shape
    return layers * (d * q + 2 * d * kv + q * d + 3 * d * ffn), vocab * d


def _h200_floors_s(shape, phase, batch, prompt):
    """(compute floor, weight-read floor) of one step in bf16 on an H200's datasheet
    (989.5 TFLOP/s dense, 4.8 TB/s)."""
    n, head = _weights(shape)
    if phase == "prefill":
        return 2 * n * batch * prompt / 989.5e12, 2 * (n + head) / 4.8e12
    return 2 * (n + head) * batch / 989.5e12, 2 * (n + head) / 4.8e12


def test_h200_step_rows_respect_the_roofs():
    """No measured H200 step beats its datasheet compute or weight-read floor."""
    shapes = {"llama-3.1-8b": DENSE["llama-3.1-8b"], "qwen2.5-7b": DENSE_QWEN}
    rows = _read(MEAS / "steps_h200_pytorch.csv")[1]
    assert {r["model"] for r in rows} == set(shapes)
    for r in rows:
        assert r["hardware"] == "h200" and r["tensor_parallel"] == "1", r
        floor = _h200_floors_s(shapes[r["model"]], r["phase"], int(r["batch_size"]),
                               int(r["prompt_tokens"]))
        assert float(r["seconds"]) >= max(floor), r
    header, detail = _read(MEAS / "steps_detail_h200_pytorch.csv")
    assert header == ["model", "tensor_parallel", "shard_only", "phase", "batch_size",
                      "prompt_tokens", "context_tokens", "seconds", "timed_as", "attention",
                      "flash_seconds", "cudnn_seconds"]
    shares = [r for r in detail if r["shard_only"] == "1"]
    assert shares and all(r["tensor_parallel"] == "8" for r in shares)
    for r in detail:
        # the kept time is the faster of the two attention backends
        t = {k: float(r[f"{k}_seconds"]) for k in ("flash", "cudnn")}
        assert float(r["seconds"]) == min(t.values()) and r["attention"] == min(t, key=t.get)
        shape = SHARE_70B_TP8 if r["shard_only"] == "1" else \
            {"llama-3.1-8b": DENSE["llama-3.1-8b"], "qwen2.5-7b": DENSE_QWEN}[r["model"]]
        floor = _h200_floors_s(shape, r["phase"], int(r["batch_size"]), int(r["prompt_tokens"]))
        assert float(r["seconds"]) >= max(floor), r
    chunked = _read(MEAS / "steps_chunked_h200_pytorch.csv")[1]
    assert chunked and all(int(r["context_tokens"]) > 0 for r in chunked)
    for r in chunked:  # no faster than the chunk's weight GEMMs at the peak
        floor = _h200_floors_s(DENSE["llama-3.1-8b"], "prefill", int(r["batch_size"]),
                               int(r["prompt_tokens"]))
        assert float(r["seconds"]) >= max(floor), r
    header, detail = _read(MEAS / "steps_detail_chunked_h200_pytorch.csv")
    kinds = [c.removesuffix("_seconds") for c in header if c.endswith("_seconds") and c !=
             "seconds"]
    assert len(detail) == len(chunked)
    for r, c in zip(detail, chunked):
        t = {k: float(r[f"{k}_seconds"]) for k in kinds if r[f"{k}_seconds"]}
        best = min(t, key=t.get)
        assert r["seconds"] == c["seconds"] and float(r["seconds"]) == t[best]
        assert r["attention"] == best and not best.endswith("expand")
    for r in _read(MEAS / "steps_mixed_h200_pytorch.csv")[1]:
        tokens = int(r["decodes"]) + int(r["prefill_tokens"])
        floor = _h200_floors_s(DENSE["llama-3.1-8b"], "prefill", 1, tokens)
        assert float(r["seconds"]) >= max(floor), r


def test_h200_kernel_rows_respect_the_roofs():
    """Every GEMM is no faster than its FLOPs at the dtype's dense peak (bf16 989.5, fp8
    1,979 TFLOP/s) nor than reading its weight at 4.8 TB/s; its rate columns are its own
    arithmetic. Every attention kernel is no faster than its FLOPs at the bf16 peak (prefill)
    or than reading its K and V at 4.8 TB/s (decode)."""
    peak, elem = {"bf16": 989.5e12, "fp8": 1979e12}, {"bf16": 2, "fp8": 1}
    rows = _read(MEAS / "kernels_h200_gemm.csv")[1]
    assert {r["dtype"] for r in rows} == {"bf16", "fp8"}
    for r in rows:
        m, k, n, s = int(r["tokens"]), int(r["k"]), int(r["n"]), float(r["seconds"])
        assert s >= 2 * m * k * n / peak[r["dtype"]], r
        assert s >= k * n * elem[r["dtype"]] / 4.8e12, r
        assert float(r["tflops"]) == pytest.approx(2 * m * k * n / s / 1e12, rel=1e-3), r
    for r in _read(MEAS / "kernels_h200_attention.csv")[1]:
        b, n, hq, hkv, hd = (int(r[c]) for c in ("batch", "tokens", "q_heads", "kv_heads",
                                                   "head_dim"))
        s = float(r["seconds"])
        if r["phase"] == "prefill":
            assert s >= 2 * 2 * b * hq * hd * n * n / 2 / 989.5e12, r
        else:
            assert s >= 2 * b * hkv * n * hd * 2 / 4.8e12, r


def test_h200_memory_is_what_the_driver_reported():
    """The catalog's H200 memory (from a published nvidia-smi) is what this project's H200
    reported: 143771 MiB."""
    import json

    from simkit.catalog import load_hardware

    runs = json.loads((MEAS / "h200_pytorch_runs.json").read_text())
    smi = runs["machine"]["nvidia_smi"].split(", ")
    assert smi[0] == "NVIDIA H200" and smi[2] == "143771 MiB"
    assert load_hardware("h200").memory_capacity_bytes == 143771 * 2**20


def _h200_designs():
    """(uniform steps, mixed steps, prompts after a cache, TP-8 share measurements), as
    `benchmarks/fidelity.py` reads them (`h200_unseen`)."""
    from simkit.calibrate.measurements import Design, read_measurements

    unseen = _benchmark("fidelity").h200_unseen()
    uniform = read_measurements(MEAS / "steps_h200_pytorch.csv")
    mixed = [m for m, k in unseen if k == "mixed"]
    chunked = [m for m, k in unseen if k == "prefill after cache"]
    shares = [m for m, k in unseen if k.startswith("TP-8 share")]
    assert (len(mixed), len(chunked), len(shares)) == (12, 8, 35)
    assert all(m.setup.tensor_parallel == 8 for m in shares)
    return Design(uniform), Design(mixed), Design(chunked), shares


def _median_abs(err) -> float:
    import numpy as np

    return float(np.median(np.abs(err)))


def test_h200_steps_are_what_the_formula_fits():
    """THE step-time formula, fitted as `simkit calibrate --measurements` fits it, predicts
    this project's H200 steps it did not see within the issue's targets: held out by 5 folds
    and by leaving a model out within 15% median per phase, and a step it never saw the
    like of -- decodes beside a prompt's prefill -- within 10%, and prompts after a cached
    prefix within 15%."""
    from simkit.calibrate.engine_fit import calibrate_engine
    from simkit.costs.engine import ROOFLINE

    uniform, mixed, chunked, _ = _h200_designs()
    cal = calibrate_engine(uniform, ROOFLINE, "h200-pytorch")
    for split in ("k-fold", "leave one model out"):
        for phase, st in cal.heldout[split].items():
            assert st.median_abs <= 0.15, (split, phase, st)
    assert _median_abs(mixed.predict(cal.profile) / mixed.seconds - 1) <= 0.10
    # prompts after a cached prefix: held out, within the held-out 15%
    assert _median_abs(chunked.predict(cal.profile) / chunked.seconds - 1) <= 0.15


def test_h200_layer_and_step_costs_part_with_an_80_layer_model():
    """With models of 28 and 32 layers alone, a fixed cost per layer and one per step cannot
    be told apart; one GPU's share of Llama-3.1-70B at TP 8 (80 layers, no all-reduce) tells
    them apart, and the formula then fits all three within the issue's 10% per phase, with a
    per-layer cost of tens of microseconds (an unfused layer's dozen small kernels)."""
    from dataclasses import replace

    import numpy as np

    from simkit.calibrate.engine_fit import FITTED, PRIOR_WEIGHT, fit_constants
    from simkit.calibrate.measurements import Design
    from simkit.costs.engine import ROOFLINE

    uniform, _, _, shares = _h200_designs()
    alone = replace(_benchmark("fidelity").without_allreduce(ROOFLINE), moe_kernels=True)
    both = Design(uniform.measurements + shares)
    fitted = tuple(k for k in FITTED if not k.startswith("allreduce"))
    prof = fit_constants(both, alone, None, fitted, PRIOR_WEIGHT)
    err = both.predict(prof) / both.seconds - 1
    tp = np.array([m.setup.tensor_parallel for m in both.measurements])
    for part in (tp == 1, tp == 8):
        for phase in ("prefill", "decode"):
            assert _median_abs(err[part & (both.phase == phase)]) <= 0.10, (part, phase)
    assert 20e-6 <= prof.layer_overhead_s <= 200e-6


def test_measured_gemms_need_no_width_factor_beside_a_latency_per_gemm():
    """`benchmarks/fit_gemm_shape.py` on the H200's 660 bf16 GEMMs: with a fixed latency per
    GEMM (a few microseconds), the formula's token and width half-points fit to (nearly)
    zero and TP-8 GEMMs come out within 5% signed; held at `vllm`'s half-points (16.3 tokens,
    262 columns) TP-8 GEMMs come out more than 5% slow."""
    import numpy as np

    from simkit.catalog import load_hardware

    g = _benchmark("fit_gemm_shape")
    hw = load_hardware("h200")
    peak = hw.peak_for("bf16") * hw.compute_efficiency
    bw = hw.memory_bandwidth_bytes_per_s * hw.memory_efficiency
    c = g.load("bf16")
    assert len(c["seconds"]) == 660
    tp8 = c["tensor_parallel"] == 8
    free = g.fit(c, "width", peak, bw, 2)
    assert free[2] < 64 and 1e-6 < free[5] < 10e-6, free
    err = g.model_s(free, c, "width", peak, bw, 2) / c["seconds"] - 1
    assert abs(np.median(err[tp8])) < 0.05 and np.median(np.abs(err)) < 0.10
    held = g.fit(c, "width", peak, bw, 2, {1: 16.3, 2: 262.0})
    err = g.model_s(held, c, "width", peak, bw, 2) / c["seconds"] - 1
    assert np.median(err[tp8]) > 0.05


@pytest.mark.parametrize("argv", [["--prior", "gemm_width_half=16", "splitwise-2023"],
                                  ["--check", "--prior", "no_such=1", "splitwise-2023"],
                                  ["--check", "--prior", "gemm_width_half=wide"]])
def test_fit_engines_prior_studies_are_checked_and_never_written(argv, capsys):
    """`--prior` moves a prior's centre for a study: only with --check, a known constant, a
    number -- one line and exit 2 otherwise, before any fit."""
    fe = _benchmark("fit_engines")
    with pytest.raises(SystemExit) as e:
        fe.main(argv)
    assert e.value.code == 2 and "--prior" in capsys.readouterr().err
