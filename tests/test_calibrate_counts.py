"""Kernel FLOP counts: closed forms against brute-force mask sums and the cost layer."""

import numpy as np
import pytest
import sympy as sp

from simkit.calibrate import counts, kernels

SH = counts.KernelShape(heads=3, d_qk=8, d_v=6, window=7, global_tokens=3, memory_slots=5,
                        segment=9, linear_chunk=4, tile=5, d_inner=10, d_state=4, d_conv=3)


@pytest.mark.parametrize("n", [1, 3, 7, 8, 10, 11, 12, 40])
def test_pair_counts_equal_mask_sums(n):
    assert counts.causal_pairs(n) == kernels.family_mask(n).sum()
    assert counts.window_pairs(n, SH.window) == kernels.family_mask(n, SH.window).sum()
    assert (counts.window_pairs(n, SH.window) + counts.global_pairs(n, SH.window, 3)
            == kernels.family_mask(n, SH.window, 3).sum())
    # memory: m slots for every token + causal pairs inside each segment
    seg = np.arange(n) // SH.segment
    in_seg = (seg[:, None] == seg[None, :]) & kernels.family_mask(n)
    assert counts.memory_pairs(n, SH.memory_slots, SH.segment) == n * SH.memory_slots + in_seg.sum()


@pytest.mark.parametrize("n", [5, 9, 18, 23, 64])
def test_model_flops_match_the_cost_layer_expressions(n):
    """The same pair counts as simkit.costs.families (the lead's symbolic layer)."""
    from simkit.costs.families import memory, sparse, window

    N, w, g, m, s = (sp.Integer(x) for x in (n, SH.window, 3, SH.memory_slots, SH.segment))
    assert counts.window_pairs(n, SH.window) == int(window.window_pairs(N, w))
    assert (counts.window_pairs(n, SH.window) + counts.global_pairs(n, SH.window, 3)
            == int(sparse.sparse_pairs(N, w, g)))
    assert (counts.memory_pairs(n, SH.memory_slots, SH.segment) + (n // SH.segment) * SH.memory_slots
            * SH.segment == int(memory.memory_pairs(N, m, s)))


@pytest.mark.parametrize("family", kernels.FAMILIES)
@pytest.mark.parametrize("n", [1, 4, 9, 23, 64])
def test_kernel_flops_at_least_model_flops(family, n):
    assert counts.kernel_flops(family, n, SH) >= counts.model_flops(family, n, SH) > 0


def test_full_kernel_flops_count_the_computed_tiles():
    # n = 10, tile 5: tile 1 computes 5x5 scores, tile 2 computes 5x10 -> 75 pairs
    per = 2 * SH.heads * (SH.d_qk + SH.d_v + 1)
    assert counts.kernel_flops("full", 10, SH) == per * 75
    assert counts.model_flops("full", 10, SH) == 2 * SH.heads * (SH.d_qk + SH.d_v) * 55


def test_linear_and_ssm_per_token_counts():
    n = 12
    assert counts.model_flops("linear", n, SH) == n * SH.heads * (4 * 8 * 6 + 4 * 8)
    assert counts.model_flops("ssm", n, SH) == n * (6 * 10 * 4 + 2 * 3 * 10)


def test_decode_bytes_and_flops():
    assert counts.decode_kv_bytes(100, SH) == 100 * 3 * 14 * 4
    assert counts.decode_flops(100, SH) == 2 * 100 * 3 * 14
