"""With batch size 1 the simulator is a single-server FIFO queue: its mean wait must match
M/D/1 (fixed lengths) and Pollaczek-Khinchine M/G/1 (variable lengths).

Statistical honesty: R independent replications (seeds); the tolerance is 4 standard errors
of the mean of the replication means (a ~1-in-15,000 false-failure rate for a correct
simulator), not a tolerance picked to pass. The empty-start bias at rho = 0.5 is about
(relaxation time ~ 10 services) / (requests per run) ~ 0.3% of the mean, far below the SE.
"""

from __future__ import annotations

import numpy as np

from simkit.sim import simulate
from test_sim_toymodel import ToyStepModel, toy_scenario

REPLICATIONS = 6
REQUESTS = 2500


def _service_s(m: ToyStepModel, prompt: int, output: int) -> float:
    """One request alone: its prefill iteration plus output-1 decode iterations."""
    s = m.step_time_s([], [0], [prompt])
    for j in range(1, output):
        s += m.step_time_s([prompt + j])
    return s


def _mean_wait(sc, m) -> tuple[float, float]:
    means = []
    for seed in range(REPLICATIONS):
        res = simulate(sc, step_model=m, seed=1000 + seed)
        r = res.requests
        assert (r["status"] == "completed").all()
        means.append(float(np.mean(r["start_s"] - r["arrival_s"])))
    means = np.array(means)
    return float(means.mean()), float(means.std(ddof=1) / np.sqrt(len(means)))


def test_md1_mean_wait():
    m = ToyStepModel(capacity_bytes=1e9)
    p, o = 100, 20
    s = _service_s(m, p, o)
    lam = 0.5 / s  # rho = 0.5
    sc = toy_scenario(**{
        "serving.max_batch": 1, "workload.requests": REQUESTS, "workload.arrival.rate": lam,
        "workload.prompt_tokens.dist": "fixed", "workload.prompt_tokens.value": p,
        "workload.output_tokens.dist": "fixed", "workload.output_tokens.value": o})
    rho = lam * s
    theory = rho * s / (2 * (1 - rho))  # M/D/1: Wq = rho S / (2 (1 - rho))
    mean, se = _mean_wait(sc, m)
    assert abs(mean - theory) < 4 * se, (mean, theory, se)


def test_mg1_pollaczek_khinchine_mean_wait():
    m = ToyStepModel(capacity_bytes=1e9)
    p, lo, hi = 50, 1, 60
    services = np.array([_service_s(m, p, o) for o in range(lo, hi + 1)])  # o uniform
    es, es2 = services.mean(), (services ** 2).mean()
    lam = 0.5 / es
    sc = toy_scenario(**{
        "serving.max_batch": 1, "workload.requests": REQUESTS, "workload.arrival.rate": lam,
        "workload.prompt_tokens.dist": "fixed", "workload.prompt_tokens.value": p,
        "workload.output_tokens.low": lo, "workload.output_tokens.high": hi})
    rho = lam * es
    theory = lam * es2 / (2 * (1 - rho))  # Pollaczek-Khinchine
    mean, se = _mean_wait(sc, m)
    assert abs(mean - theory) < 4 * se, (mean, theory, se)
    # and it is distinguishable from the M/D/1 answer with the same mean service time
    md1 = rho * es / (2 * (1 - rho))
    assert abs(theory - md1) > 4 * se
