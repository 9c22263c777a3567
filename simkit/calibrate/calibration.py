"""One calibration run: time every kernel over a grid, fit the cost model, collect the result.

`run_calibration()` measures, on this machine:
- numpy's square GEMM (the physical compute reference) and a large array copy (bandwidth);
- each family's prefill over a grid of n (and a larger batch at one n), fitted to
  t = model_flops / rate + overhead, with the log-log exponent of t vs n and the held-out
  error (fit on the smaller n, predict the largest);
- the full-attention decode step over large contexts, fitted to t = kv_bytes / rate + overhead
  (memory-bound), and every family's decode step time vs context.

Fits use each measurement's fastest repeat ("seconds"; the median and spread are kept beside
it): on a shared machine the slower repeats mostly time other processes, as the `timeit`
documentation notes, and the GEMM reference is taken the same way, so ratios compare like
with like.

The result is plain data (`CalibrationResult.to_dict()`), which `profile.py` turns into a
hardware profile and the report layer draws.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from simkit.calibrate import counts, fit, kernels, timing
from simkit.calibrate.counts import KernelShape


@dataclass(frozen=True)
class CalibrationPlan:
    """What to time. `n_grid` needs >= 3 sizes (exponent CI) and the held-out fit >= 2 below
    the largest; `batch_grid` multiplies the heads at the middle n (batch > 1 points)."""

    shape: KernelShape = KernelShape()
    n_grid: tuple[int, ...] = (512, 1024, 2048, 4096)
    batch_grid: tuple[int, ...] = (2,)
    decode_heads: int = 8  # decode reads 8 * (128 + 128) * 4 B = 8 KiB of KV per token
    decode_contexts: tuple[int, ...] = (16384, 32768, 65536, 131072)  # 128 MiB .. 1 GiB
    gemm_size: int = 2048
    copy_bytes: int = 256 * 2**20
    repeats: int = 3
    warmup: int = 1

    def validate(self) -> None:
        if len(set(self.n_grid)) < 3 or min(self.n_grid) < 1:
            raise ValueError(f"n_grid needs >= 3 distinct sizes >= 1, got {self.n_grid}")
        if len(set(self.decode_contexts)) < 3:
            raise ValueError(f"decode_contexts needs >= 3 sizes, got {self.decode_contexts}")


QUICK_PLAN = CalibrationPlan()
FULL_PLAN = CalibrationPlan(n_grid=(1024, 2048, 4096, 8192, 16384), batch_grid=(2, 4),
                            decode_contexts=(8192, 16384, 32768, 65536, 131072),
                            gemm_size=4096, copy_bytes=512 * 2**20, repeats=5)


@dataclass
class KernelFit:
    """One family's prefill measurements and fits."""

    family: str
    exponent: float
    exponent_ci: tuple[float, float]
    flops_per_s: float  # fitted, on the cost model's FLOP count
    overhead_s: float
    fraction_of_gemm: float
    heldout_rel_error: float
    rms_rel_residual: float
    kernel_flops_per_s: float  # what the kernel multiplies / time, at the largest n
    points: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["exponent_ci"] = list(self.exponent_ci)
        return d


@dataclass
class DecodeFit:
    """Full-attention decode (memory-bound) fit, and every family's decode time vs context."""

    bytes_per_s: float
    overhead_s: float
    memory_efficiency: float  # bytes_per_s / copy bandwidth, capped at 1
    exponent: float
    exponent_ci: tuple[float, float]
    heldout_rel_error: float
    points: list[dict[str, float]] = field(default_factory=list)
    families: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["exponent_ci"] = list(self.exponent_ci)
        return d


@dataclass
class CalibrationResult:
    """Everything a calibration measured. `to_dict()` is JSON-ready (see the module doc)."""

    gemm_flops_per_s: float
    copy_bytes_per_s: float
    ram_bytes: float
    machine: dict[str, Any]
    shape: KernelShape
    plan: str  # "quick", "full" or "custom"
    seed: int
    kernels: dict[str, KernelFit]
    decode: DecodeFit
    elapsed_s: float

    @property
    def compute_efficiency(self) -> float:
        """Full-attention prefill FLOP/s as a fraction of GEMM (capped at 1)."""
        return min(1.0, self.kernels["full"].flops_per_s / self.gemm_flops_per_s)

    def to_dict(self) -> dict[str, Any]:
        return {
            "gemm_flops_per_s": self.gemm_flops_per_s,
            "copy_bytes_per_s": self.copy_bytes_per_s,
            "ram_bytes": self.ram_bytes,
            "compute_efficiency": self.compute_efficiency,
            "memory_efficiency": self.decode.memory_efficiency,
            "step_overhead_s": self.decode.overhead_s,
            "machine": dict(self.machine),
            "shape": asdict(self.shape),
            "plan": self.plan,
            "seed": self.seed,
            "kernels": {f: k.to_dict() for f, k in self.kernels.items()},
            "decode": self.decode.to_dict(),
            "elapsed_s": self.elapsed_s,
        }


# --------------------------------------------------------------------------------------------

def _rng(seed: int, *key: int) -> np.random.Generator:
    """Inputs depend only on (seed, family, size), not on the order things are timed in."""
    return np.random.default_rng([seed, *key])


def _prefill_call(family: str, n: int, sh: KernelShape, seed: int):
    """A zero-argument closure running one prefill of `family` on seeded float32 inputs."""
    fi = kernels.FAMILIES.index(family)
    rng = _rng(seed, fi, n, sh.heads)
    f32 = np.float32
    if family == "ssm":
        x = rng.standard_normal((sh.ssm_batch, n, sh.d_inner), dtype=f32)
        dt = np.log1p(np.exp(rng.standard_normal((sh.ssm_batch, n, sh.d_inner), dtype=f32)))
        b = rng.standard_normal((sh.ssm_batch, n, sh.d_state), dtype=f32)
        c = rng.standard_normal((sh.ssm_batch, n, sh.d_state), dtype=f32)
        p = kernels.SSMParams.random(sh.d_inner, sh.d_state, sh.d_conv, rng, f32)
        return lambda: kernels.ssm_prefill(x, dt, b, c, p)
    q = rng.standard_normal((sh.heads, n, sh.d_qk), dtype=f32)
    k = rng.standard_normal((sh.heads, n, sh.d_qk), dtype=f32)
    v = rng.standard_normal((sh.heads, n, sh.d_v), dtype=f32)
    if family == "full":
        return lambda: kernels.full_prefill(q, k, v, tile=sh.tile)
    if family == "window":
        return lambda: kernels.window_prefill(q, k, v, sh.window, tile=sh.tile)
    if family == "sparse":
        return lambda: kernels.sparse_prefill(q, k, v, sh.window, sh.global_tokens,
                                              tile=sh.tile)
    if family == "linear":
        return lambda: kernels.linear_prefill(q, k, v, chunk=sh.linear_chunk)
    if family == "memory":
        mk = rng.standard_normal((sh.heads, sh.memory_slots, sh.d_qk), dtype=f32)
        mv = rng.standard_normal((sh.heads, sh.memory_slots, sh.d_v), dtype=f32)
        return lambda: kernels.memory_prefill(q, k, v, mk, mv, sh.segment)
    raise ValueError(family)


def _batched(sh: KernelShape, batch: int) -> KernelShape:
    return replace(sh, heads=sh.heads * batch, ssm_batch=sh.ssm_batch * batch)


def _measure_family(family: str, plan: CalibrationPlan, seed: int, gemm: float,
                    progress: timing.Progress) -> KernelFit:
    sh = plan.shape
    grid = sorted(set(plan.n_grid))
    mid = grid[len(grid) // 2]
    points = [(n, 1) for n in grid] + [(mid, b) for b in plan.batch_grid if b != 1]
    rows = []
    for n, b in points:
        shb = _batched(sh, b)
        t = timing.time_call(_prefill_call(family, n, shb, seed), warmup=plan.warmup,
                             repeats=plan.repeats)
        rows.append({"n": n, "batch": b, "seconds": t.min_s, "median_s": t.median_s,
                     "rel_spread": t.rel_spread,
                     "model_flops": float(counts.model_flops(family, n, shb)),
                     "kernel_flops": float(counts.kernel_flops(family, n, shb))})
        progress.step(f"{family} prefill n={n} batch={b}: {t.median_s * 1e3:.1f} ms")
    single = [r for r in rows if r["batch"] == 1]
    pl = fit.fit_power_law([r["n"] for r in single], [r["seconds"] for r in single])
    rate = fit.fit_rate([r["model_flops"] for r in rows], [r["seconds"] for r in rows])
    held = fit.heldout_rel_error([r["n"] for r in rows], [r["model_flops"] for r in rows],
                                 [r["seconds"] for r in rows])
    last = single[-1]
    return KernelFit(family, pl.exponent, (pl.ci_low, pl.ci_high), rate.rate_per_s,
                     rate.overhead_s, rate.rate_per_s / gemm, held, rate.rms_rel_residual,
                     last["kernel_flops"] / last["seconds"], rows)


def _filled(rng: np.random.Generator, shape: tuple[int, ...], block: int = 1024) -> np.ndarray:
    """A large float32 array tiled from one random block (cheap to make; the decode read's
    speed does not depend on the values)."""
    h, t, d = shape
    base = rng.standard_normal((h, min(t, block), d), dtype=np.float32)
    return np.tile(base, (1, -(-t // base.shape[1]), 1))[:, :t]


def _decode_call(family: str, t: int, sh: KernelShape, seed: int):
    """One decode step of `family` at context t (state built directly, not by a prefill)."""
    fi = kernels.FAMILIES.index(family)
    rng = _rng(seed, 100 + fi, t)
    f32 = np.float32
    h = sh.heads
    q = rng.standard_normal((h, sh.d_qk), dtype=f32)
    k = rng.standard_normal((h, sh.d_qk), dtype=f32)
    v = rng.standard_normal((h, sh.d_v), dtype=f32)
    if family in ("full", "window", "sparse"):
        span = t if family == "full" else min(t, sh.window)
        keys = _filled(rng, (h, span, sh.d_qk))
        vals = _filled(rng, (h, span, sh.d_v))
        if family == "full":
            return lambda: kernels.attend(q, keys, vals)
        g = sh.global_tokens if family == "sparse" else 0
        cache = kernels.WindowCache.from_prompt(keys, vals, sh.window, g)
        cache.length = t  # as if t tokens had passed; the ring holds the last min(t, w)
        return lambda: kernels.window_decode(cache, q, k, v)
    if family == "linear":
        st = kernels.LinearState(np.abs(rng.standard_normal((h, sh.d_qk, sh.d_v + 1),
                                                            dtype=f32)) + 1)
        return lambda: kernels.linear_decode(st, q, k, v)
    if family == "memory":
        mk = rng.standard_normal((h, sh.memory_slots, sh.d_qk), dtype=f32)
        mv = rng.standard_normal((h, sh.memory_slots, sh.d_v), dtype=f32)
        st = kernels.MemoryState.empty(mk, mv, sh.segment)

        def step():  # the segment position cycles; the memory write (one m x s attention per
            # s tokens, amortised the same as one read of the m slots) is left out
            if st.seg_len >= sh.segment - 1:
                st.seg_len = 0
            return kernels.memory_decode(st, q, k, v)
        return step
    if family == "ssm":
        p = kernels.SSMParams.random(sh.d_inner, sh.d_state, sh.d_conv, rng, f32)
        b = sh.ssm_batch
        st = kernels.SSMState(np.zeros((b, sh.d_conv - 1, sh.d_inner), f32),
                              np.zeros((b, sh.d_inner, sh.d_state), f32))
        x = rng.standard_normal((b, sh.d_inner), dtype=f32)
        dt = np.full((b, sh.d_inner), 0.1, f32)
        bb = rng.standard_normal((b, sh.d_state), dtype=f32)
        return lambda: kernels.ssm_decode(st, x, dt, bb, bb, p)
    raise ValueError(family)


def _measure_decode(plan: CalibrationPlan, seed: int, copy_bw: float,
                    progress: timing.Progress) -> DecodeFit:
    sh = replace(plan.shape, heads=plan.decode_heads)
    rows = []
    for t in sorted(set(plan.decode_contexts)):
        tm = timing.time_call(_decode_call("full", t, sh, seed), warmup=plan.warmup,
                              repeats=max(plan.repeats, 5))
        rows.append({"context": t, "seconds": tm.min_s, "median_s": tm.median_s,
                     "rel_spread": tm.rel_spread,
                     "bytes": float(counts.decode_kv_bytes(t, sh)),
                     "flops": float(counts.decode_flops(t, sh))})
        progress.step(f"full decode t={t}: {tm.median_s * 1e3:.2f} ms")
    ctx = [r["context"] for r in rows]
    secs = [r["seconds"] for r in rows]
    rate = fit.fit_rate([r["bytes"] for r in rows], secs)
    pl = fit.fit_power_law(ctx, secs)
    held = fit.heldout_rel_error(ctx, [r["bytes"] for r in rows], secs)
    families: dict[str, dict[str, Any]] = {}
    for fam in kernels.FAMILIES:
        pts = []
        for t in sorted(set(plan.n_grid)):
            tm = timing.time_call(_decode_call(fam, t, plan.shape, seed), warmup=plan.warmup,
                                  repeats=max(plan.repeats, 5))
            pts.append({"context": t, "seconds": tm.min_s, "median_s": tm.median_s})
        progress.step(f"{fam} decode steps")
        fl = fit.fit_power_law([p["context"] for p in pts], [p["seconds"] for p in pts])
        families[fam] = {"exponent": fl.exponent, "exponent_ci": [fl.ci_low, fl.ci_high],
                         "points": pts}
    return DecodeFit(rate.rate_per_s, rate.overhead_s, min(1.0, rate.rate_per_s / copy_bw),
                     pl.exponent, (pl.ci_low, pl.ci_high), held, rows, families)


def run_calibration(quick: bool = True, sizes: tuple[int, ...] | list[int] | None = None,
                    progress: bool = False, seed: int = 0,
                    plan: CalibrationPlan | None = None) -> CalibrationResult:
    """Time the kernels and fit the cost model on this machine.

    quick: the QUICK_PLAN (under a minute on 2 cores) instead of FULL_PLAN; `plan` overrides
    both; `sizes` overrides the prefill n grid (>= 3 sizes). Progress goes to stderr when it
    is a terminal."""
    if plan is None:
        plan = QUICK_PLAN if quick else FULL_PLAN
        name = "quick" if quick else "full"
    else:
        name = "custom"
    if sizes is not None:
        plan = replace(plan, n_grid=tuple(int(s) for s in sizes))
        name = "custom"
    plan.validate()
    start = time.perf_counter()
    total = (2 + len(kernels.FAMILIES) * (len(set(plan.n_grid)) + len(plan.batch_grid))
             + len(set(plan.decode_contexts)) + len(kernels.FAMILIES))
    bar = timing.Progress(total, enabled=progress)
    try:
        machine = timing.blas_info()
        gemm, _ = timing.gemm_flops_per_s(plan.gemm_size, repeats=max(plan.repeats, 3),
                                          seed=seed)
        bar.step(f"GEMM {plan.gemm_size}: {gemm / 1e9:.1f} GFLOP/s")
        copy_bw, _ = timing.copy_bytes_per_s(plan.copy_bytes, repeats=max(plan.repeats, 3))
        bar.step(f"copy: {copy_bw / 1e9:.1f} GB/s")
        fits = {fam: _measure_family(fam, plan, seed, gemm, bar) for fam in kernels.FAMILIES}
        decode = _measure_decode(plan, seed, copy_bw, bar)
    finally:
        bar.close()
    return CalibrationResult(gemm, copy_bw, timing.ram_bytes(), machine, plan.shape, name, seed,
                             fits, decode, time.perf_counter() - start)
