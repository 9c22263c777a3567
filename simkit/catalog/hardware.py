"""Hardware profiles: datasheet peaks (dense), memory, links and efficiency factors.

A profile is either a catalog entry below or a TOML file written by `simkit calibrate` (or by
hand) with the same keys as `HardwareProfile`. Datasheets quote tensor throughput *with 2:4
sparsity*; every peak here is the dense figure (half of it).

Efficiency factors turn a datasheet roof into what real kernels achieve. The defaults
(`DEFAULT_COMPUTE_EFFICIENCY`, ...) are assumptions stated with their reasoning below;
`simkit calibrate` measures them for the machine at hand, and `--ideal` sets them to 1 with no
overheads (the pure roofline that LLM-Viewer and llm-analysis report).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from simkit.errors import SimkitError
from simkit.units import GB, TFLOPS, US

# Realistic-mode defaults. Sources/reasoning:
# - compute: large bf16 GEMMs in cuBLAS reach roughly 70-80% of the dense tensor peak on
#   A100/H100 (NVIDIA's "Matrix Multiplication Background User's Guide" shows achieved
#   throughput well below peak for all but the largest, tile-aligned shapes); LLM layers mix
#   GEMMs with lower-intensity kernels, so 0.7 is the assumption.
# - memory: streaming kernels reach about 80-90% of HBM peak (e.g. Jia et al., "Dissecting
#   the NVIDIA Volta GPU Architecture via Microbenchmarking", arXiv:1804.06826, measured
#   ~83% of V100 HBM2 peak); 0.8 is the assumption.
# - overhead: a flat 1 ms per forward step for scheduling, sampling and kernel launches
#   (a decode step launches ~10 kernels per layer at a few us each; an assumption of the
#   order vLLM's step traces show), and 10 us latency per all-reduce (NCCL small-message
#   latency on NVLink is of that order). Calibration replaces both with measured values.
DEFAULT_COMPUTE_EFFICIENCY = 0.7
DEFAULT_MEMORY_EFFICIENCY = 0.8
DEFAULT_STEP_OVERHEAD_S = 1e-3
DEFAULT_INTERCONNECT_LATENCY_S = 10 * US

# PCIe host links, per direction (PCI-SIG): Gen4 x16 = 16 GT/s x 16 lanes x 128/130 / 8
# = 31.5 GB/s; Gen5 x16 = 63 GB/s.
PCIE4_X16_BYTES_PER_S = 31.5 * GB
PCIE5_X16_BYTES_PER_S = 63.0 * GB


@dataclass(frozen=True)
class HardwareProfile:
    """One accelerator (per-GPU figures). Units in the names; FLOP/s are dense peaks."""

    name: str
    description: str
    source: str
    peak_flops_per_s: Mapping[str, float]  # dtype -> dense FLOP/s
    memory_bandwidth_bytes_per_s: float
    memory_capacity_bytes: float
    interconnect_bytes_per_s: float  # GPU-to-GPU, per direction, per GPU
    host_link_bytes_per_s: float  # GPU<->host memory, per direction (swap traffic)
    interconnect_latency_s: float = DEFAULT_INTERCONNECT_LATENCY_S
    compute_efficiency: float = DEFAULT_COMPUTE_EFFICIENCY
    memory_efficiency: float = DEFAULT_MEMORY_EFFICIENCY
    step_overhead_s: float = DEFAULT_STEP_OVERHEAD_S
    calibrated: bool = False
    calibration: Mapping[str, Any] = field(default_factory=dict)  # fit details, when calibrated

    def peak_for(self, dtype: str) -> float:
        """Dense peak FLOP/s for matmuls in `dtype` (falls back to fp16, then the largest)."""
        from simkit.units import compute_dtype

        d = compute_dtype(dtype)
        if d in self.peak_flops_per_s:
            return float(self.peak_flops_per_s[d])
        for alt in ("bf16", "fp16"):
            if alt in self.peak_flops_per_s:
                return float(self.peak_flops_per_s[alt])
        return float(max(self.peak_flops_per_s.values()))

    def ideal(self) -> "HardwareProfile":
        """The pure roofline: efficiencies 1, no fixed overheads or link latency."""
        return replace(self, compute_efficiency=1.0, memory_efficiency=1.0,
                       step_overhead_s=0.0, interconnect_latency_s=0.0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["peak_flops_per_s"] = dict(self.peak_flops_per_s)
        d["calibration"] = dict(self.calibration)
        return d


def _nv(name, description, source, dense_tflops, bw_gbps, mem_gb, nvlink_gbps_bidir, host):
    return HardwareProfile(
        name=name, description=description, source=source,
        peak_flops_per_s={k: v * TFLOPS for k, v in dense_tflops.items()},
        memory_bandwidth_bytes_per_s=bw_gbps * GB,
        memory_capacity_bytes=mem_gb * GB,
        # NVLink figures are total bidirectional bandwidth per GPU; one direction is half.
        interconnect_bytes_per_s=nvlink_gbps_bidir / 2 * GB,
        host_link_bytes_per_s=host,
    )


CATALOG: dict[str, HardwareProfile] = {
    "a100-40gb": _nv(
        "a100-40gb", "NVIDIA A100 40GB SXM4",
        "NVIDIA A100 datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf): 312 TFLOPS "
        "FP16/BF16 dense (624 sparse), 156 TF32 dense, 19.5 FP32, 624 INT8 dense TOPS, "
        "1,555 GB/s HBM2, 40 GB, NVLink 600 GB/s; as reproduced by llm-analysis "
        "a100-sxm-40gb.json and LLM-Viewer nvidia_A100_40G",
        {"fp32": 19.5, "tf32": 156, "fp16": 312, "bf16": 312, "int8": 624, "fp8": 312},
        1555, 40, 600, PCIE4_X16_BYTES_PER_S),
    "a100-80gb": _nv(
        "a100-80gb", "NVIDIA A100 80GB SXM4",
        "NVIDIA A100 datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf): 312 TFLOPS "
        "FP16/BF16 dense (624 sparse), 156 TF32, 19.5 FP32, 624 INT8 TOPS, 2,039 GB/s HBM2e, "
        "80 GB, NVLink 600 GB/s; reproduced by llm-analysis a100-sxm-80gb.json",
        {"fp32": 19.5, "tf32": 156, "fp16": 312, "bf16": 312, "int8": 624, "fp8": 312},
        2039, 80, 600, PCIE4_X16_BYTES_PER_S),
    "h100-sxm": _nv(
        "h100-sxm", "NVIDIA H100 SXM5 80GB",
        "NVIDIA H100 datasheet ('Shown with sparsity. Specifications 1/2 lower without "
        "sparsity'): BF16/FP16 1,979 sparse -> 989.5 dense TFLOPS, FP8 3,958 -> 1,979, TF32 "
        "989 -> 494.5, FP32 67, 3.35 TB/s HBM3, 80 GB, NVLink 900 GB/s",
        {"fp32": 67, "tf32": 494.5, "fp16": 989.5, "bf16": 989.5, "fp8": 1979, "int8": 1979},
        3350, 80, 900, PCIE5_X16_BYTES_PER_S),
    "h200": _nv(
        "h200", "NVIDIA H200 SXM 141GB",
        "NVIDIA H200 product page (nvidia.com/en-us/data-center/h200): 141 GB HBM3e, 4.8 TB/s, "
        "FP8 3,958 TFLOPS with sparsity (1,979 dense), BF16 1,979 sparse (989.5 dense), same "
        "Hopper compute as H100 SXM, NVLink 900 GB/s",
        {"fp32": 67, "tf32": 494.5, "fp16": 989.5, "bf16": 989.5, "fp8": 1979, "int8": 1979},
        4800, 141, 900, PCIE5_X16_BYTES_PER_S),
    "l4": HardwareProfile(
        name="l4", description="NVIDIA L4 24GB (PCIe, no NVLink)",
        source="NVIDIA L4 datasheet: 242 TFLOPS FP16/BF16 and 485 FP8/INT8 with sparsity "
               "(dense = half: 121 / 242.5), FP32 30.3, 24 GB GDDR6, 300 GB/s, 72 W, PCIe Gen4 x16",
        peak_flops_per_s={"fp32": 30.3 * TFLOPS, "tf32": 60 * TFLOPS, "fp16": 121 * TFLOPS,
                          "bf16": 121 * TFLOPS, "fp8": 242.5 * TFLOPS, "int8": 242.5 * TFLOPS},
        memory_bandwidth_bytes_per_s=300 * GB, memory_capacity_bytes=24 * GB,
        interconnect_bytes_per_s=PCIE4_X16_BYTES_PER_S,
        host_link_bytes_per_s=PCIE4_X16_BYTES_PER_S),
    "mi300x": HardwareProfile(
        name="mi300x", description="AMD Instinct MI300X 192GB (OAM)",
        source="AMD Instinct MI300X data sheet: peak FP16/BF16 1,307.4 TFLOPS dense (2,614.9 "
               "with sparsity), FP8 2,614.9 dense, FP32 163.4, 192 GB HBM3, 5.3 TB/s; Infinity "
               "Fabric 7 links x 128 GB/s = 896 GB/s aggregate peer bandwidth",
        peak_flops_per_s={"fp32": 163.4 * TFLOPS, "tf32": 653.7 * TFLOPS,
                          "fp16": 1307.4 * TFLOPS, "bf16": 1307.4 * TFLOPS,
                          "fp8": 2614.9 * TFLOPS, "int8": 2614.9 * TFLOPS},
        memory_bandwidth_bytes_per_s=5300 * GB, memory_capacity_bytes=192 * GB,
        interconnect_bytes_per_s=896 / 2 * GB,
        host_link_bytes_per_s=PCIE5_X16_BYTES_PER_S),
}


def hardware_names() -> list[str]:
    return list(CATALOG)


_FLOAT_KEYS = ("memory_bandwidth_bytes_per_s", "memory_capacity_bytes",
               "interconnect_bytes_per_s", "host_link_bytes_per_s", "interconnect_latency_s",
               "compute_efficiency", "memory_efficiency", "step_overhead_s")


def profile_from_dict(data: Mapping[str, Any], where: str = "profile") -> HardwareProfile:
    """Build a profile from a TOML table, validating every key (errors name `where.key`)."""
    known = {f.name for f in fields(HardwareProfile)}
    errors = [f"{where}.{k}: unknown key" for k in data if k not in known]
    required = ("name", "peak_flops_per_s", "memory_bandwidth_bytes_per_s",
                "memory_capacity_bytes")
    errors += [f"{where}.{k}: missing" for k in required if k not in data]
    if errors:
        raise SimkitError(*errors)
    kw: dict[str, Any] = {"name": str(data["name"]),
                          "description": str(data.get("description", data["name"])),
                          "source": str(data.get("source", "user profile")),
                          "calibrated": bool(data.get("calibrated", False)),
                          "calibration": dict(data.get("calibration", {}))}
    peaks = data["peak_flops_per_s"]
    if not isinstance(peaks, Mapping) or not peaks:
        raise SimkitError(f"{where}.peak_flops_per_s: must be a table of dtype = FLOP/s")
    kw["peak_flops_per_s"] = {}
    for k, v in peaks.items():
        if not _positive_number(v):
            errors.append(f"{where}.peak_flops_per_s.{k}: must be a number > 0, got {v!r}")
        else:
            kw["peak_flops_per_s"][str(k)] = float(v)
    for k in _FLOAT_KEYS:
        if k not in data:
            continue
        v = data[k]
        ok = _positive_number(v) or (k in ("interconnect_latency_s", "step_overhead_s")
                                     and _number(v) and v == 0)
        if k.endswith("efficiency") and ok and v > 1:
            ok = False
        if not ok:
            errors.append(f"{where}.{k}: must be a number > 0"
                          + (" and <= 1" if k.endswith("efficiency") else "") + f", got {v!r}")
        else:
            kw[k] = float(v)
    kw.setdefault("interconnect_bytes_per_s", PCIE4_X16_BYTES_PER_S)
    kw.setdefault("host_link_bytes_per_s", PCIE4_X16_BYTES_PER_S)
    if errors:
        raise SimkitError(*errors)
    return HardwareProfile(**kw)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _positive_number(v: Any) -> bool:
    return _number(v) and v > 0


def load_hardware(name_or_path: str | Path) -> HardwareProfile:
    """A catalog profile by name, or a profile TOML file by path."""
    key = str(name_or_path)
    if key in CATALOG:
        return CATALOG[key]
    p = Path(key)
    if p.suffix == ".toml" or p.exists():
        if not p.is_file():
            raise SimkitError(f"hardware: no such profile file {key!r}")
        try:
            data = tomllib.loads(p.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
            raise SimkitError(f"hardware: {key}: not valid TOML ({e})") from None
        return profile_from_dict(data, where=p.name)
    raise SimkitError(f"hardware: unknown hardware {key!r}; choose one of "
                      f"{', '.join(CATALOG)} or give a profile .toml file")


def profile_to_toml(profile: HardwareProfile) -> str:
    """Serialise a profile as TOML that `load_hardware` reads back exactly."""
    def val(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(float(v))
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, (list, tuple)):
            return "[" + ", ".join(val(x) for x in v) + "]"
        raise TypeError(type(v))

    d = profile.to_dict()
    lines = []
    for k, v in d.items():
        if not isinstance(v, dict):
            lines.append(f"{k} = {val(v)}")

    def table(prefix: str, t: Mapping[str, Any]) -> None:
        lines.append(f"\n[{prefix}]")
        subs = []
        for k, v in t.items():
            if isinstance(v, Mapping):
                subs.append((k, v))
            else:
                lines.append(f"{_key(k)} = {val(v)}")
        for k, v in subs:
            table(f"{prefix}.{_key(k)}", v)

    table("peak_flops_per_s", d["peak_flops_per_s"])
    if d["calibration"]:
        table("calibration", d["calibration"])
    return "\n".join(lines) + "\n"


def _key(k: str) -> str:
    return k if k.replace("_", "").replace("-", "").isalnum() else f'"{k}"'
