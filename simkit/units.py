"""Units and conventions, stated once.

- FLOPs: a multiply-add counts as 2 FLOPs.
- Rates are SI: 1 GB/s = 1e9 B/s, 1 TFLOP/s = 1e12 FLOP/s.
- Memory sizes are printed with an explicit binary (GiB) or decimal (GB) unit, never bare.
- Times are seconds (`_s`), sizes bytes (`_bytes`), rates per second (`_per_s`).
"""

from __future__ import annotations

KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
KiB = 1024
MiB = 1024**2
GiB = 1024**3
TFLOPS = 1e12  # FLOP/s
US = 1e-6  # one microsecond in seconds
MS = 1e-3

#: Bytes per stored element for each supported dtype (int4 packs two values per byte).
DTYPE_BYTES: dict[str, float] = {
    "fp32": 4.0,
    "tf32": 4.0,
    "fp16": 2.0,
    "bf16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "int4": 0.5,
    # OCP microscaling FP4 (MX v1.0): 32 4-bit elements share one 8-bit scale = 4.25 bits
    "mxfp4": 4.25 / 8,
    # NVIDIA NVFP4: 16 FP4 (E2M1) elements share one FP8 (E4M3) scale = 4.5 bits, plus one
    # FP32 scale per tensor (negligible) -- NVIDIA technical blog "Introducing NVFP4 for
    # Efficient and Accurate Low-Precision Inference" (2025-06-24); ModelOpt's `group_size` 16
    "nvfp4": 4.5 / 8,
}

KV_DTYPES = ("fp32", "fp16", "bf16", "fp8", "int8", "int4")
WEIGHT_DTYPES = ("fp32", "fp16", "bf16", "fp8", "int8", "int4", "mxfp4", "nvfp4")


def dtype_bytes(dtype: str, what: str = "dtype") -> float:
    """Bytes per element of `dtype`; a `SimkitError` names `what` when it is unknown."""
    from simkit.errors import SimkitError

    try:
        return DTYPE_BYTES[dtype]
    except KeyError:
        raise SimkitError(
            f"{what}: unknown dtype {dtype!r}; choose one of {', '.join(DTYPE_BYTES)}"
        ) from None


def compute_dtype(dtype: str) -> str:
    """The tensor-core dtype whose peak applies to matmuls on weights stored as `dtype`.

    Weight-only int4/int8 quantisation dequantises to 16-bit before the multiply (as in
    AWQ/GPTQ kernels), so their compute peak is the fp16 one; fp8 runs on fp8 tensor cores.
    MX FP4 weights count as weight-only too (Hopper and older have no FP4 tensor cores;
    on Blackwell this leaves its FP4 peak unused: a conservative rate). NVFP4 checkpoints
    quantize activations too (W4A4) and run on FP4 tensor cores where the GPU has them; where
    it has none (`HardwareProfile.gemm_dtype`) they run weight-only at the 16-bit peak, as
    vLLM's Marlin FP4 path does on Hopper and Ampere.
    """
    return {"fp32": "fp32", "tf32": "tf32", "fp16": "fp16", "bf16": "bf16",
            "fp8": "fp8", "int8": "fp16", "int4": "fp16", "mxfp4": "fp16",
            "nvfp4": "fp4"}[dtype]


def fmt_bytes(n_bytes: float) -> str:
    """Human-readable size with an explicit binary unit (GiB, MiB, KiB)."""
    n = float(n_bytes)
    for unit, size in (("TiB", 1024**4), ("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


def fmt_seconds(s: float) -> str:
    """Human-readable duration."""
    s = float(s)
    if s == 0:
        return "0 s"
    if abs(s) < 1e-3:
        return f"{s * 1e6:.3g} us"
    if abs(s) < 1:
        return f"{s * 1e3:.3g} ms"
    return f"{s:.3g} s"


def fmt_flops(f: float) -> str:
    """FLOP count with an SI prefix."""
    f = float(f)
    for unit, size in (("PFLOP", 1e15), ("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6)):
        if abs(f) >= size:
            return f"{f / size:.4g} {unit}"
    return f"{f:.4g} FLOP"
