"""KV managers: paged blocks on demand, contiguous reservation, window and constant state."""

from __future__ import annotations

import numpy as np

from simkit.sim.kvcache import KVPolicy, KVPool
from test_sim_toymodel import ToyStepModel


def test_paged_blocks_round_up_to_the_last_block():
    p = KVPolicy(ToyStepModel(), kind="paged", block_size=16, capacity_bytes=16_000 * 10,
                 max_seq_len=4096)
    p.build_tables(100)
    assert p.units(np.array([0, 1, 16, 17, 32, 33])).tolist() == [0, 1, 1, 2, 2, 3]
    assert p.unit_bytes == 16 * 1000
    assert p.max_units(1) == 10
    # internal waste only in the last block: useful / reserved for one 17-token sequence
    assert p.useful_bytes(np.array([17])) / p.reserved_bytes(2, 1) == 17 / 32


def test_window_stops_growing_and_budget_caps():
    p = KVPolicy(ToyStepModel(window=40), kind="paged", block_size=16, capacity_bytes=1e9,
                 max_seq_len=4096)
    p.build_tables(1000)
    assert p.units(np.array([40, 41, 1000])).tolist() == [3, 3, 3]
    q = KVPolicy(ToyStepModel(), kind="paged", block_size=16, capacity_bytes=1e9,
                 max_seq_len=4096, budget_tokens=64)
    q.build_tables(1000)
    assert q.positions(np.array([10, 64, 999])).tolist() == [10, 64, 64]


def test_budget_eviction_keeps_real_attention_sinks():
    # StreamingLLM (Xiao et al. 2023, arXiv:2309.17453): the first 4 tokens stay, then the
    # most recent 64 - 4 = 60. In 16-token blocks: at t = 1000 the sinks hold block 0 (a
    # whole block for 4 tokens) and the recent positions [940, 1000) blocks 58..62 (5);
    # at t = 64, [0, 4) and [4, 64) are one span: blocks 0..3; at t = 50 nothing is evicted
    q = KVPolicy(ToyStepModel(), kind="paged", block_size=16, capacity_bytes=1e9,
                 max_seq_len=4096, budget_tokens=64, sink_tokens=4)
    q.build_tables(1000)
    assert q.positions(np.array([50, 64, 65, 1000])).tolist() == [50, 64, 64, 64]
    assert q.units(np.array([50, 64, 1000])).tolist() == [4, 4, 6]
    # without sinks the same budget keeps [936, 1000): blocks 58..62
    r = KVPolicy(ToyStepModel(), kind="paged", block_size=16, capacity_bytes=1e9,
                 max_seq_len=4096, budget_tokens=64, sink_tokens=0)
    r.build_tables(1000)
    assert r.units(np.array([1000])).tolist() == [5]


def test_contiguous_reserves_max_seq_len():
    p = KVPolicy(ToyStepModel(), kind="contiguous", block_size=16, capacity_bytes=2.5e6,
                 max_seq_len=1000)
    p.build_tables(1000)
    assert p.unit_bytes == 1000 * 1000
    assert p.units(np.array([1, 999])).tolist() == [1, 1]
    assert p.max_units(0) == 2
    assert p.fits_alone(1000) and not p.fits_alone(1001)


def test_fixed_state_is_charged_per_sequence():
    p = KVPolicy(ToyStepModel(kv_bytes_per_token=0.0, kv_fixed_bytes=1e5), kind="paged",
                 block_size=16, capacity_bytes=3.5e5, max_seq_len=4096)
    p.build_tables(10)
    pool = KVPool(p)
    for _ in range(3):
        assert pool.free_units(1) >= 0
        pool.admit(0)
    assert pool.free_units(1) < 0  # a fourth state would not fit
    assert pool.reserved_bytes == 3e5
