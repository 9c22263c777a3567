"""Hardware catalog against datasheets (dense = sparse / 2), driver-reported memory, published
achievable fractions, dated prices, and the profile file format.

Every expected figure below is written from its source (datasheet, nvidia-smi / rocm-smi output,
benchmark table, price page), never taken from simkit.
"""

import re

import pytest

from simkit.catalog.hardware import (CATALOG, DEFAULT_COMPUTE_EFFICIENCY,
                                     DEFAULT_MEMORY_EFFICIENCY, PCIE4_X16_BYTES_PER_S,
                                     PCIE5_X16_BYTES_PER_S, load_hardware, profile_to_toml)
from simkit.errors import SimkitError

HW_IDS = {"hw-a100-80gb-sxm": "a100-80gb", "hw-a100-40gb-sxm": "a100-40gb",
          "hw-h100-sxm": "h100-sxm", "hw-h200-sxm": "h200", "hw-l4": "l4",
          "hw-mi300x": "mi300x"}

# Total device memory as the driver reports it, in MiB (x 2**20 bytes), with where it was read.
DRIVER_MIB = {
    "a100-40gb": (40960, "nvidia-smi, bottlerocket-os/bottlerocket-core-kit PR #834"),
    "a100-80gb": (81920, "nvidia-smi, modal-labs/modal-client PR #2797"),
    "h100-sxm": (81559, "nvidia-smi 'NVIDIA H100 80GB HBM3', NVIDIA/nccl issue #1264"),
    "h100-pcie": (81559, "nvidia-smi 'NVIDIA H100 PCIe', beomi/bitnet-transformers README"),
    "h200": (143771, "nvidia-smi 'NVIDIA H200', sgl-project/sglang issue #3196"),
    "b200": (183359, "nvidia-smi 'NVIDIA B200', NVIDIA/TensorRT-LLM issue #10278"),
    "l4": (23034, "nvidia-smi 'NVIDIA L4', thamada/nvidia-smi gls/L4_smi.py"),
    "l40s": (46068, "nvidia-smi 'NVIDIA L40S', thamada/nvidia-smi nvsim/L40S_smi.py"),
    # rocm-smi 'VRAM Total Memory (B): 206141652992', ROCm/legacy-rocm-build issue #4750
    "mi300x": (206141652992 // 2**20, "rocm-smi bytes / 2**20"),
    # rocminfo GPU pool 'Size: 268419072 KB' on an MI325X, ROCm/rocm-systems issue #8263
    "mi325x": (268419072 * 1024 // 2**20, "rocminfo KB x 1024 / 2**20"),
}
# The marketing capacity, which is GiB of physical memory (the driver shows it or a bit less).
MARKETING_GIB = {"a100-40gb": 40, "a100-80gb": 80, "h100-sxm": 80, "h100-pcie": 80,
                 "h200": 141, "b200": 180, "l4": 24, "l40s": 48, "mi300x": 192, "mi325x": 256}

# Datasheets of the GPUs that are not in the shared reference set: sparse and dense figures
# as printed (TFLOPS), memory bandwidth (GB/s) and GPU-to-GPU link (GB/s, per direction).
NEW_DATASHEETS = {
    # NVIDIA HGX B200 per-GPU table: FP16/BF16 4.5 PF and FP8 9 PF "with sparsity"; 7.7 TB/s
    # (7,680-bit bus x 3,996 MHz x 2 = 7.67 TB/s, pytorch/ao PR #4002); NVLink 5 1.8 TB/s.
    "b200": {"bf16_sparse": 4500, "fp8_sparse": 9000, "bw": 7700, "link": 1800 / 2},
    # NVIDIA H100 datasheet, PCIe column: BF16 1,513*, FP8 3,026*; 2 TB/s; PCIe Gen5 x16.
    "h100-pcie": {"bf16_sparse": 1513, "fp8_sparse": 3026, "bw": 2000, "link": 63.0},
    # NVIDIA L40S datasheet: BF16 733*, FP8 1,466*; 864 GB/s; PCIe Gen4 x16, no NVLink.
    "l40s": {"bf16_sparse": 733, "fp8_sparse": 1466, "bw": 864, "link": 31.5},
    # AMD MI325X: FP16/BF16 1,307.4 dense / 2,614.9 sparse, FP8 2,614.9 / 5,229.8; 6 TB/s;
    # 7 Infinity Fabric links x 128 GB/s = 896 GB/s aggregate.
    "mi325x": {"bf16_dense": 1307.4, "bf16_sparse": 2614.9, "fp8_sparse": 5229.8, "bw": 6000,
               "link": 7 * 128 / 2},
}

# Published measurements: (achieved, dense peak) for the bf16 GEMM and the HBM stream, or None
# where none was found and the default must apply.
MAMF = {"a100": (271.2, 312), "h100": (794.5, 989.5), "b200": (1745.0, 2250),
        "mi300x": (668.4, 1307.4), "mi325x": (784.9, 1307.4)}  # stas00/ml-engineering table
MEASURED = {
    "a100-40gb": (MAMF["a100"], (1375, 1555)),  # RRZE-HPC/gpu-benches gpu-stream a100_40 triad
    "a100-80gb": (MAMF["a100"], (1794, 2039)),  # gpu-stream a100_80 triad
    "h100-sxm": (MAMF["h100"], (3000, 3350)),  # FlashMLA decode on H800 SXM5, same HBM3
    "h100-pcie": ((495.93, 756.5), (1832, 2000)),  # torch-perf-test-data #95; gpu-stream
    "h200": (MAMF["h100"], (4150, 4800)),  # MAMF: "H200 is the same"; Azure ND H200 v5 triad
    "b200": (MAMF["b200"], (0.90, 1)),  # arXiv:2510.27583: "up to 90% ... B200"
    "l4": ((70.89, 121), None),  # torch-perf-test-data #120
    "l40s": ((269.15, 366.5), (831, 864)),  # torch-perf-test-data #43; gpu-stream on L40
    "mi300x": (MAMF["mi300x"], (0.81, 1)),  # arXiv:2510.27583: 81% of 5.3 TB/s
    "mi325x": (MAMF["mi325x"], None),
}

# On-demand list prices: (instance USD/h, GPUs per instance, a date it was read).
PRICES = {
    "a100-40gb": (1.99, 1, "2026-09-20"),  # Lambda, quoted per GPU for 8x A100 SXM 40 GB
    "a100-80gb": (21.60, 8, "2026-09-20"),  # CoreWeave A100 x8
    "h100-sxm": (49.24, 8, "2026-09-20"),  # CoreWeave HGX H100
    "h100-pcie": (3.29, 1, "2026-09-20"),  # Lambda 1x H100 PCIe
    "h200": (50.44, 8, "2026-09-20"),  # CoreWeave HGX H200
    "b200": (68.80, 8, "2026-09-20"),  # CoreWeave HGX B200
    "l4": (0.81, 1, "2025-07-13"),  # GCP g2-standard-4 per carsonpo/gpus
    "l40s": (18.00, 8, "2026-09-20"),  # CoreWeave L40S x8
    "mi300x": (1.50, 1, "2026-05-18"),  # TensorWave per cliffcenter.com note
    "mi325x": (1.95, 1, "2026-05-18"),  # TensorWave per cliffcenter.com note
}


def test_catalog_names():
    assert set(CATALOG) == set(DRIVER_MIB)
    for name in ("b200", "h100-pcie", "l40s", "mi325x"):
        assert load_hardware(name).name == name


@pytest.mark.parametrize("hw_id", sorted(HW_IDS))
def test_matches_datasheet(hw_id, published):
    e = published[hw_id]["expected"]
    tol = max(published[hw_id]["tolerance"], 1e-9)
    hw = load_hardware(HW_IDS[hw_id])
    assert hw.peak_for("bf16") == pytest.approx(e["fp16_bf16_dense_TFLOPS"] * 1e12, rel=tol)
    assert hw.memory_bandwidth_bytes_per_s == pytest.approx(e["mem_bw_GBps"] * 1e9, rel=tol)
    assert MARKETING_GIB[hw.name] == e["mem_GB"]  # the reference set's "GB" is this figure
    if "fp16_bf16_sparse_TFLOPS" in e:  # the trap: datasheets quote sparse throughput
        assert hw.peak_for("bf16") == pytest.approx(e["fp16_bf16_sparse_TFLOPS"] * 1e12 / 2,
                                                    rel=max(tol, 1e-3))
    if "fp8_dense_TFLOPS" in e:
        assert hw.peak_for("fp8") == pytest.approx(e["fp8_dense_TFLOPS"] * 1e12, rel=tol)
    if "nvlink_GBps" in e:  # bidirectional per GPU; we store one direction
        assert hw.interconnect_bytes_per_s == pytest.approx(e["nvlink_GBps"] * 1e9 / 2)
    assert hw.source


@pytest.mark.parametrize("name", sorted(NEW_DATASHEETS))
def test_new_gpus_match_datasheet(name):
    d, hw = NEW_DATASHEETS[name], load_hardware(name)
    assert hw.peak_for("bf16") == pytest.approx(d["bf16_sparse"] * 1e12 / 2, rel=1e-3)
    assert hw.peak_for("fp16") == hw.peak_for("bf16")
    assert hw.peak_for("fp8") == pytest.approx(d["fp8_sparse"] * 1e12 / 2, rel=1e-3)
    if "bf16_dense" in d:  # AMD prints both; they agree to the rounding of the sheet
        assert hw.peak_for("bf16") == pytest.approx(d["bf16_dense"] * 1e12)
    assert hw.memory_bandwidth_bytes_per_s == pytest.approx(d["bw"] * 1e9)
    assert hw.interconnect_bytes_per_s == pytest.approx(d["link"] * 1e9)
    assert hw.host_link_bytes_per_s in (PCIE4_X16_BYTES_PER_S, PCIE5_X16_BYTES_PER_S)


@pytest.mark.parametrize("name", sorted(DRIVER_MIB))
def test_memory_is_what_the_driver_reports(name):
    mib, _where = DRIVER_MIB[name]
    hw = load_hardware(name)
    assert hw.memory_capacity_bytes == mib * 2**20
    # the marketing "GB" is GiB of physical memory: the driver shows all of it or a little less
    physical = MARKETING_GIB[name] * 2**30
    assert 0.93 * physical <= hw.memory_capacity_bytes <= physical
    assert f"{mib}" in hw.source.replace(",", "")  # the driver figure is quoted with its source


def test_driver_figures_in_bytes():
    """The AMD totals come as bytes / KB: the MiB figures above are exact conversions."""
    assert 196592 * 2**20 == 206141652992
    assert 262128 * 2**20 == 268419072 * 1024
    assert 201310208 * 1024 == 206141652992  # rocminfo's pool equals rocm-smi's total on MI300X


@pytest.mark.parametrize("name", sorted(MEASURED))
def test_efficiencies_are_published_measurements(name):
    hw = load_hardware(name)
    compute, memory = MEASURED[name]
    assert 0 < hw.compute_efficiency <= 1 and 0 < hw.memory_efficiency <= 1
    assert hw.compute_efficiency == pytest.approx(compute[0] / compute[1], rel=1e-12)
    if memory is None:
        assert hw.memory_efficiency == DEFAULT_MEMORY_EFFICIENCY
        assert "no published STREAM-like measurement" in hw.efficiency_source
    else:
        assert hw.memory_efficiency == pytest.approx(memory[0] / memory[1], rel=1e-12)
    assert hw.efficiency_source


def test_defaults_remain_the_documented_fallback(tmp_path):
    p = tmp_path / "plain.toml"
    p.write_text('name = "plain"\nmemory_bandwidth_bytes_per_s = 1e12\n'
                 'memory_capacity_bytes = 1e9\n[peak_flops_per_s]\nbf16 = 1e12\n')
    hw = load_hardware(p)
    assert (hw.compute_efficiency, hw.memory_efficiency) == (DEFAULT_COMPUTE_EFFICIENCY,
                                                             DEFAULT_MEMORY_EFFICIENCY)
    assert hw.efficiency_source == "" and hw.price_per_gpu_hour == 0.0 and not hw.has_price


@pytest.mark.parametrize("name", sorted(PRICES))
def test_prices_are_dated_list_prices(name):
    instance_usd_per_h, gpus, date = PRICES[name]
    hw = load_hardware(name)
    assert hw.has_price and hw.price_per_gpu_hour > 0
    assert hw.price_per_gpu_hour == pytest.approx(instance_usd_per_h / gpus)
    assert date in hw.price_source
    assert re.search(r"\b20\d\d-\d\d-\d\d\b", hw.price_source)


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_profile_toml_round_trip(name, tmp_path):
    p = tmp_path / f"{name}.toml"
    text = profile_to_toml(CATALOG[name])
    for key in ("efficiency_source", "price_per_gpu_hour", "price_source"):
        assert re.search(rf"^{key} = ", text, re.M)
    p.write_text(text)
    assert load_hardware(p) == CATALOG[name]


def test_priced_profile_file(tmp_path):
    p = tmp_path / "mine.toml"
    p.write_text('name = "mine"\nmemory_bandwidth_bytes_per_s = 1e12\n'
                 'memory_capacity_bytes = 1e9\nprice_per_gpu_hour = 1.8\n'
                 'price_source = "our contract, read 2026-11-30"\n'
                 'efficiency_source = "measured by us"\n[peak_flops_per_s]\nbf16 = 1e12\n')
    hw = load_hardware(p)
    assert (hw.price_per_gpu_hour, hw.price_source) == (1.8, "our contract, read 2026-11-30")
    assert hw.efficiency_source == "measured by us" and hw.has_price


def test_ideal_profile_has_no_losses():
    h = load_hardware("h100-sxm").ideal()
    assert (h.compute_efficiency, h.memory_efficiency, h.step_overhead_s) == (1.0, 1.0, 0.0)
    b = load_hardware("b200").ideal()
    assert (b.fp4_gemm_efficiency, b.fp4_stream_efficiency) == (1.0, 1.0)


def test_nvfp4_runs_on_fp4_tensor_cores_only_where_there_are_some(tmp_path):
    """B200 has an FP4 peak (9 PFLOP/s dense, NVIDIA's HGX table); H100 has none, so NVFP4
    weights dequantize to its 16-bit peak. A user profile with an fp4 peak gets its factors."""
    assert load_hardware("b200").gemm_dtype("nvfp4") == "fp4"
    assert load_hardware("b200").peak_for("nvfp4") == 9000e12
    assert load_hardware("h100-sxm").gemm_dtype("nvfp4") == "bf16"
    assert load_hardware("h100-sxm").peak_for("nvfp4") == 989.5e12
    p = tmp_path / "fp4.toml"
    p.write_text(HEAD + "fp4_gemm_efficiency = 0.5\nfp4_stream_efficiency = 0.25\n"
                 + TAIL + "fp4 = 4e12\n")
    assert load_hardware(p).low_precision_factors("nvfp4", 0.8) == (0.8 * 0.5, 0.25)
    assert load_hardware(p).low_precision_factors("bf16", 0.8) == (1.0, 1.0)


HEAD = 'name = "x"\nmemory_bandwidth_bytes_per_s = 1e12\nmemory_capacity_bytes = 1e9\n'
TAIL = '[peak_flops_per_s]\nbf16 = 1e12\n'


@pytest.mark.parametrize("line, message", [
    ("price_per_gpu_hour = -1", "bad.toml.price_per_gpu_hour: must be a number >= 0"),
    ('price_per_gpu_hour = "cheap"', "bad.toml.price_per_gpu_hour: must be a number >= 0"),
    ("price_per_gpu_hour = 2.0", "bad.toml.price_source: required when price_per_gpu_hour > 0"),
    ("price_source = 3", "bad.toml.price_source: must be a string"),
    ("efficiency_source = true", "bad.toml.efficiency_source: must be a string"),
    ("compute_efficiency = 1.5", "bad.toml.compute_efficiency: must be a number > 0 and <= 1"),
    ("memory_efficiency = 0", "bad.toml.memory_efficiency: must be a number > 0 and <= 1"),
    ("fp4_gemm_efficiency = 2", "bad.toml.fp4_gemm_efficiency: must be a number > 0 and <= 1"),
    ('colour = "red"', "bad.toml.colour: unknown key"),
])
def test_bad_profile_fields(tmp_path, line, message):
    p = tmp_path / "bad.toml"
    p.write_text(HEAD + line + "\n" + TAIL)
    with pytest.raises(SimkitError) as e:
        load_hardware(p)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_bad_profiles(tmp_path):
    with pytest.raises(SimkitError, match="unknown hardware"):
        load_hardware("tpu-v9")
    with pytest.raises(SimkitError, match="no such profile file"):
        load_hardware(tmp_path / "nope.toml")
    p = tmp_path / "bad.toml"
    p.write_text('name = "x"\nmemory_bandwidth_bytes_per_s = -1\nmemory_capacity_bytes = 1e9\n'
                 'colour = "red"\n[peak_flops_per_s]\nbf16 = 1e12\n')
    with pytest.raises(SimkitError) as e:
        load_hardware(p)
    assert "bad.toml.colour: unknown key" in str(e.value)
    p.write_text('name = "x"\nmemory_bandwidth_bytes_per_s = -1\nmemory_capacity_bytes = 1e9\n'
                 '[peak_flops_per_s]\nbf16 = 1e12\n')
    with pytest.raises(SimkitError, match="memory_bandwidth_bytes_per_s: must be a number > 0"):
        load_hardware(p)
    p.write_text("not = [toml")
    with pytest.raises(SimkitError, match="not valid TOML"):
        load_hardware(p)
