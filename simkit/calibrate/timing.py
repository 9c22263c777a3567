"""Timing harness: warm-up, repeats, median and spread; machine references (GEMM, copy).

Every measurement records what could make it differ between runs: the BLAS library, its
version and thread count (threadpoolctl), and the number of cores. Inputs are generated from a
seed, so two runs time the same numbers. Progress goes to stderr, and only to a terminal.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Wall-clock times of repeated calls of one function (seconds)."""

    median_s: float
    min_s: float
    max_s: float
    iqr_s: float  # interquartile range: the spread
    repeats: int

    @property
    def rel_spread(self) -> float:
        """IQR / median: how noisy this measurement was."""
        return self.iqr_s / self.median_s if self.median_s > 0 else 0.0

    def to_dict(self) -> dict[str, float]:
        return {**asdict(self), "rel_spread": self.rel_spread}


def time_call(fn: Callable[[], Any], *, warmup: int = 1, repeats: int = 5,
              clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Call fn `warmup` times untimed (caches, allocator, thread pool), then `repeats` times."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got {repeats}, {warmup}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    a = np.asarray(times)
    q25, q50, q75 = np.percentile(a, [25, 50, 75])
    return Timing(float(q50), float(a.min()), float(a.max()), float(q75 - q25), repeats)


def blas_info() -> dict[str, Any]:
    """The BLAS numpy calls (library, version, threads, CPU kernel) and the machine."""
    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    from simkit.calibrate.kernels import available_cores

    info: dict[str, Any] = {
        "numpy": np.__version__,
        "cores": available_cores(),
        "machine": platform.machine(),
        "processor": _cpu_model(),
    }
    if blas:
        b = blas[0]
        info.update(blas=str(b.get("internal_api", "unknown")),
                    blas_version=str(b.get("version") or "unknown"),
                    blas_threads=int(b.get("num_threads", 0)),
                    blas_architecture=str(b.get("architecture") or "unknown"))
    else:  # pragma: no cover - numpy always links a BLAS in practice
        info.update(blas="none found", blas_version="", blas_threads=0, blas_architecture="")
    return info


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def gemm_flops_per_s(size: int = 2048, *, repeats: int = 5, seed: int = 0,
                     dtype=np.float32) -> tuple[float, Timing]:
    """numpy's own square matrix product: the physical compute reference, 2 n^3 FLOPs,
    at the fastest of `repeats` runs (the machine's achievable rate, undisturbed)."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((size, size), dtype=dtype)
    b = rng.standard_normal((size, size), dtype=dtype)
    out = np.empty_like(a)
    t = time_call(lambda: np.matmul(a, b, out=out), warmup=1, repeats=repeats)
    return 2.0 * size**3 / t.min_s, t


def copy_bytes_per_s(n_bytes: int = 256 * 2**20, *, repeats: int = 5) -> tuple[float, Timing]:
    """A large array copy: counts one read plus one write of n_bytes (2 n_bytes moved),
    the STREAM "copy" convention (write-allocate traffic is not counted); fastest repeat."""
    src = np.ones(n_bytes // 4, np.float32)
    dst = np.empty_like(src)
    t = time_call(lambda: np.copyto(dst, src), warmup=1, repeats=repeats)
    return 2.0 * src.nbytes / t.min_s, t


def ram_bytes() -> float:
    """Physical memory of the machine (os.sysconf pages x page size)."""
    try:
        return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 0.0


class Progress:
    """A one-line progress display on stderr, shown only when stderr is a terminal."""

    def __init__(self, total: int, enabled: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.total, self.done = max(1, total), 0

    def step(self, label: str) -> None:
        self.done += 1
        if self.enabled:
            self.stream.write(f"\r[{self.done:>3}/{self.total}] {label:<48.48}")
            self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()
