"""Serving-engine profiles: what a real engine adds to, and loses from, the roofline.

A datasheet gives peaks; the hardware profile gives what the best kernels reach on that GPU
(`compute_efficiency`, `memory_efficiency`). An engine profile then says how close one
serving engine's kernels and runtime come to those rates, and what fixed costs it pays:

- `gemm_efficiency` x shape factors: weight GEMMs run below peak when the step has few
  tokens (the M dimension: a decode batch of 8 fills a fraction of a 64/128-row tile) and
  when tensor parallelism leaves each GPU a narrow shard (the N dimension: too few tiles to
  fill the SMs). Factor = gemm_efficiency x tokens / (tokens + gemm_tokens_half) x
  width / (width + gemm_width_half), width = d_model / tensor-parallel GPUs.
- `memory_efficiency`: weight streaming; `attn_prefill_efficiency`: the prefill attention
  kernel's fraction of the compute rate (FlashAttention); `attn_decode_efficiency`: the
  decode attention kernel's fraction of memory bandwidth (paged attention reads scattered
  blocks).
- `step_overhead_s` (scheduling, input preparation, sampling, per step),
  `layer_overhead_s` (kernel launches and synchronisation per layer and step),
  `sequence_overhead_s` (per sequence in the step).
- all-reduce: `allreduce_latency_s` per collective plus bytes over
  `allreduce_efficiency` x the link bandwidth (ring: 2 (N-1)/N of the message per GPU).

Constants are relative to the hardware profile (itself relative to the datasheet), so a
profile fitted on one GPU transfers to another. `simkit.costs.compiled` is the one place that
turns these terms into a step time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class EngineProfile:
    """One serving engine's efficiency factors and fixed costs (see the module doc)."""

    name: str
    description: str
    source: str  # the measurements the constants were fitted on
    data_date: str  # date of those measurements
    gemm_efficiency: float = 1.0
    gemm_tokens_half: float = 0.0  # 0: no token-count penalty
    gemm_width_half: float = 0.0  # 0: no shard-width penalty
    memory_efficiency: float = 1.0
    attn_prefill_efficiency: float = 1.0
    attn_decode_efficiency: float = 1.0
    #: None: the hardware profile's step overhead (a calibrated machine measures its own)
    step_overhead_s: float | None = None
    layer_overhead_s: float = 0.0
    sequence_overhead_s: float = 0.0
    #: None: the hardware profile's interconnect latency
    allreduce_latency_s: float | None = None
    allreduce_efficiency: float = 1.0
    fit: str = ""  # how the constants were fitted, and the errors of the fit

    def gemm_factor(self, tokens: float, width: float) -> float:
        """Fraction of the hardware's GEMM rate a step of `tokens` tokens reaches on shards
        of `width` output columns per GPU."""
        f = self.gemm_efficiency
        if self.gemm_tokens_half:
            f *= tokens / (tokens + self.gemm_tokens_half)
        if self.gemm_width_half:
            f *= width / (width + self.gemm_width_half)
        return f

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: the pure roofline: no engine losses beyond the hardware profile, no engine overheads
#: (the hardware profile's own step overhead and link latency still apply)
ROOFLINE = EngineProfile(
    name="roofline", description="datasheet x the hardware profile's achievable "
    "efficiencies; no engine losses or overheads", source="hardware datasheets (no engine "
    "measurements)", data_date="")

#: what `--ideal` runs: efficiencies 1 and no fixed costs at all
IDEAL = EngineProfile(
    name="ideal", description="pure roofline: efficiencies 1, no overheads",
    source="hardware datasheets", data_date="", step_overhead_s=0.0,
    allreduce_latency_s=0.0)

ENGINES: dict[str, EngineProfile] = {"roofline": ROOFLINE}
DEFAULT_ENGINE = "roofline"


def load_engine(name_or_path: Any = None) -> EngineProfile:
    """An engine profile by name (None: the default)."""
    from simkit.errors import SimkitError

    if isinstance(name_or_path, EngineProfile):
        return name_or_path
    key = DEFAULT_ENGINE if name_or_path is None else str(name_or_path)
    if key in ENGINES:
        return ENGINES[key]
    raise SimkitError(f"engine: unknown engine {key!r}; choose one of {', '.join(ENGINES)}")
