"""Hardware catalog against datasheets (dense = sparse / 2) and the profile file format."""

import pytest

from simkit.catalog.hardware import CATALOG, load_hardware, profile_to_toml
from simkit.errors import SimkitError

HW_IDS = {"hw-a100-80gb-sxm": "a100-80gb", "hw-a100-40gb-sxm": "a100-40gb",
          "hw-h100-sxm": "h100-sxm", "hw-h200-sxm": "h200", "hw-l4": "l4",
          "hw-mi300x": "mi300x"}


@pytest.mark.parametrize("hw_id", sorted(HW_IDS))
def test_matches_datasheet(hw_id, published):
    e = published[hw_id]["expected"]
    tol = max(published[hw_id]["tolerance"], 1e-9)
    hw = load_hardware(HW_IDS[hw_id])
    assert hw.peak_for("bf16") == pytest.approx(e["fp16_bf16_dense_TFLOPS"] * 1e12, rel=tol)
    assert hw.memory_bandwidth_bytes_per_s == pytest.approx(e["mem_bw_GBps"] * 1e9, rel=tol)
    assert hw.memory_capacity_bytes == pytest.approx(e["mem_GB"] * 1e9, rel=tol)
    if "fp16_bf16_sparse_TFLOPS" in e:  # the trap: datasheets quote sparse throughput
        assert hw.peak_for("bf16") == pytest.approx(e["fp16_bf16_sparse_TFLOPS"] * 1e12 / 2,
                                                    rel=max(tol, 1e-3))
    if "fp8_dense_TFLOPS" in e:
        assert hw.peak_for("fp8") == pytest.approx(e["fp8_dense_TFLOPS"] * 1e12, rel=tol)
    if "nvlink_GBps" in e:  # bidirectional per GPU; we store one direction
        assert hw.interconnect_bytes_per_s == pytest.approx(e["nvlink_GBps"] * 1e9 / 2)
    assert hw.source


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_profile_toml_round_trip(name, tmp_path):
    p = tmp_path / f"{name}.toml"
    p.write_text(profile_to_toml(CATALOG[name]))
    assert load_hardware(p) == CATALOG[name]


def test_ideal_profile_has_no_losses():
    h = load_hardware("h100-sxm").ideal()
    assert (h.compute_efficiency, h.memory_efficiency, h.step_overhead_s) == (1.0, 1.0, 0.0)


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
