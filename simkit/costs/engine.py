"""Serving-engine profiles: what a real engine adds to, and loses from, the roofline.

A datasheet gives peaks; the hardware profile gives what the best kernels reach on that GPU
(`compute_efficiency`: a large bf16 GEMM; `memory_efficiency`: a STREAM-like kernel). An
engine profile then says how close one serving engine's kernels and runtime come to those
rates, and what fixed costs it pays. Every efficiency here is a fraction *of the hardware
profile's achievable rate*, and every overhead is in seconds, so a profile fitted on one GPU
transfers to another. `simkit.costs.compiled` is the one place that turns these terms into a
step time (its module docstring writes the formula out); `simkit.costs.steptime` gives the
same formula as a sympy expression.

The constants and what each one means physically:

- `gemm_efficiency` x shape factors: weight GEMMs run below the best GEMM's rate when the step
  has few tokens (the M dimension: a decode batch of 8 fills a fraction of a 64/128-row tile)
  and when tensor parallelism leaves each GPU a narrow shard (the N dimension: too few tiles
  to fill the SMs). Factor = gemm_efficiency x tokens / (tokens + gemm_tokens_half) x
  width / (width + gemm_width_half), width = d_model / tensor-parallel GPUs.
- `gemm_fp8_efficiency`: weight GEMMs on fp8 tensor cores (fp8 weights: `compute_dtype`
  fp8) reach this fraction of what the same shapes reach in 16-bit, each relative to its own
  peak. The hardware profile's `compute_efficiency` is a measured bf16 GEMM; an engine's fp8
  path adds work the 16-bit one does not (quantizing activations per token, scaling the
  output) and its kernels are younger, so its fraction of the fp8 peak can be lower.
- `fp8_gemm_by_hardware` (optional, per GPU of the catalog): where one engine's fp8 GEMM
  kernels are measured to reach less on one GPU than its `gemm_fp8_efficiency` gives
  elsewhere -- kernels are dispatched per architecture, and an engine may ship tuned
  configurations for some and not for others -- that GPU's factor multiplies it there.
  `fp8_gemm_source` says where each factor comes from.
- `memory_efficiency`: weight streaming, as a fraction of the hardware's streaming rate.
- `gemm_serial_fraction`: how much of the shorter of the two -- the weight GEMMs' tensor-core
  work and their weight streaming -- is *not* hidden under the longer: the matmuls take
  max(C, W) + f x min(C, W). 0 is the roofline's perfect overlap; 1 runs them one after the
  other. Real steps sit between: a GEMM overlaps loads and math only inside its main loop
  (its prologue, epilogue and the small kernels between GEMMs do not), and a step of a few
  hundred tokens re-reads weight tiles for every 64-256-row block of them. What shows it is a
  step time that keeps a weight-streaming intercept at large batch -- measured serving runs
  near their capacity (MLPerf Server: TensorRT-LLM on H200 holds ~450 requests per GPU at a
  123 ms step, which a perfectly overlapped step would reach at a fraction of that batch).
- `attn_prefill_efficiency`: the prefill attention kernel (FlashAttention and kin) as a
  fraction of the hardware's GEMM rate; `attn_decode_efficiency`: the decode attention kernel
  (paged attention reads scattered blocks) as a fraction of its streaming rate.
- `step_overhead_s` (scheduling, input preparation, sampling: once per step),
  `layer_overhead_s` (kernel launches and the small kernels between GEMMs: norms, rotary,
  activations; per layer and step), `sequence_overhead_s` (per sequence in the step: its
  sampling, detokenisation and bookkeeping).
- routed-expert (MoE) layers also pay their kernels' latency and per-slot traffic, measured
  on the GPU rather than fitted here (`simkit.costs.roofline.MOE_KERNEL_COSTS`); only the
  `roofline` and `--ideal` profiles leave them out.
- `reserves_activations` (a flag, not a fitted constant): the engine sizes its KV cache from
  the memory fraction less the activations of its profiling pass (vLLM's profile run,
  TensorRT-LLM's activation buffers), which grow with the step's token budget and the
  sequences sampled (`simkit.costs.activations`). False: the fraction holds weights and
  cache only (SGLang's ``mem_fraction_static``, the roofline).
- all-reduce (Megatron tensor parallelism, one after every token mixer and every FFN):
  `allreduce_latency_s` per collective plus `allreduce_step_latency_s` per step of the ring
  (a ring all-reduce over N GPUs takes 2 (N-1) dependent steps: NCCL's latency grows with
  N, a one-shot custom all-reduce's does not), plus bytes over `allreduce_efficiency` x the
  link bandwidth (ring: 2 (N-1)/N of the message crosses each GPU's link).

Profiles are data: `simkit/data/engines/*.toml`, each with the measurements it was fitted on,
their date and the fit's errors, plus the Python `ROOFLINE` (no engine losses) and `IDEAL`
(`--ideal`). A user profile is the same TOML (`simkit calibrate --measurements` writes one),
read with strict keys.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping

from simkit.errors import SimkitError

#: shipped profiles: one TOML file per engine
ENGINE_DIR = Path(__file__).resolve().parent.parent / "data" / "engines"


@dataclass(frozen=True)
class EngineProfile:
    """One serving engine's efficiency factors and fixed costs (see the module doc)."""

    name: str
    description: str
    source: str  # the measurements the constants were fitted on
    data_date: str  # date of those measurements
    engine_version: str = ""  # the engine versions those measurements ran
    gemm_efficiency: float = 1.0
    gemm_tokens_half: float = 0.0  # 0: no token-count penalty
    gemm_width_half: float = 0.0  # 0: no shard-width penalty
    gemm_fp8_efficiency: float = 1.0  # fp8 GEMMs vs 16-bit ones, each of its own peak
    memory_efficiency: float = 1.0
    gemm_serial_fraction: float = 0.0  # 0: the roofline's perfect overlap
    attn_prefill_efficiency: float = 1.0
    attn_decode_efficiency: float = 1.0
    #: None: the hardware profile's step overhead (a calibrated machine measures its own)
    step_overhead_s: float | None = None
    layer_overhead_s: float = 0.0
    sequence_overhead_s: float = 0.0
    #: None: the hardware profile's interconnect latency
    allreduce_latency_s: float | None = None
    allreduce_step_latency_s: float = 0.0
    allreduce_efficiency: float = 1.0
    #: whether routed-expert layers pay their kernels' measured latency and per-slot
    #: traffic (`simkit.costs.roofline.MOE_KERNEL_COSTS`); False only for the roofline
    moe_kernels: bool = True
    #: whether the engine sizes its KV cache after reserving the activations of its
    #: profiling pass (vLLM, TensorRT-LLM) or counts weights and cache alone in the memory
    #: fraction (SGLang's mem_fraction_static, the roofline): `simkit.costs.activations`
    reserves_activations: bool = False
    fit: str = ""  # how the constants were fitted
    #: the fit's errors: (name, fraction) pairs, e.g. ("heldout_kfold.decode.median_abs", 0.04)
    errors: tuple[tuple[str, float], ...] = ()
    #: (hardware name, factor) pairs: this engine's fp8 GEMMs on that GPU reach `factor` x
    #: what `gemm_fp8_efficiency` gives elsewhere (see the module docstring)
    fp8_gemm_by_hardware: tuple[tuple[str, float], ...] = ()
    fp8_gemm_source: str = ""  # where those factors come from
    path: str = ""  # the file it was read from ("" for the Python profiles)

    def gemm_factor(self, tokens, width):
        """Fraction of the hardware's GEMM rate a step of `tokens` tokens reaches on shards
        of `width` output columns per GPU (numpy broadcasts)."""
        f = self.gemm_efficiency
        if self.gemm_tokens_half:
            f = f * (tokens / (tokens + self.gemm_tokens_half))
        if self.gemm_width_half:
            f = f * (width / (width + self.gemm_width_half))
        return f

    def fp8_gemm_efficiency_on(self, hardware: str) -> float:
        """`gemm_fp8_efficiency` on the GPU named `hardware` (its `fp8_gemm_by_hardware`
        factor applied, if it has one)."""
        for name, factor in self.fp8_gemm_by_hardware:
            if name == hardware:
                return self.gemm_fp8_efficiency * factor
        return self.gemm_fp8_efficiency

    def step_overhead_on(self, hw) -> float:
        """Fixed seconds per step on hardware profile `hw`: the engine's, or the hardware
        profile's where the engine states none (the roofline)."""
        return hw.step_overhead_s if self.step_overhead_s is None else self.step_overhead_s

    def allreduce_latency_on(self, hw) -> float:
        """Seconds of latency per all-reduce on `hw`: the engine's, or the hardware
        profile's link latency where the engine states none."""
        return hw.interconnect_latency_s if self.allreduce_latency_s is None \
            else self.allreduce_latency_s

    def constants(self) -> dict[str, float | None]:
        """The constants alone (what a fit sets), by name."""
        return {k: getattr(self, k) for k in CONSTANTS}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["errors"] = dict(self.errors)
        d["fp8_gemm_by_hardware"] = dict(self.fp8_gemm_by_hardware)
        return d


#: constant name -> (lowest allowed, highest allowed, may be absent/None, meaning)
CONSTANTS: dict[str, tuple[float, float, bool, str]] = {
    "gemm_efficiency": (0.0, 2.0, False, "weight-GEMM rate at large shapes, x the hardware's "
                        "GEMM rate"),
    "gemm_tokens_half": (0.0, 1e6, False, "tokens in a step at which GEMMs reach half that "
                         "rate (M-tile fill)"),
    "gemm_width_half": (0.0, 1e6, False, "per-GPU shard width at which GEMMs reach half that "
                        "rate (too few tiles)"),
    "gemm_fp8_efficiency": (0.0, 2.0, False, "fp8 weight GEMMs: fraction of the fp8 peak, "
                            "relative to 16-bit GEMMs' fraction of theirs"),
    "memory_efficiency": (0.0, 2.0, False, "weight streaming, x the hardware's streaming rate"),
    "gemm_serial_fraction": (0.0, 1.0, False, "share of the shorter of weight-GEMM compute and "
                             "weight streaming not hidden under the longer"),
    "attn_prefill_efficiency": (0.0, 2.0, False, "prefill attention kernel, x the hardware's "
                                "GEMM rate"),
    "attn_decode_efficiency": (0.0, 2.0, False, "decode attention kernel, x the hardware's "
                               "streaming rate"),
    "step_overhead_s": (0.0, 10.0, True, "fixed cost per step (scheduling, input preparation, "
                        "sampling)"),
    "layer_overhead_s": (0.0, 1.0, False, "fixed cost per layer and step (launches, small "
                         "kernels)"),
    "sequence_overhead_s": (0.0, 1.0, False, "fixed cost per sequence in a step"),
    "allreduce_latency_s": (0.0, 1.0, True, "latency of one all-reduce"),
    "allreduce_step_latency_s": (0.0, 1.0, False, "latency per ring step (2 (N-1) steps per "
                                 "all-reduce)"),
    "allreduce_efficiency": (0.0, 2.0, False, "achieved all-reduce bus bandwidth, x the link's"),
}
_EFFICIENCIES = {k for k in CONSTANTS if k.endswith("efficiency")}
_META = ("name", "description", "source", "data_date", "engine_version", "fit",
         "fp8_gemm_source")
_TABLES = ("constants", "errors", "fp8_gemm_by_hardware")
#: top-level true/false keys
_FLAGS = ("reserves_activations",)


#: the pure roofline: no engine losses beyond the hardware profile, no engine overheads
#: (the hardware profile's own step overhead and link latency still apply)
ROOFLINE = EngineProfile(
    name="roofline", description="datasheet x the hardware profile's achievable "
    "efficiencies; no engine losses or overheads", source="hardware datasheets (no engine "
    "measurements)", data_date="", moe_kernels=False)

#: what `--ideal` runs: efficiencies 1 and no fixed costs at all
IDEAL = EngineProfile(
    name="ideal", description="pure roofline: efficiencies 1, no overheads",
    source="hardware datasheets", data_date="", step_overhead_s=0.0,
    allreduce_latency_s=0.0, moe_kernels=False)

#: the engine every path uses when none is named
DEFAULT_ENGINE = "vllm"

_ENGINES: dict[str, EngineProfile] | None = None


def engines() -> dict[str, EngineProfile]:
    """Every shipped profile by name: `roofline` and one per `simkit/data/engines/*.toml`."""
    global _ENGINES
    if _ENGINES is None:
        found = {"roofline": ROOFLINE}
        for p in sorted(ENGINE_DIR.glob("*.toml")):
            prof = read_engine(p)
            found[prof.name] = prof
        _ENGINES = found
    return _ENGINES


def engine_names() -> list[str]:
    return list(engines())


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def engine_from_dict(data: Mapping[str, Any], where: str = "engine",
                     path: str = "") -> EngineProfile:
    """Build a profile from a TOML document, checking every key (errors name `where.key`)."""
    errors = [f"{where}.{k}: unknown key (known: {', '.join(_META + _FLAGS)}, "
              f"{', '.join(f'[{t}]' for t in _TABLES)})"
              for k in data if k not in _META and k not in _TABLES and k not in _FLAGS]
    if "name" not in data:
        errors.append(f"{where}.name: missing")
    for k in _META:
        if k in data and not isinstance(data[k], str):
            errors.append(f"{where}.{k}: must be a string, got {data[k]!r}")
    for k in _FLAGS:
        if k in data and not isinstance(data[k], bool):
            errors.append(f"{where}.{k}: must be true or false, got {data[k]!r}")
    consts = data.get("constants", {})
    if not isinstance(consts, Mapping):
        errors.append(f"{where}.constants: must be a table")
        consts = {}
    kw: dict[str, Any] = {}
    for k, v in consts.items():
        if k not in CONSTANTS:
            errors.append(f"{where}.constants.{k}: unknown constant (known: "
                          f"{', '.join(CONSTANTS)})")
            continue
        lo, hi, _, _ = CONSTANTS[k]
        ok = _number(v) and lo <= v <= hi and not (k in _EFFICIENCIES and v == 0)
        if not ok:
            rng = f"in (0, {hi:g}]" if k in _EFFICIENCIES else f"in [{lo:g}, {hi:g}]"
            errors.append(f"{where}.constants.{k}: must be a number {rng}, got {v!r}")
        else:
            kw[k] = float(v)
    errs = data.get("errors", {})
    if not isinstance(errs, Mapping):
        errors.append(f"{where}.errors: must be a table of name = fraction")
        errs = {}
    err_pairs = []
    for k, v in errs.items():
        if not _number(v):
            errors.append(f"{where}.errors.{k}: must be a number, got {v!r}")
        else:
            err_pairs.append((str(k), float(v)))
    by_hw = _fp8_by_hardware(data.get("fp8_gemm_by_hardware", {}), where, errors)
    if by_hw and not data.get("fp8_gemm_source"):
        errors.append(f"{where}.fp8_gemm_source: missing (say where the "
                      "[fp8_gemm_by_hardware] factors come from)")
    if errors:
        raise SimkitError(*errors)
    meta = {k: str(data.get(k, "")) for k in _META}
    if not meta["description"]:
        meta["description"] = meta["name"]
    if not meta["source"]:
        meta["source"] = "user profile"
    flags = {k: bool(data[k]) for k in _FLAGS if k in data}
    return EngineProfile(**meta, **kw, **flags, errors=tuple(err_pairs),
                         fp8_gemm_by_hardware=by_hw, path=path)


def _fp8_by_hardware(table: Any, where: str, errors: list[str]) -> tuple[tuple[str, float], ...]:
    """The [fp8_gemm_by_hardware] table: catalog GPU names to factors in (0, 2]."""
    from simkit.catalog.hardware import hardware_names

    if not isinstance(table, Mapping):
        errors.append(f"{where}.fp8_gemm_by_hardware: must be a table of GPU = factor")
        return ()
    known = hardware_names()
    pairs = []
    for k, v in table.items():
        if k not in known:
            errors.append(f"{where}.fp8_gemm_by_hardware.{k}: unknown GPU (known: "
                          f"{', '.join(known)})")
        elif not (_number(v) and 0 < v <= 2):
            errors.append(f"{where}.fp8_gemm_by_hardware.{k}: must be a number in (0, 2], "
                          f"got {v!r}")
        else:
            pairs.append((str(k), float(v)))
    return tuple(sorted(pairs))


def read_engine(path: str | Path) -> EngineProfile:
    p = Path(path)
    if not p.is_file():
        raise SimkitError(f"engine: no such engine profile file {str(path)!r}")
    try:
        data = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise SimkitError(f"engine: {p}: not valid TOML ({e})") from None
    return engine_from_dict(data, where=p.name, path=str(p))


def load_engine(name_or_path: Any = None) -> EngineProfile:
    """An engine profile by name or ENGINE.toml path (None: the default, `vllm`)."""
    if isinstance(name_or_path, EngineProfile):
        return name_or_path
    key = DEFAULT_ENGINE if name_or_path is None else str(name_or_path)
    known = engines()
    if key in known:
        return known[key]
    p = Path(key)
    if p.suffix == ".toml" or p.exists():
        return read_engine(p)
    raise SimkitError(f"engine: unknown engine {key!r}; choose one of {', '.join(known)} "
                      "or give an ENGINE.toml file")


def check_engine(value: Any, where: str = "hardware.engine") -> str | None:
    """Validate an engine setting (a known name or an existing, valid ENGINE.toml) without
    keeping the profile; errors name `where`."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise SimkitError(f"{where}: must be an engine name or an ENGINE.toml path, got "
                          f"{value!r}")
    try:
        load_engine(value)
    except SimkitError as e:
        msg = e.messages[0]
        raise SimkitError(f"{where}: {msg.removeprefix('engine: ')}", *e.messages[1:]) \
            from None
    return value


def engine_to_toml(profile: EngineProfile) -> str:
    """Serialise a profile as TOML that `read_engine` reads back exactly (floats by repr)."""
    def s(v: str) -> str:
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = ["# simkit serving-engine profile: `--engine FILE.toml`, or hardware.engine in a "
             "scenario", "# (constants are fractions of the hardware profile's rates, "
             "overheads in seconds)"]
    for k in _META:
        v = getattr(profile, k)
        if v:
            lines.append(f"{k} = {s(v)}")
    for k in _FLAGS:
        if getattr(profile, k):
            lines.append(f"{k} = true")
    lines += ["", "[constants]"]
    for k, (_, _, _, meaning) in CONSTANTS.items():
        v = getattr(profile, k)
        if v is not None:
            lines.append(f"{k} = {float(v)!r}  # {meaning}")
    if profile.fp8_gemm_by_hardware:
        lines += ["", "[fp8_gemm_by_hardware]  # x gemm_fp8_efficiency on these GPUs (see "
                  "fp8_gemm_source)"]
        lines += [f"{k} = {float(v)!r}" for k, v in profile.fp8_gemm_by_hardware]
    if profile.errors:
        lines += ["", "[errors]  # fractions: (simkit - measured) / measured"]
        lines += [f"{s(k)} = {float(v)!r}" for k, v in profile.errors]
    return "\n".join(lines) + "\n"


def profile_fields() -> list[str]:
    return [f.name for f in fields(EngineProfile)]
