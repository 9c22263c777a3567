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
