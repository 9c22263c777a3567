"""Fitting measured times to the cost model: rates, fixed overheads, exponents, held-out error.

The cost model says a kernel call takes  t = work / rate + overhead_s , where work is the
call's FLOPs (compute-bound prefill) or bytes (memory-bound decode), rate the achieved FLOP/s
or bytes/s, and overhead_s a fixed cost per call (Python, dispatch, thread start). We fit
(rate, overhead) with scipy's bounded least squares (nnls, then a robust soft-L1
`least_squares` refinement) on *relative* residuals, so a 1 ms call and a 1 s call weigh
the same. The empirical exponent is the ordinary least-squares slope of
log t against log n, with a Student-t confidence interval. The held-out error fits on the
smaller sizes only, predicts the largest, and compares with what was measured there.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class PowerLawFit:
    """t ~ prefactor * n**exponent, with a confidence interval on the exponent."""

    exponent: float
    ci_low: float
    ci_high: float
    confidence: float
    prefactor: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class RateFit:
    """t = work / rate_per_s + overhead_s, fitted; rms_rel_residual is the fit's quality."""

    rate_per_s: float
    overhead_s: float
    rms_rel_residual: float
    points: int

    def predict(self, work) -> np.ndarray:
        return np.asarray(work, float) / self.rate_per_s + self.overhead_s

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _as_positive(name: str, a: Sequence[float]) -> np.ndarray:
    x = np.asarray(a, dtype=float)
    if x.ndim != 1 or not np.all(np.isfinite(x)) or np.any(x <= 0):
        raise ValueError(f"{name}: need a 1-D array of finite values > 0")
    return x


def fit_power_law(n: Sequence[float], t: Sequence[float], confidence: float = 0.95) -> PowerLawFit:
    """Log-log OLS slope of t against n and its `confidence` interval (needs >= 3 sizes)."""
    from scipy import stats

    x, y = np.log(_as_positive("n", n)), np.log(_as_positive("t", t))
    if x.size != y.size or x.size < 3 or np.ptp(x) == 0:
        raise ValueError("fit_power_law: need >= 3 points at >= 2 distinct sizes")
    res = stats.linregress(x, y)
    half = stats.t.ppf(0.5 + confidence / 2, df=x.size - 2) * res.stderr
    return PowerLawFit(float(res.slope), float(res.slope - half), float(res.slope + half),
                       confidence, float(np.exp(res.intercept)))


def fit_rate(work: Sequence[float], t: Sequence[float]) -> RateFit:
    """Fit t = work / rate + overhead (rate > 0, overhead >= 0) by least squares on t_pred/t - 1."""
    from scipy.optimize import least_squares

    w, tt = _as_positive("work", work), _as_positive("t", t)
    if w.size != tt.size or w.size < 2:
        raise ValueError("fit_rate: need >= 2 (work, time) points")
    # Work in units where both parameters are O(1): a = seconds per w_max units, b = seconds / t_max.
    w_scale, t_scale = w.max(), tt.max()
    ws, ts = w / w_scale, tt / t_scale

    def residual(p):
        return (p[0] * ws + p[1]) / ts - 1.0

    # The problem is linear in (a, b): the non-negative linear least-squares solution is the
    # exact L2 optimum. Then refine with a soft-L1 loss, which down-weights points more than
    # ~5% off the trend (a timing disturbed by another process), and keep whichever is better
    # under that robust loss.
    from scipy.optimize import nnls

    p0, _ = nnls(np.column_stack([ws / ts, 1 / ts]), np.ones_like(ts))
    p0 = np.maximum(p0, [1e-12, 0.0])
    f_scale = 0.05

    def robust_cost(p):
        z = (residual(p) / f_scale) ** 2
        return float(np.sum(2 * (np.sqrt(1 + z) - 1)))

    sol = least_squares(residual, p0, bounds=([1e-12, 0.0], [np.inf, np.inf]), method="trf",
                        loss="soft_l1", f_scale=f_scale, xtol=1e-15, ftol=1e-15, gtol=1e-15)
    p = sol.x if robust_cost(sol.x) < robust_cost(p0) else p0
    a, b = p
    rms = float(np.sqrt(np.mean(residual(p) ** 2)))
    return RateFit(float(w_scale / (a * t_scale)), float(b * t_scale), rms, int(w.size))


def heldout_rel_error(n: Sequence[float], work: Sequence[float], t: Sequence[float]) -> float:
    """Fit on every point with n below the largest n, predict the points at the largest n,
    and return the mean signed relative error (predicted - measured) / measured there."""
    nn = np.asarray(n, float)
    w, tt = np.asarray(work, float), np.asarray(t, float)
    train = nn < nn.max()
    if train.sum() < 2:
        raise ValueError("heldout_rel_error: need >= 2 points below the largest size")
    fit = fit_rate(w[train], tt[train])
    pred = fit.predict(w[~train])
    return float(np.mean((pred - tt[~train]) / tt[~train]))
