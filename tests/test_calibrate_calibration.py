"""A tiny calibration run end to end: result shape, the profile it writes, the CLI.

Sizes are tiny so the run takes about a second; assertions are on structure and on
relations that hold whatever the timing noise (no measured number is compared to a
constant)."""

import json
import math
import tomllib

import pytest

from simkit import cli
from simkit.calibrate import calibration, kernels, profile
from simkit.calibrate.counts import KernelShape
from simkit.catalog.hardware import load_hardware

TINY = calibration.CalibrationPlan(
    shape=KernelShape(heads=2, d_qk=16, d_v=16, window=32, global_tokens=4, memory_slots=8,
                      segment=32, linear_chunk=16, tile=32, d_inner=16, d_state=4, d_conv=3),
    n_grid=(64, 128, 256), batch_grid=(2,), decode_heads=2, decode_contexts=(256, 512, 1024),
    gemm_size=128, copy_bytes=2**20, repeats=2, warmup=1)


@pytest.fixture(scope="module")
def tiny_result():
    return calibration.run_calibration(plan=TINY, seed=0)


def _finite(x):
    return isinstance(x, (int, float)) and math.isfinite(x)


def test_result_has_every_family_and_documented_fields(tiny_result):
    d = tiny_result.to_dict()
    json.dumps(d, allow_nan=False)  # plain data
    assert d["gemm_flops_per_s"] > 0 and d["copy_bytes_per_s"] > 0
    assert set(d["kernels"]) == set(kernels.FAMILIES)
    for fam, k in d["kernels"].items():
        for key in ("exponent", "flops_per_s", "heldout_rel_error", "overhead_s",
                    "fraction_of_gemm", "kernel_flops_per_s"):
            assert _finite(k[key]), (fam, key)
        lo, hi = k["exponent_ci"]
        assert lo <= k["exponent"] <= hi
        assert k["flops_per_s"] > 0 and k["overhead_s"] >= 0
        assert k["fraction_of_gemm"] == pytest.approx(k["flops_per_s"] / d["gemm_flops_per_s"])
        # 3 lengths at batch 1 + 1 batch point
        assert [(p["n"], p["batch"]) for p in k["points"]] == [(64, 1), (128, 1), (256, 1),
                                                               (128, 2)]
        assert all(p["kernel_flops"] >= p["model_flops"] > 0 for p in k["points"])
    dec = d["decode"]
    assert dec["bytes_per_s"] > 0 and 0 < dec["memory_efficiency"] <= 1
    assert set(dec["families"]) == set(kernels.FAMILIES)
    assert 0 < d["compute_efficiency"] <= 1
    assert d["machine"]["blas_threads"] >= 1


def test_sizes_override_the_grid():
    r = calibration.run_calibration(plan=TINY, sizes=[32, 48, 96])
    assert r.plan == "custom"
    assert [p["n"] for p in r.kernels["window"].points if p["batch"] == 1] == [32, 48, 96]
    with pytest.raises(ValueError):
        calibration.run_calibration(plan=TINY, sizes=[32, 64])


def test_profile_round_trips_through_load_hardware(tiny_result, tmp_path):
    path = profile.write_profile(tiny_result, tmp_path / "here.toml", name="my-cpu")
    hw = load_hardware(str(path))
    assert hw.name == "my-cpu" and hw.calibrated
    assert set(hw.peak_flops_per_s) >= {"fp32", "fp16", "bf16"}
    assert all(v == tiny_result.gemm_flops_per_s for v in hw.peak_flops_per_s.values())
    assert hw.memory_bandwidth_bytes_per_s == tiny_result.copy_bytes_per_s
    assert hw.memory_capacity_bytes == tiny_result.ram_bytes > 0
    assert hw.compute_efficiency == pytest.approx(tiny_result.compute_efficiency)
    assert hw.memory_efficiency == pytest.approx(tiny_result.decode.memory_efficiency)
    assert hw.step_overhead_s == tiny_result.decode.overhead_s
    assert "GEMM" in hw.source
    cal = hw.calibration
    assert set(cal["kernels"]) == set(kernels.FAMILIES)
    assert cal["kernels"]["full"]["flops_per_s"] == tiny_result.kernels["full"].flops_per_s

    def scalars(t):
        for v in t.values():
            if isinstance(v, dict):
                yield from scalars(v)
            else:
                yield v
    assert all(isinstance(v, (int, float, str)) for v in scalars(cal))
    # the file is plain TOML with the HardwareProfile keys
    assert tomllib.loads(path.read_text())["calibrated"] is True


def test_profile_path_errors_are_simkit_errors(tmp_path):
    from simkit.errors import SimkitError

    with pytest.raises(SimkitError, match="-o: directory"):
        profile.check_writable(tmp_path / "missing" / "p.toml")
    with pytest.raises(SimkitError, match=r"\.toml"):
        profile.check_writable(tmp_path / "p.json")


def test_cli_calibrate_writes_a_profile_that_cost_accepts(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(calibration, "QUICK_PLAN", TINY)
    out = tmp_path / "cpu.toml"
    assert cli.main(["calibrate", "--quick", "-o", str(out), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["gemm_flops_per_s"] > 0
    for fam in ("full", "window", "sparse", "linear", "memory", "ssm"):
        assert set(printed["kernels"][fam]) >= {"exponent", "exponent_ci", "flops_per_s",
                                                "heldout_rel_error"}
    assert out.is_file()
    assert cli.main(["cost", "llama-2-7b", "--hardware", str(out), "--json"]) == 0
    cost = json.loads(capsys.readouterr().out)
    assert cost["prefill_seconds"] > 0


def test_cli_calibrate_bad_output_fails_before_timing(monkeypatch, tmp_path, capsys):
    def boom(**kw):
        raise AssertionError("must not run")

    monkeypatch.setattr(calibration, "run_calibration", boom)
    assert cli.main(["calibrate", "--quick", "-o", str(tmp_path / "no" / "x.toml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "-o/--output" in err
    assert not (tmp_path / "no").exists()
