"""The fits recover known constants from synthetic timings (no real timing involved)."""

import numpy as np
import pytest

from simkit.calibrate import counts, fit


def _synthetic(rate, overhead, work, noise, seed=0):
    rng = np.random.default_rng(seed)
    return (np.asarray(work) / rate + overhead) * (1 + noise * rng.standard_normal(len(work)))


@pytest.mark.parametrize("rate,overhead", [(5e10, 2e-4), (1.3e9, 0.0), (2e11, 5e-3)])
def test_fit_rate_recovers_known_constants_exactly_without_noise(rate, overhead):
    work = np.geomspace(1e6, 1e11, 9)
    t = _synthetic(rate, overhead, work, 0.0)
    f = fit.fit_rate(work, t)
    assert f.rate_per_s == pytest.approx(rate, rel=1e-6)
    # the overhead is recovered to a millionth of the shortest time measured
    assert f.overhead_s == pytest.approx(overhead, rel=1e-6, abs=1e-6 * t.min())
    assert f.rms_rel_residual < 1e-9


def test_fit_rate_with_noise_is_close():
    rate, overhead = 8e10, 1e-3
    work = np.repeat(np.geomspace(1e7, 1e11, 8), 3)
    f = fit.fit_rate(work, _synthetic(rate, overhead, work, 0.02, seed=3))
    assert f.rate_per_s == pytest.approx(rate, rel=0.03)
    assert f.overhead_s == pytest.approx(overhead, rel=0.15)
    assert 0.005 < f.rms_rel_residual < 0.05


def test_fit_power_law_recovers_exponent_and_ci_covers():
    n = np.array([256, 512, 1024, 2048, 4096])
    clean = fit.fit_power_law(n, 3e-9 * n**2.0)
    assert clean.exponent == pytest.approx(2.0, abs=1e-12)
    assert clean.prefactor == pytest.approx(3e-9, rel=1e-9)
    noisy = fit.fit_power_law(n, 3e-9 * n**1.5 * (1 + 0.05 * np.random.default_rng(1)
                                                  .standard_normal(n.size)))
    assert noisy.ci_low < 1.5 < noisy.ci_high
    assert noisy.ci_high - noisy.ci_low < 0.3


def test_heldout_error_is_zero_for_an_exact_model_and_signed_otherwise():
    n = np.array([512, 1024, 2048, 4096])
    sh = counts.KernelShape(heads=2, d_qk=16, d_v=16)
    work = np.array([counts.model_flops("full", int(x), sh) for x in n], float)
    t = work / 4e10 + 1e-4
    assert fit.heldout_rel_error(n, work, t) == pytest.approx(0.0, abs=1e-9)
    t_slow = t.copy()
    t_slow[-1] *= 1.25  # the largest size runs 25% slower than the trend (e.g. cache spill)
    assert fit.heldout_rel_error(n, work, t_slow) == pytest.approx(1 / 1.25 - 1, rel=1e-6)


def test_fit_rejects_bad_input():
    with pytest.raises(ValueError):
        fit.fit_rate([1.0], [1.0])
    with pytest.raises(ValueError):
        fit.fit_power_law([1, 2, 4], [1.0, -1.0, 2.0])
