"""Turn a calibration into a `HardwareProfile` ("this machine") and write it as TOML.

The profile loads with `simkit.catalog.hardware.load_hardware(path)`, so `--hardware FILE`
simulates the calibrated machine. On a CPU there are no tensor cores: every dtype's peak is the
measured fp32 GEMM rate (numpy computes in fp32 here; narrower dtypes would not run faster),
and the `source` field says so.
"""

from __future__ import annotations

import os
from pathlib import Path

from simkit.calibrate.calibration import CalibrationResult
from simkit.catalog.hardware import HardwareProfile, profile_to_toml
from simkit.errors import SimkitError

_DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8")


def _calibration_table(r: CalibrationResult) -> dict:
    """The fit results as TOML-safe numbers and strings (nested tables per family)."""
    m = r.machine
    table: dict = {
        "plan": r.plan,
        "seed": float(r.seed),
        "gemm_flops_per_s": r.gemm_flops_per_s,
        "copy_bytes_per_s": r.copy_bytes_per_s,
        "decode_bytes_per_s": r.decode.bytes_per_s,
        "decode_overhead_s": r.decode.overhead_s,
        "decode_exponent": r.decode.exponent,
        "decode_heldout_rel_error": r.decode.heldout_rel_error,
        "blas": f"{m.get('blas')} {m.get('blas_version')} ({m.get('blas_threads')} threads, "
                f"{m.get('blas_architecture')})",
        "cpu": f"{m.get('processor')} ({m.get('cores')} cores, numpy {m.get('numpy')})",
        "kernels": {},
    }
    for fam, k in r.kernels.items():
        table["kernels"][fam] = {
            "exponent": k.exponent,
            "exponent_ci_low": k.exponent_ci[0],
            "exponent_ci_high": k.exponent_ci[1],
            "flops_per_s": k.flops_per_s,
            "fraction_of_gemm": k.fraction_of_gemm,
            "overhead_s": k.overhead_s,
            "heldout_rel_error": k.heldout_rel_error,
        }
    return table


def calibration_to_profile(result: CalibrationResult, name: str = "calibrated-cpu") -> HardwareProfile:
    """The hardware profile of the calibrated machine (see the module docstring)."""
    gemm = result.gemm_flops_per_s
    bw = result.copy_bytes_per_s
    m = result.machine
    return HardwareProfile(
        name=name,
        description=f"This machine as measured by simkit calibrate ({result.plan}): "
                    f"{m.get('processor')}, {m.get('cores')} cores",
        source=("measured: peak_flops_per_s = numpy fp32 GEMM rate for every dtype (a CPU has "
                "no faster narrow-dtype path here); memory bandwidth = large array copy "
                "(read + write); compute_efficiency = fitted full-attention prefill FLOP/s / "
                "GEMM; memory_efficiency = fitted full-attention decode KV bytes/s / copy "
                "bandwidth; step_overhead_s = fitted fixed cost per decode call; capacity = "
                "physical RAM; interconnect and host link set to the copy bandwidth (one "
                "host, no device link)"),
        peak_flops_per_s={d: gemm for d in _DTYPES},
        memory_bandwidth_bytes_per_s=bw,
        memory_capacity_bytes=result.ram_bytes,
        interconnect_bytes_per_s=bw,
        host_link_bytes_per_s=bw,
        compute_efficiency=max(1e-6, result.compute_efficiency),
        memory_efficiency=max(1e-6, result.decode.memory_efficiency),
        step_overhead_s=result.decode.overhead_s,
        calibrated=True,
        calibration=_calibration_table(result),
    )


def check_writable(path: str | Path, option: str = "-o") -> Path:
    """Fail early (before any timing) if the profile cannot be written there."""
    p = Path(path)
    if p.suffix != ".toml":
        raise SimkitError(f"{option}: profile file must end in .toml, got {str(path)!r}")
    parent = p.parent if str(p.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise SimkitError(f"{option}: cannot write {str(path)!r}: {str(parent)!r} is a file, "
                          "not a directory")
    if not parent.is_dir():
        raise SimkitError(f"{option}: directory {str(parent)!r} does not exist")
    if p.exists() and p.is_dir():
        raise SimkitError(f"{option}: {str(path)!r} is a directory")
    if not os.access(parent, os.W_OK):
        raise SimkitError(f"{option}: directory {str(parent)!r} is not writable")
    return p


def write_profile(result: CalibrationResult, path: str | Path,
                  name: str = "calibrated-cpu") -> Path:
    """Write the profile TOML (atomically: a temp file renamed into place)."""
    p = check_writable(path)
    text = profile_to_toml(calibration_to_profile(result, name))
    tmp = p.with_name(p.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(p)
    return p
