"""The numpy kernels against naive references (dense masked softmax, token-by-token loops)."""

import numpy as np
import pytest

from simkit.calibrate import kernels as K

RTOL = 1e-10  # float64 inputs: kernels and references differ only by summation order
ATOL = 1e-12


def _qkv(h=3, n=37, d_qk=8, d_v=5, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((h, n, d_qk)), rng.standard_normal((h, n, d_qk)),
            rng.standard_normal((h, n, d_v)))


@pytest.mark.parametrize("tile", [1, 7, 16, 64])
@pytest.mark.parametrize("workers", [1, 2])
def test_full_prefill_equals_dense_reference(tile, workers):
    q, k, v = _qkv()
    ref = K.reference_attention(q, k, v, K.family_mask(q.shape[1]))
    np.testing.assert_allclose(K.full_prefill(q, k, v, tile=tile, workers=workers), ref,
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("window,tile", [(1, 8), (5, 4), (5, 16), (13, 8), (36, 5)])
def test_window_prefill_equals_dense_reference(window, tile):
    q, k, v = _qkv()
    ref = K.reference_attention(q, k, v, K.family_mask(q.shape[1], window))
    np.testing.assert_allclose(K.window_prefill(q, k, v, window, tile=tile), ref,
                               rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("window", [37, 38, 100])
def test_window_at_least_n_equals_full(window):
    q, k, v = _qkv()
    np.testing.assert_allclose(K.window_prefill(q, k, v, window, tile=8),
                               K.full_prefill(q, k, v, tile=8), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(K.sparse_prefill(q, k, v, window, 4, tile=8),
                               K.full_prefill(q, k, v, tile=8), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("window,g,tile", [(4, 3, 8), (6, 1, 4), (3, 10, 16), (8, 8, 5)])
def test_sparse_prefill_equals_dense_reference(window, g, tile):
    q, k, v = _qkv()
    ref = K.reference_attention(q, k, v, K.family_mask(q.shape[1], window, g))
    np.testing.assert_allclose(K.sparse_prefill(q, k, v, window, g, tile=tile), ref,
                               rtol=RTOL, atol=ATOL)


def test_sparse_without_globals_is_window():
    q, k, v = _qkv()
    np.testing.assert_allclose(K.sparse_prefill(q, k, v, 6, 0, tile=8),
                               K.window_prefill(q, k, v, 6, tile=8), rtol=RTOL, atol=ATOL)


def test_global_tokens_are_the_first_positions_and_seen_from_afar():
    """The last query (far past its window) must depend on positions 0..g-1 and on its
    window, and on nothing else."""
    q, k, v = _qkv(h=1, n=40)
    w, g = 5, 3
    base = K.sparse_prefill(q, k, v, w, g, tile=8)[0, -1]
    for pos, should_change in [(0, True), (g - 1, True), (g, False), (20, False),
                               (40 - w - 1, False), (40 - w, True), (39, True)]:
        v2 = v.copy()
        v2[0, pos] += 1.0
        changed = not np.allclose(K.sparse_prefill(q, k, v2, w, g, tile=8)[0, -1], base)
        assert changed == should_change, pos
    # A query inside the first window sees exactly its causal prefix: globals add nothing.
    np.testing.assert_allclose(K.sparse_prefill(q, k, v, w, g, tile=8)[0, :w],
                               K.full_prefill(q, k, v, tile=8)[0, :w], rtol=RTOL, atol=ATOL)


def test_mask_counts_match_the_cost_model_convention():
    """Query i (1-based) attends min(i, w) + min(g, max(0, i - w)) keys."""
    n, w, g = 30, 7, 4
    counts = K.family_mask(n, w, g).sum(axis=1)
    i = np.arange(1, n + 1)
    np.testing.assert_array_equal(counts, np.minimum(i, w) + np.minimum(g, np.maximum(0, i - w)))


@pytest.mark.parametrize("chunk", [1, 4, 16, 64])
def test_chunked_linear_equals_recurrent(chunk):
    q, k, v = _qkv()
    out, state = K.linear_prefill(q, k, v, chunk=chunk, return_state=True)
    np.testing.assert_allclose(out, K.linear_recurrent(q, k, v), rtol=RTOL, atol=ATOL)
    # and equals the dense form: (phi(Q) phi(K)^T * causal) V normalised by row sums
    a = np.tril(K.feature_map(q) @ np.swapaxes(K.feature_map(k), 1, 2))
    np.testing.assert_allclose(out, (a @ v) / a.sum(axis=-1, keepdims=True), rtol=RTOL, atol=ATOL)
    fk = K.feature_map(k)
    np.testing.assert_allclose(state.s[:, :, :-1], np.swapaxes(fk, 1, 2) @ v, rtol=RTOL)
    np.testing.assert_allclose(state.s[:, :, -1], fk.sum(axis=1), rtol=RTOL)


def _decode_all(prefix_state, step, q, k, v, start):
    return np.stack([step(prefix_state, q[:, i], k[:, i], v[:, i])
                     for i in range(start, q.shape[1])], axis=1)


def test_full_and_window_decode_continue_prefill():
    q, k, v = _qkv()
    n, start = q.shape[1], 20
    full = K.full_prefill(q, k, v, tile=8)
    cache = K.KVCache.from_prompt(k[:, :start], v[:, :start], capacity=n)
    np.testing.assert_allclose(_decode_all(cache, K.full_decode, q, k, v, start),
                               full[:, start:], rtol=RTOL, atol=ATOL)
    for w, g in [(6, 0), (6, 3), (25, 2), (3, 30)]:
        ref = K.sparse_prefill(q, k, v, w, g, tile=8)
        cache = K.WindowCache.from_prompt(k[:, :start], v[:, :start], w, g)
        np.testing.assert_allclose(_decode_all(cache, K.window_decode, q, k, v, start),
                                   ref[:, start:], rtol=RTOL, atol=ATOL)
        assert cache.keys_values()[0].shape[1] == min(n, w) + min(g, max(0, n - w))


def test_window_cache_from_empty_prompt_matches_prefill():
    q, k, v = _qkv(n=15)
    cache = K.WindowCache(q.shape[0], 4, 2, q.shape[2], v.shape[2], q.dtype)
    np.testing.assert_allclose(_decode_all(cache, K.window_decode, q, k, v, 0),
                               K.sparse_prefill(q, k, v, 4, 2, tile=4), rtol=RTOL, atol=ATOL)


def test_linear_decode_continues_prefill():
    q, k, v = _qkv()
    _, state = K.linear_prefill(q[:, :20], k[:, :20], v[:, :20], chunk=8, return_state=True)
    np.testing.assert_allclose(_decode_all(state, K.linear_decode, q, k, v, 20),
                               K.linear_prefill(q, k, v, chunk=8)[:, 20:], rtol=RTOL, atol=ATOL)


def _memory_reference(q, k, v, mem_k, mem_v, segment, mem_q=None):
    """Dense per-segment reference: softmax over [memory; causal segment], written plainly."""
    h, n, d = q.shape
    out = np.empty((h, n, v.shape[2]))
    mv = mem_v.copy()
    writes = 0
    for s0 in range(0, n, segment):
        s1 = min(n, s0 + segment)
        L = s1 - s0
        keys = np.concatenate([mem_k, k[:, s0:s1]], axis=1)
        vals = np.concatenate([mv, v[:, s0:s1]], axis=1)
        mask = np.concatenate([np.ones((L, mem_k.shape[1]), bool),
                               np.tril(np.ones((L, L), bool))], axis=1)
        out[:, s0:s1] = K.reference_attention(q[:, s0:s1], keys, vals, mask)
        if L == segment:
            read = K.reference_attention(mem_k if mem_q is None else mem_q, k[:, s0:s1], v[:, s0:s1],
                                         np.ones((mem_k.shape[1], L), bool))
            writes += 1
            mv = mv + (read - mv) / writes
    return out, mv


@pytest.mark.parametrize("segment", [1, 5, 8, 40])
def test_memory_prefill_equals_reference_and_decode(segment):
    q, k, v = _qkv()
    rng = np.random.default_rng(1)
    mem_k = rng.standard_normal((3, 4, 8))
    mem_v = rng.standard_normal((3, 4, 5))
    ref, ref_mv = _memory_reference(q, k, v, mem_k, mem_v, segment)
    out, state = K.memory_prefill(q, k, v, mem_k, mem_v, segment, return_state=True)
    np.testing.assert_allclose(out, ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(state.mem_v, ref_mv, rtol=RTOL, atol=ATOL)
    assert state.updates == q.shape[1] // segment
    start = 13
    _, st = K.memory_prefill(q[:, :start], k[:, :start], v[:, :start], mem_k, mem_v, segment,
                             return_state=True)
    np.testing.assert_allclose(_decode_all(st, K.memory_decode, q, k, v, start), ref[:, start:],
                               rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(st.mem_v, ref_mv, rtol=RTOL, atol=ATOL)


def test_memory_write_uses_separate_slot_queries():
    q, k, v = _qkv()
    rng = np.random.default_rng(2)
    mem_k, mem_q = rng.standard_normal((2, 3, 4, 8))
    mem_v = rng.standard_normal((3, 4, 5))
    ref, ref_mv = _memory_reference(q, k, v, mem_k, mem_v, 8, mem_q=4 * mem_q)
    out, st = K.memory_prefill(q, k, v, mem_k, mem_v, 8, mem_q=4 * mem_q, return_state=True)
    np.testing.assert_allclose(out, ref, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(st.mem_v, ref_mv, rtol=RTOL, atol=ATOL)
    plain, _ = _memory_reference(q, k, v, mem_k, mem_v, 8)
    assert not np.allclose(out, plain)  # the slot queries do change what is written


def test_memory_with_one_long_segment_and_no_slots_is_full():
    q, k, v = _qkv()
    empty_k, empty_v = np.zeros((3, 0, 8)), np.zeros((3, 0, 5))
    np.testing.assert_allclose(K.memory_prefill(q, k, v, empty_k, empty_v, 1000),
                               K.full_prefill(q, k, v), rtol=RTOL, atol=ATOL)


def _ssm_inputs(bsz=2, n=23, d_inner=6, d_state=4, d_conv=4, seed=0):
    rng = np.random.default_rng(seed)
    p = K.SSMParams.random(d_inner, d_state, d_conv, rng, dtype=np.float64)
    p.conv_b = rng.standard_normal(d_inner)
    x = rng.standard_normal((bsz, n, d_inner))
    dt = np.log1p(np.exp(rng.standard_normal((bsz, n, d_inner))))  # softplus > 0
    b = rng.standard_normal((bsz, n, d_state))
    c = rng.standard_normal((bsz, n, d_state))
    return x, dt, b, c, p


@pytest.mark.parametrize("chunk", [1, 5, 64])
def test_ssm_scan_equals_loop_and_decode(chunk):
    x, dt, b, c, p = _ssm_inputs()
    ref = K.ssm_reference(x, dt, b, c, p)
    np.testing.assert_allclose(K.ssm_prefill(x, dt, b, c, p, chunk=chunk), ref,
                               rtol=RTOL, atol=ATOL)
    start = 9
    _, st = K.ssm_prefill(x[:, :start], dt[:, :start], b[:, :start], c[:, :start], p,
                          chunk=chunk, return_state=True)
    dec = np.stack([K.ssm_decode(st, x[:, t], dt[:, t], b[:, t], c[:, t], p)
                    for t in range(start, x.shape[1])], axis=1)
    np.testing.assert_allclose(dec, ref[:, start:], rtol=RTOL, atol=ATOL)


def test_float32_full_prefill_close_to_float64():
    q, k, v = _qkv(n=300, d_qk=16, d_v=16)
    ref = K.full_prefill(q, k, v)
    got = K.full_prefill(*(a.astype(np.float32) for a in (q, k, v)))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_prefill_is_bit_identical_across_runs_and_workers():
    q, k, v = (a.astype(np.float32) for a in _qkv(h=4, n=200, d_qk=16, d_v=16))
    a = K.full_prefill(q, k, v, tile=32, workers=2)
    b = K.full_prefill(q, k, v, tile=32, workers=1)
    assert np.array_equal(a, b)
