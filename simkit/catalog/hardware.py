"""Hardware profiles: datasheet peaks (dense), driver-reported memory, links, the fractions of
those peaks real kernels reach, and a dated on-demand price per GPU-hour.

A profile is either a catalog entry below or a TOML file written by `simkit calibrate` (or by
hand) with the same keys as `HardwareProfile`. Conventions, each stated once here:

- Peaks are *dense*. NVIDIA datasheets quote tensor throughput with 2:4 sparsity; every peak
  here is the dense figure (half of it). AMD lists both; the dense one is used.
- `memory_capacity_bytes` is the total the driver reports (nvidia-smi "Total" in MiB x 2**20,
  rocm-smi "VRAM Total Memory (B)"), not the marketing figure: an "80GB" A100 is 81,920 MiB =
  80 GiB, an "80GB" H100 is 81,559 MiB. The marketing "GB" of every catalog GPU is in fact GiB
  of physical memory, of which the driver shows all or slightly less (reserved/ECC).
  CUDA's own total (`cudaMemGetInfo`, which vLLM sizes its KV cache from) is a further ~0.5-1.5%
  lower (H100: 81,106 MiB; A100 40GB: 40,339 MiB); engine profiles carry that overhead.
- `compute_efficiency` / `memory_efficiency` are what the best published kernels reach relative
  to the dense datasheet peak: a large bf16 GEMM (cuBLAS / hipBLASLt through torch.matmul) and a
  STREAM-like HBM kernel. Each catalog entry states its measurement in `efficiency_source`;
  where none was found the `DEFAULT_*` fallbacks below apply and the source says so.
  `simkit calibrate` measures them for the machine at hand; `--ideal` sets them to 1 with no
  overheads (the pure roofline that LLM-Viewer and llm-analysis report).
- `price_per_gpu_hour` is a public on-demand list price in USD per GPU-hour (instance price /
  GPUs per instance), `price_source` the provider, instance, region and the date it was read.
  `price_per_gpu_hour = 0.0` with `price_source = ""` means *no price known*
  (`HardwareProfile.has_price` is False) so a planner can refuse to invent a cost. List prices
  differ several-fold between providers for the same GPU; compare GPUs priced by one provider.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from simkit.errors import SimkitError
from simkit.units import GB, MiB, TFLOPS, US

# Realistic-mode fallbacks, used where no published measurement exists for a GPU (and by
# profiles that do not set them). Sources/reasoning:
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
NO_PRICE = 0.0  # price_per_gpu_hour of a profile whose price is not known

# PCIe host links, per direction (PCI-SIG): Gen4 x16 = 16 GT/s x 16 lanes x 128/130 / 8
# = 31.5 GB/s; Gen5 x16 = 63 GB/s.
PCIE4_X16_BYTES_PER_S = 31.5 * GB
PCIE5_X16_BYTES_PER_S = 63.0 * GB

# The measurement sets the efficiencies below come from (quoted once, cited by short name):
# MAMF = "Maximum Achievable Matmul FLOPS comparison table", BF16, best shape of a brute-force
#   torch.matmul search, mean of 100 iterations: github.com/stas00/ml-engineering
#   compute/accelerator/README.md at commit 744d01e (2026-08-22).
# GPU-STREAM = gpu-stream "triad" A[i] = B[i] + D[i]*C[i] (3 loads + 1 store), best point of the
#   occupancy scan: github.com/RRZE-HPC/gpu-benches gpu-stream/<gpu>.txt at commit 1038c5d
#   (2025-02-11).
# TORCH-PERF = torch.matmul at 1024..10240 squared, best size, as filed in
#   github.com/zzc0721/torch-performance-test-data issues (#43 L40S, #95 H100 PCIe, #120 L4).
# AIC-GEMM = NVIDIA's measured GEMM latencies on B200 (aiconfigurator's perf database, Apache
#   2.0): github.com/ai-dynamo/aiconfigurator at 095f58a5 (2026-08-21),
#   aic-core/src/aiconfigurator_core/systems/data/b200_sxm/gemm/{trtllm/1.2.0rc5,
#   vllm/0.19.0}/gemm_perf.parquet, the same (m, n, k) in fp8 and nvfp4 (per-tensor fp8, not
#   DeepGEMM's blocks). NVFP4 against FP8, each against its own dense peak (9,000 and 4,500
#   TFLOP/s): median over the 3,051 shapes with m >= 1024 and n, k >= 4096 of (fp8 time /
#   nvfp4 time) x 4,500 / 9,000 = 0.820 with TensorRT-LLM's kernels (vLLM 0.19's 1.49 only
#   says its B200 fp8 GEMMs are slow: 0.87x its own bf16 speed at those shapes). Streaming:
#   median over the 560 shapes with m <= 8 and >= 200 MB of bf16 weights of (fp8 time /
#   nvfp4 time) x 4.5 / 8 (bytes per weight) = 0.718 (TensorRT-LLM) and 0.740 (vLLM): 0.73.
#   Relative to fp8 rather than bf16 because simkit's fp8 path is an engine's fitted
#   `gemm_fp8_efficiency` and fp8 streaming at the 16-bit rate, both checked end to end.
_MAMF = "MAMF (stas00/ml-engineering, 2026-08-22)"
_AIC_FP4 = ("NVFP4 GEMMs reach 0.82 of the FP4 peak relative to fp8 GEMMs' fraction of the fp8 "
            "peak, and stream weights at 0.73 of an fp8 GEMM's rate: AIC-GEMM (NVIDIA's "
            "aiconfigurator B200 GEMM latencies for TensorRT-LLM 1.2.0rc5 and vLLM 0.19.0)")
_STREAM = "GPU-STREAM triad (RRZE-HPC/gpu-benches, 2025-02-11)"
# AZURE-HBM = the HBM bandwidth table of Azure's AI benchmarking guide (BabelStream-style
#   kernels on an 8-GPU ND v5 VM, the triad A[i] = B[i] + s*C[i]):
#   github.com/Azure/AI-benchmarking-guide Azure_Results/ at commit 8fd0c6e (2024-09-27).
_AZURE_HBM = ("triad in the HBM table of AZURE-HBM (Azure/AI-benchmarking-guide @8fd0c6e, "
              "2024-09-27; the H200 file added 2024-09-24)")
_NO_MEMORY_MEASUREMENT = (f"memory: no published STREAM-like measurement found for this GPU; "
                          f"the assumed default {DEFAULT_MEMORY_EFFICIENCY} applies")
# Prices: CoreWeave's on-demand page (coreweave.com/pricing) read 2026-09-20, as transcribed
# verbatim in github.com/api-evangelist/coreweave plans/coreweave-plans-pricing.yml; Lambda's
# (lambda.ai/instances) read 2026-09-20, in github.com/api-evangelist/lambda-labs
# plans/lambda-labs-plans-pricing.yml. Instance prices are divided by GPUs per instance.
_COREWEAVE = ("CoreWeave on-demand list (coreweave.com/pricing, read 2026-09-20 per "
              "api-evangelist/coreweave)")
_LAMBDA = ("Lambda on-demand list (lambda.ai/instances, read 2026-09-20 per "
           "api-evangelist/lambda-labs)")


@dataclass(frozen=True)
class HardwareProfile:
    """One accelerator (per-GPU figures). Units in the names; FLOP/s are dense peaks."""

    name: str
    description: str
    source: str
    peak_flops_per_s: Mapping[str, float]  # dtype -> dense FLOP/s
    memory_bandwidth_bytes_per_s: float
    memory_capacity_bytes: float  # what the driver reports (see the module docstring)
    interconnect_bytes_per_s: float  # GPU-to-GPU, per direction, per GPU
    host_link_bytes_per_s: float  # GPU<->host memory, per direction (swap traffic)
    interconnect_latency_s: float = DEFAULT_INTERCONNECT_LATENCY_S
    compute_efficiency: float = DEFAULT_COMPUTE_EFFICIENCY
    memory_efficiency: float = DEFAULT_MEMORY_EFFICIENCY
    #: NVFP4 GEMMs on the FP4 tensor cores (GPUs with an "fp4" peak), against fp8 GEMMs:
    #: their fraction of the FP4 peak relative to fp8 GEMMs' fraction of the fp8 peak, and
    #: their weight streaming relative to fp8's (scale factors, activation quantization)
    fp4_gemm_efficiency: float = 1.0
    fp4_stream_efficiency: float = 1.0
    step_overhead_s: float = DEFAULT_STEP_OVERHEAD_S
    efficiency_source: str = ""  # where the two efficiencies come from ("" = not stated)
    price_per_gpu_hour: float = NO_PRICE  # USD on-demand list; 0.0 = no price known
    price_source: str = ""  # provider, instance, region, date read
    calibrated: bool = False
    calibration: Mapping[str, Any] = field(default_factory=dict)  # fit details, when calibrated

    @property
    def has_price(self) -> bool:
        """Whether a price is known (0.0 means unknown: never cost a plan with it)."""
        return self.price_per_gpu_hour > 0

    def gemm_dtype(self, dtype: str) -> str:
        """The tensor-core dtype that matmuls on weights stored as `dtype` run in here: its
        `compute_dtype`, or 16-bit where this GPU has no peak for that (NVFP4 weights on a
        GPU without FP4 tensor cores dequantize, as weight-only int4 does)."""
        from simkit.units import compute_dtype

        d = compute_dtype(dtype)
        if d in self.peak_flops_per_s:
            return d
        return next((alt for alt in ("bf16", "fp16") if alt in self.peak_flops_per_s), d)

    def peak_for(self, dtype: str) -> float:
        """Dense peak FLOP/s for matmuls in `dtype` (falls back to fp16, then the largest)."""
        d = self.gemm_dtype(dtype)
        if d in self.peak_flops_per_s:
            return float(self.peak_flops_per_s[d])
        return float(max(self.peak_flops_per_s.values()))

    def low_precision_factors(self, dtype: str, fp8_efficiency: float) -> tuple[float, float]:
        """(GEMM rate, weight-streaming rate) factors of weights stored as `dtype`, relative
        to 16-bit GEMMs' fractions of their own peaks: an engine's `fp8_efficiency` for fp8
        GEMMs; for NVFP4 on FP4 tensor cores the same times this GPU's FP4 factors (which
        are relative to fp8); else 1."""
        d = self.gemm_dtype(dtype)
        if d == "fp8":
            return fp8_efficiency, 1.0
        if d == "fp4":
            return fp8_efficiency * self.fp4_gemm_efficiency, self.fp4_stream_efficiency
        return 1.0, 1.0

    def ideal(self) -> "HardwareProfile":
        """The pure roofline: efficiencies 1, no fixed overheads or link latency."""
        return replace(self, compute_efficiency=1.0, memory_efficiency=1.0,
                       fp4_gemm_efficiency=1.0, fp4_stream_efficiency=1.0,
                       step_overhead_s=0.0, interconnect_latency_s=0.0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["peak_flops_per_s"] = dict(self.peak_flops_per_s)
        d["calibration"] = dict(self.calibration)
        return d


def _gpu(name, description, source, *, dense_tflops, bw_gbps, driver_mib, link, host,
         compute_eff, memory_eff, efficiency_source, price, price_source, fp4_eff=(1.0, 1.0)):
    return HardwareProfile(
        name=name, description=description, source=source,
        peak_flops_per_s={k: v * TFLOPS for k, v in dense_tflops.items()},
        memory_bandwidth_bytes_per_s=bw_gbps * GB,
        memory_capacity_bytes=float(driver_mib * MiB),
        interconnect_bytes_per_s=link, host_link_bytes_per_s=host,
        compute_efficiency=compute_eff, memory_efficiency=memory_eff,
        fp4_gemm_efficiency=fp4_eff[0], fp4_stream_efficiency=fp4_eff[1],
        efficiency_source=efficiency_source,
        price_per_gpu_hour=price, price_source=price_source)


def _nvlink(bidirectional_gbps: float) -> float:
    """NVLink / Infinity Fabric figures are total bidirectional per GPU; one direction is half."""
    return bidirectional_gbps / 2 * GB


_HOPPER = {"fp32": 67, "tf32": 494.5, "fp16": 989.5, "bf16": 989.5, "fp8": 1979, "int8": 1979}
_AMPERE = {"fp32": 19.5, "tf32": 156, "fp16": 312, "bf16": 312, "int8": 624, "fp8": 312}
_CDNA3 = {"fp32": 163.4, "tf32": 653.7, "fp16": 1307.4, "bf16": 1307.4, "fp8": 2614.9,
          "int8": 2614.9}

CATALOG: dict[str, HardwareProfile] = {
    "a100-40gb": _gpu(
        "a100-40gb", "NVIDIA A100 40GB SXM4",
        "NVIDIA A100 datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf): 312 TFLOPS "
        "FP16/BF16 dense (624 sparse), 156 TF32 dense, 19.5 FP32, 624 INT8 dense TOPS, "
        "1,555 GB/s HBM2, 40 GB, NVLink 600 GB/s; as reproduced by llm-analysis "
        "a100-sxm-40gb.json and LLM-Viewer nvidia_A100_40G. Memory: nvidia-smi total 40960MiB "
        "('NVIDIA A100-SXM4-40GB', github.com/bottlerocket-os/bottlerocket-core-kit/pull/834; "
        "modal-labs/modal-client PR #2797) = 40 GiB",
        dense_tflops=_AMPERE, bw_gbps=1555, driver_mib=40960, link=_nvlink(600),
        host=PCIE4_X16_BYTES_PER_S,
        compute_eff=271.2 / 312, memory_eff=1375 / 1555,
        efficiency_source=f"compute: 271.2 of 312 TFLOP/s, 'NVIDIA A100 SXM' in {_MAMF}; "
                          f"memory: 1375 of 1555 GB/s, A100 40GB in {_STREAM}",
        price=1.99, price_source=f"{_LAMBDA}: '8x NVIDIA A100 SXM 40 GB' $1.99 per GPU-hour "
                                 "(AWS p4d.24xlarge us-east-1 $21.957642/h / 8 = $2.74, "
                                 "datareceipts/data-receipts 109-gpu-pricing, 2026-11-09)"),
    "a100-80gb": _gpu(
        "a100-80gb", "NVIDIA A100 80GB SXM4",
        "NVIDIA A100 datasheet (nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf): 312 TFLOPS "
        "FP16/BF16 dense (624 sparse), 156 TF32, 19.5 FP32, 624 INT8 TOPS, 2,039 GB/s HBM2e, "
        "80 GB, NVLink 600 GB/s; reproduced by llm-analysis a100-sxm-80gb.json. Memory: "
        "nvidia-smi total 81920MiB (modal-labs/modal-client PR #2797 'A100 80GB: 81920MiB') "
        "= 80 GiB",
        dense_tflops=_AMPERE, bw_gbps=2039, driver_mib=81920, link=_nvlink(600),
        host=PCIE4_X16_BYTES_PER_S,
        compute_eff=271.2 / 312, memory_eff=1794 / 2039,
        efficiency_source=f"compute: 271.2 of 312 TFLOP/s, 'NVIDIA A100 SXM' in {_MAMF} (same "
                          f"tensor cores as the 40GB part); memory: 1794 of 2039 GB/s, A100 "
                          f"80GB in {_STREAM}",
        price=21.60 / 8, price_source=f"{_COREWEAVE}: 'NVIDIA A100 (on-demand)' 8 GPUs x 80 GB "
                                      "$21.60/h / 8 (Lambda 8x A100 SXM 80 GB $2.79 the same "
                                      "day; AWS p4de.24xlarge us-east-1 $27.44705/h / 8 = "
                                      "$3.43 on 2026-11-09)"),
    "h100-sxm": _gpu(
        "h100-sxm", "NVIDIA H100 SXM5 80GB",
        "NVIDIA H100 datasheet ('Shown with sparsity. Specifications 1/2 lower without "
        "sparsity'): BF16/FP16 1,979 sparse -> 989.5 dense TFLOPS, FP8 3,958 -> 1,979, TF32 "
        "989 -> 494.5, FP32 67, 3.35 TB/s HBM3, 80 GB, NVLink 900 GB/s. Memory: nvidia-smi "
        "total 81559MiB ('NVIDIA H100 80GB HBM3', github.com/NVIDIA/nccl/issues/1264)",
        dense_tflops=_HOPPER, bw_gbps=3350, driver_mib=81559, link=_nvlink(900),
        host=PCIE5_X16_BYTES_PER_S,
        compute_eff=794.5 / 989.5, memory_eff=3000 / 3350,
        efficiency_source=f"compute: 794.5 of 989.5 TFLOP/s, 'NVIDIA H100 SXM' in {_MAMF}; "
                          "memory: 3000 of 3350 GB/s, DeepSeek FlashMLA dense decode kernel "
                          "'up to 3000 GB/s in memory-bound configuration' on H800 SXM5 (same "
                          "80 GB HBM3 at 3.35 TB/s), github.com/deepseek-ai/FlashMLA README",
        price=49.24 / 8, price_source=f"{_COREWEAVE}: 'NVIDIA HGX H100 (on-demand)' 8 GPUs "
                                      "$49.24/h / 8 (Lambda 8x H100 SXM $3.99 the same day; "
                                      "AWS p5.48xlarge us-east-1 $55.04/h / 8 = $6.88 on "
                                      "2026-11-09)"),
    "h100-pcie": _gpu(
        "h100-pcie", "NVIDIA H100 PCIe 80GB (PCIe Gen5; NVLink bridge pairs only)",
        "NVIDIA H100 datasheet, H100 PCIe column ('Shown with sparsity. Specifications 1/2 "
        "lower without sparsity'): BF16/FP16 1,513 sparse -> 756.5 dense TFLOPS, FP8 3,026 -> "
        "1,513, TF32 756 -> 378, FP32 51, 80 GB HBM2e, 2,000 GB/s, 350 W, PCIe Gen5 128 GB/s, "
        "NVLink bridge 600 GB/s; reproduced at archive-lib.hpctech.co.jp/gpuproduct/"
        "nvidia-h100.html. The link is PCIe Gen5 x16 (63 GB/s per direction): the 600 GB/s "
        "bridge joins only pairs of cards. Memory: nvidia-smi total 81559MiB ('NVIDIA H100 "
        "PCIe', github.com/beomi/bitnet-transformers README)",
        dense_tflops={"fp32": 51, "tf32": 378, "fp16": 756.5, "bf16": 756.5, "fp8": 1513,
                      "int8": 1513},
        bw_gbps=2000, driver_mib=81559, link=PCIE5_X16_BYTES_PER_S, host=PCIE5_X16_BYTES_PER_S,
        compute_eff=495.93 / 756.5, memory_eff=1832 / 2000,
        efficiency_source="compute: 495.93 of 756.5 TFLOP/s, best BF16 size in TORCH-PERF "
                          "issue #95 (zzc0721/torch-performance-test-data, 2025-12-14; 350 W "
                          f"card, power-limited); memory: 1832 of 2000 GB/s, H100 PCIe in "
                          f"{_STREAM}",
        price=3.29, price_source=f"{_LAMBDA}: '1x NVIDIA H100 PCIe' $3.29 per GPU-hour "
                                 "(RunPod Secure Cloud H100 PCIe $2.89, runpod.io/pricing "
                                 "checked 2026-09-25 per tgarg01/silybench-data)"),
    "h200": _gpu(
        "h200", "NVIDIA H200 SXM 141GB",
        "NVIDIA H200 product page (nvidia.com/en-us/data-center/h200): 141 GB HBM3e, 4.8 TB/s, "
        "FP8 3,958 TFLOPS with sparsity (1,979 dense), BF16 1,979 sparse (989.5 dense), same "
        "Hopper compute as H100 SXM, NVLink 900 GB/s. Memory: nvidia-smi total 143771MiB "
        "('NVIDIA H200', github.com/sgl-project/sglang/issues/3196; the same on this "
        "project's H200, driver 580.159.04, 2026-12-04: simkit/data/measurements/"
        "h200_pytorch_runs.json)",
        dense_tflops=_HOPPER, bw_gbps=4800, driver_mib=143771, link=_nvlink(900),
        host=PCIE5_X16_BYTES_PER_S,
        compute_eff=794.5 / 989.5, memory_eff=4150 / 4800,
        efficiency_source=f"compute: 794.5 of 989.5 TFLOP/s, the 'NVIDIA H100 SXM' row of "
                          f"{_MAMF}, which notes 'H200 is the same'; memory: 4150 of 4800 "
                          f"GB/s, {_AZURE_HBM} 'ND H200 v5' (Azure_Results/"
                          "ND_H200_v5_results.md; the same suite's ND H100 v5 triad, 2.97 "
                          "TB/s, is within 1% of the H100's 3000 GB/s above). This project's "
                          "H200s (h200_pytorch_runs.json, 2026-12-04, three machines): an 8192^3 "
                          "bf16 product 749-780 TFLOP/s (the figure above is the best over "
                          "shapes), a 2 GiB copy 4.09-4.23 TB/s read + written",
        price=50.44 / 8, price_source=f"{_COREWEAVE}: 'NVIDIA HGX H200 (on-demand)' 8 GPUs "
                                      "$50.44/h / 8 (RunPod Secure Cloud H200 $4.59, "
                                      "runpod.io/pricing checked 2026-09-25 per "
                                      "tgarg01/silybench-data)"),
    "b200": _gpu(
        "b200", "NVIDIA B200 (HGX B200, 1000 W)",
        "NVIDIA HGX B200 per-GPU specifications (nvidia.com HGX platform table, reproduced at "
        "zdszero.github.io Hardware page): FP4 18, FP8/FP6 9, INT8 9 POPS, FP16/BF16 4.5, TF32 "
        "2.2 PFLOPS with sparsity -> dense 9 / 4.5 / 4.5 / 2.25 / 1.1 PFLOPS (glennklockwood.com "
        "B200 page lists the same HGX dense figures), FP32 75 TFLOPS, 180 GB HBM3E at 7.7 TB/s "
        "(earlier NVIDIA material and the brief say 8 TB/s; 7,680-bit bus x 3,996 MHz x 2 = "
        "7.67 TB/s, github.com/pytorch/ao/pull/4002), NVLink 5 1.8 TB/s, PCIe Gen5. Memory: "
        "nvidia-smi total 183359MiB ('NVIDIA B200', github.com/NVIDIA/TensorRT-LLM/issues/10278) "
        "= 179.06 GiB, i.e. the '180GB' is GiB",
        dense_tflops={"fp32": 75, "tf32": 1100, "fp16": 2250, "bf16": 2250, "fp8": 4500,
                      "int8": 4500, "fp4": 9000},
        bw_gbps=7700, driver_mib=183359, link=_nvlink(1800), host=PCIE5_X16_BYTES_PER_S,
        compute_eff=1745.0 / 2250, memory_eff=0.90,
        efficiency_source=f"compute: 1745.0 of 2250 TFLOP/s, 'NVIDIA B200 SXM' in {_MAMF}; "
                          "memory: 0.90 of peak, BabelStream on B200 per Ambati et al., 'AMD "
                          "MI300X GPU Performance Analysis', arXiv:2510.27583 ('NVIDIA up to 90% "
                          "of theoretical peak ... B200'); whether the paper's peak is 8.0 or "
                          "7.7 TB/s is not stated in the summary read; NVFP4: "
                          + _AIC_FP4,
        fp4_eff=(0.82, 0.73),
        price=68.80 / 8, price_source=f"{_COREWEAVE}: 'NVIDIA HGX B200 (on-demand)' 8 GPUs x "
                                      "180 GB $68.80/h / 8 (Lambda 8x B200 SXM6 $6.69 the "
                                      "same day)"),
    "l4": _gpu(
        "l4", "NVIDIA L4 24GB (PCIe, no NVLink)",
        "NVIDIA L4 datasheet: 242 TFLOPS FP16/BF16 and 485 FP8/INT8 with sparsity (dense = "
        "half: 121 / 242.5), FP32 30.3, 24 GB GDDR6, 300 GB/s, 72 W, PCIe Gen4 x16. Memory: "
        "nvidia-smi total 23034MiB ('NVIDIA L4', github.com/thamada/nvidia-smi gls/L4_smi.py; "
        "modal-labs/modal-client PR #2797)",
        dense_tflops={"fp32": 30.3, "tf32": 60, "fp16": 121, "bf16": 121, "fp8": 242.5,
                      "int8": 242.5},
        bw_gbps=300, driver_mib=23034, link=PCIE4_X16_BYTES_PER_S, host=PCIE4_X16_BYTES_PER_S,
        compute_eff=70.89 / 121, memory_eff=DEFAULT_MEMORY_EFFICIENCY,
        efficiency_source="compute: 70.89 of 121 TFLOP/s, best BF16 size (2048^2; 59.40 at "
                          "8192^2, the 72 W card throttles) in TORCH-PERF issue #120 "
                          f"(zzc0721/torch-performance-test-data, 2026-01-12); "
                          f"{_NO_MEMORY_MEASUREMENT}",
        price=0.81, price_source="GCP g2-standard-4 (1 L4, 4 vCPU, 16 GB) on-demand $0.81/h as "
                                 "tabulated in github.com/carsonpo/gpus costs/gcp.md at commit "
                                 "d1e3f75 (2025-07-13; region not stated; older than the other "
                                 "catalog prices). RunPod Secure Cloud L4 $0.43 in costs/runpod.md "
                                 "of the same commit"),
    "l40s": _gpu(
        "l40s", "NVIDIA L40S 48GB (PCIe Gen4, no NVLink)",
        "NVIDIA L40S datasheet (reproduced by mullet.se product 355414 and itcreations.com): "
        "BF16/FP16 733 TFLOPS with sparsity -> 366.5 dense, FP8 1,466 -> 733, TF32 366 -> 183, "
        "FP32 91.6, 48 GB GDDR6 with ECC, 864 GB/s, PCIe Gen4 x16 64 GB/s bidirectional, 350 W, "
        "no NVLink. The datasheet's own dense BF16 cell says 362.05, 1.2% under 733/2; 142 SMs x "
        "1024 FLOP/clk x 2.52 GHz boost = 366.4 agrees with 733/2, which is used. Memory: "
        "nvidia-smi total 46068MiB ('NVIDIA L40S', github.com/thamada/nvidia-smi "
        "nvsim/L40S_smi.py; modal-labs/modal-client PR #2797)",
        dense_tflops={"fp32": 91.6, "tf32": 183, "fp16": 366.5, "bf16": 366.5, "fp8": 733,
                      "int8": 733},
        bw_gbps=864, driver_mib=46068, link=PCIE4_X16_BYTES_PER_S, host=PCIE4_X16_BYTES_PER_S,
        compute_eff=269.15 / 366.5, memory_eff=831 / 864,
        efficiency_source="compute: 269.15 of 366.5 TFLOP/s, best BF16 size in TORCH-PERF "
                          "issue #43 (zzc0721/torch-performance-test-data, 2025-10-05); "
                          f"memory: 831 of 864 GB/s, measured on the L40 in {_STREAM} (same "
                          "AD102 die and the same 48 GB GDDR6 384-bit 864 GB/s memory system)",
        price=18.00 / 8, price_source=f"{_COREWEAVE}: 'NVIDIA L40S (on-demand)' 8 GPUs $18.00/h "
                                      "/ 8 (RunPod Secure Cloud L40S $1.09, runpod.io/pricing "
                                      "checked 2026-09-25 per tgarg01/silybench-data)"),
    "mi300x": _gpu(
        "mi300x", "AMD Instinct MI300X 192GB (OAM)",
        "AMD Instinct MI300X data sheet: peak FP16/BF16 1,307.4 TFLOPS dense (2,614.9 with "
        "sparsity), FP8 2,614.9 dense, FP32 163.4, 192 GB HBM3, 5.3 TB/s; Infinity Fabric 7 "
        "links x 128 GB/s = 896 GB/s aggregate peer bandwidth. Memory: rocm-smi 'VRAM Total "
        "Memory (B): 206141652992' = 196592 MiB = 192 GiB - 16 MiB "
        "(github.com/ROCm/legacy-rocm-build/issues/4750); ROCm docs gpu-specs list 192 GiB",
        dense_tflops=_CDNA3, bw_gbps=5300, driver_mib=196592, link=_nvlink(896),
        host=PCIE5_X16_BYTES_PER_S,
        compute_eff=668.4 / 1307.4, memory_eff=0.81,
        efficiency_source=f"compute: 668.4 of 1307.4 TFLOP/s, 'AMD MI300X' (ROCm 6.3, "
                          f"PYTORCH_TUNABLEOP_ENABLED=1) in {_MAMF}, whose own 51.4% uses "
                          "1300 as the peak; memory: 0.81 of 5.3 TB/s, BabelStream in Ambati "
                          "et al., arXiv:2510.27583 (GPU-STREAM triad measures 4000 GB/s = "
                          "0.755, its read kernel 4199 GB/s = 0.79)",
        price=1.50, price_source="TensorWave on-demand MI300X $1.50 per GPU-hour, as quoted in "
                                 "the research note cliffcenter.com/research/"
                                 "amd-inference-economics dated 2026-05-18 (the same note lists "
                                 "Oracle and Azure at $6/GPU-hour; DigitalOcean's API list price "
                                 "for 1x MI300X was $2.59/h on 2026-10-07 per "
                                 "huggingface.co/datasets/tokenwatt/gpu-cloud-prices)"),
    "mi325x": _gpu(
        "mi325x", "AMD Instinct MI325X 256GB (OAM)",
        "AMD Instinct MI325X specifications (AMD product page as reproduced by "
        "docs.vultr.com inference-cookbook hardware-requirements and awesomeagents.ai): 256 GB "
        "HBM3E, 6 TB/s, same CDNA3 compute as MI300X: FP16/BF16 1,307.4 TFLOPS dense (2,614.9 "
        "sparse), FP8 2,614.9 dense (5,229.8 sparse), TF32 653.7, FP32 163.4; 7 Infinity Fabric "
        "links x 128 GB/s. Memory: rocminfo GPU pool 268419072 KB = 262128 MiB = 256 GiB - 16 "
        "MiB on an 'AMD Instinct MI325X' (github.com/ROCm/rocm-systems/issues/8263); ROCm docs "
        "gpu-specs list 256 GiB. No rocm-smi output for MI325X was found; the same pool figure "
        "equals rocm-smi's total on MI300X (201310208 KB x 1024 = 206141652992 B)",
        dense_tflops=_CDNA3, bw_gbps=6000, driver_mib=262128, link=_nvlink(896),
        host=PCIE5_X16_BYTES_PER_S,
        compute_eff=784.9 / 1307.4, memory_eff=DEFAULT_MEMORY_EFFICIENCY,
        efficiency_source=f"compute: 784.9 of 1307.4 TFLOP/s, 'AMD MI325X' (1000 W, "
                          f"PYTORCH_TUNABLEOP_ENABLED=1) in {_MAMF}; {_NO_MEMORY_MEASUREMENT}",
        price=1.95, price_source="TensorWave on-demand MI325X $1.95 per GPU-hour, as quoted in "
                                 "the research note cliffcenter.com/research/"
                                 "amd-inference-economics dated 2026-05-18"),
}


def hardware_names() -> list[str]:
    return list(CATALOG)


_FLOAT_KEYS = ("memory_bandwidth_bytes_per_s", "memory_capacity_bytes",
               "interconnect_bytes_per_s", "host_link_bytes_per_s", "interconnect_latency_s",
               "compute_efficiency", "memory_efficiency", "fp4_gemm_efficiency",
               "fp4_stream_efficiency", "step_overhead_s")
_ZERO_OK = ("interconnect_latency_s", "step_overhead_s")
_TEXT_KEYS = ("efficiency_source", "price_source")


def profile_from_dict(data: Mapping[str, Any], where: str = "profile") -> HardwareProfile:
    """Build a profile from a TOML table, validating every key (errors name `where.key`)."""
    known = {f.name for f in fields(HardwareProfile)}
    errors = [f"{where}.{k}: unknown key" for k in data if k not in known]
    required = ("name", "peak_flops_per_s", "memory_bandwidth_bytes_per_s",
                "memory_capacity_bytes")
    errors += [f"{where}.{k}: missing" for k in required if k not in data]
    for k in ("name", "description", "source"):
        if k in data and not isinstance(data[k], str):
            errors.append(f"{where}.{k}: must be a string, got {data[k]!r}")
    if "calibrated" in data and not isinstance(data["calibrated"], bool):
        errors.append(f"{where}.calibrated: must be true or false, got {data['calibrated']!r}")
    if "calibration" in data and not isinstance(data["calibration"], Mapping):
        errors.append(f"{where}.calibration: must be a table (the fit details `simkit "
                      f"calibrate` writes), got {data['calibration']!r}")
    if errors:
        raise SimkitError(*errors)
    kw: dict[str, Any] = {"name": data["name"],
                          "description": data.get("description", data["name"]),
                          "source": data.get("source", "user profile"),
                          "calibrated": data.get("calibrated", False),
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
        ok = _positive_number(v) or (k in _ZERO_OK and _number(v) and v == 0)
        if k.endswith("efficiency") and ok and v > 1:
            ok = False
        if not ok:
            errors.append(f"{where}.{k}: must be a number > 0"
                          + (" and <= 1" if k.endswith("efficiency") else "") + f", got {v!r}")
        else:
            kw[k] = float(v)
    for k in _TEXT_KEYS:
        if k in data:
            if isinstance(data[k], str):
                kw[k] = data[k]
            else:
                errors.append(f"{where}.{k}: must be a string, got {data[k]!r}")
    if "price_per_gpu_hour" in data:
        v = data["price_per_gpu_hour"]
        if not _number(v) or v < 0:
            errors.append(f"{where}.price_per_gpu_hour: must be a number >= 0 (USD per "
                          f"GPU-hour; 0 = no price known), got {v!r}")
        else:
            kw["price_per_gpu_hour"] = float(v)
            if v > 0 and not str(kw.get("price_source", "")).strip():
                errors.append(f"{where}.price_source: required when price_per_gpu_hour > 0 "
                              "(provider, instance, region and the date it was read)")
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
