"""Crossovers, budgets and sensitivities on the symbolic forms."""

import pytest

from simkit.catalog import load_model
from simkit.costs import ArchSpec, model_costs
from simkit.costs.analysis import crossover, max_batch, max_context, sensitivity
from simkit.errors import SimkitError

M = load_model("llama-3-8b")


def test_full_vs_linear_prefill_crossover_is_the_closed_form():
    res = crossover(M, ArchSpec("full"), ArchSpec("linear"), "attention_prefill_flops")
    # full: 4 H d_h n(n+1)/2 per layer; linear: n (H_kv + H)(2 d_h^2 + 2 d_h) -> equal at
    # n + 1 = (H_kv + H)(2 d_h^2 + 2 d_h) / (2 H d_h)
    H, Hkv, dh = M.n_heads, M.n_kv_heads, M.head_dim
    root = (Hkv + H) * (2 * dh**2 + 2 * dh) / (2 * H * dh) - 1
    assert res.lengths == [int(root) + 1]
    assert res.cheaper_below == "a"
    assert any(f"{root:.6g}" in e for e in res.exact)


def test_full_vs_window_cache_crossover_is_the_window():
    res = crossover(M, ArchSpec("full"), ArchSpec("window", window=1024), "cache_bytes")
    assert res.lengths == [1025] and res.cheaper_below == "equal"


def test_no_crossover_when_independent_of_length():
    res = crossover(M, ArchSpec("full"), ArchSpec("window"), "params")
    assert res.lengths == [] and res.cheaper_below == "equal"


def test_max_batch_and_context_invert_the_cache():
    mc = model_costs(M, ArchSpec("full"))
    budget = 40e9
    b = max_batch(M, ArchSpec("full"), budget, 2048)
    per = mc.value(mc.cache_bytes, t=2048)
    assert b * per <= budget < (b + 1) * per
    t = max_context(M, ArchSpec("full"), budget, batch=3)
    assert 3 * mc.value(mc.cache_bytes, t=t) <= budget < 3 * mc.value(mc.cache_bytes, t=t + 1)
    assert max_context(M, ArchSpec("window", window=4096), budget, batch=3) is None
    assert max_context(M, ArchSpec("linear"), budget, batch=3) is None
    ssm = model_costs(M, ArchSpec("ssm"))  # constant state still bounds the batch
    assert max_batch(M, ArchSpec("ssm"), budget, 2048) == int(budget // ssm.value(ssm.state_bytes))


def test_sensitivity_elasticities():
    s = sensitivity(M, ArchSpec("full"), "attention_prefill_flops", "n", n=2048)
    assert s.elasticity == pytest.approx(2 * 2048 / 2049 + 1 / 2049, rel=1e-9)  # d ln(n(n+1))/d ln n
    s = sensitivity(M, ArchSpec("full"), "cache_bytes", "H_kv", t=2048)
    assert s.elasticity == pytest.approx(1.0)
    with pytest.raises(SimkitError, match="does not depend on"):
        sensitivity(M, ArchSpec("full"), "cache_bytes", "F", t=10)
