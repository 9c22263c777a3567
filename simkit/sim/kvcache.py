"""KV-cache memory managers: contiguous reservation and paged blocks, in integer units.

Memory is counted in *units* so that every fit decision is exact integer arithmetic (the
fast multi-step path and the one-iteration-at-a-time path must decide identically):

- **paged** (vLLM, Kwon et al. 2023, arXiv:2309.06180): a unit is a block of ``block_size``
  token positions; a sequence holding t positions owns ceil(t / B) blocks, allocated on
  demand, so waste is confined to its last block. A window architecture's rolling buffer
  stops at w positions (its blocks are recycled), so its block count stops growing too.
- **contiguous** (FasterTransformer / Orca): one unit per sequence, reserving room for
  ``max_seq_len`` positions at admission whatever the request will actually use.

Either way a sequence also holds the architecture's constant state (``kv_fixed_bytes``: SSM or
linear-attention state, memory slots), allocated at admission. Positions come from the cost
model's ``kv_tokens(t)`` (t for full attention and MLA, min(t, w) for a window, 0 for
linear/SSM), capped by an eviction budget when one is set (StreamingLLM: sinks + recent
window), and bytes per position already reflect the KV dtype (quantized KV is smaller).
"""

from __future__ import annotations

import math

import numpy as np

#: stands in for "unlimited units" when a unit holds no bytes (constant-state architectures)
_MANY_UNITS = 1 << 62


class KVPolicy:
    """How many units a sequence needs and what they weigh, for one replica's memory."""

    def __init__(self, step_model, *, kind: str, block_size: int, capacity_bytes: float,
                 max_seq_len: int, budget_tokens: int | None = None) -> None:
        self.model = step_model
        self.kind = kind
        self.paged = kind == "paged"
        self.block_size = int(block_size)
        self.capacity_bytes = float(capacity_bytes)
        self.max_seq_len = int(max_seq_len)
        self.budget_tokens = budget_tokens
        self.bytes_per_token = float(step_model.kv_bytes_per_token)
        self.fixed_bytes = float(step_model.kv_fixed_bytes)
        self._pos_table: np.ndarray | None = None
        self._units_table: np.ndarray | None = None
        self._max_units: dict = {}
        self.positions_are_tokens = False  # known once the tables are built
        if self.paged:
            self.unit_bytes = self.block_size * self.bytes_per_token
        else:
            self.unit_bytes = float(self._positions_formula(np.array([self.max_seq_len]))[0]) \
                * self.bytes_per_token

    def build_tables(self, max_tokens: int) -> None:
        """Tabulate positions and units for every length 0..max_tokens+1, so the hot loop
        does one array lookup instead of evaluating the cost model's formula."""
        t = np.arange(int(max_tokens) + 2, dtype=np.int64)
        self._pos_table = self._positions_formula(t)
        # full attention without eviction holds every token: positions(t) = t, so a sum of
        # positions is a sum of contexts (the replica then skips the table lookups)
        self.positions_are_tokens = bool(np.array_equal(self._pos_table, t))
        if self.paged:
            b = self.block_size
            self._units_table = (self._pos_table + (b - 1)) // b
        else:
            self._units_table = np.ones(len(t), dtype=np.int64)

    def _positions_formula(self, cached: np.ndarray) -> np.ndarray:
        t = np.asarray(self.model.kv_tokens(np.asarray(cached, dtype=np.int64)))
        t = np.rint(t).astype(np.int64)
        if self.budget_tokens is not None:
            t = np.minimum(t, self.budget_tokens)
        return t

    def positions(self, cached: np.ndarray) -> np.ndarray:
        """Token positions whose K/V a sequence stores when `cached` tokens are in its cache."""
        tab = self._pos_table
        if tab is not None:
            return tab[cached]
        return self._positions_formula(cached)

    def units(self, cached: np.ndarray) -> np.ndarray:
        """Units a sequence with `cached` tokens must own (vectorised)."""
        tab = self._units_table
        if tab is not None:
            return tab[cached]
        cached = np.asarray(cached, dtype=np.int64)
        if not self.paged:
            return np.ones(cached.shape, dtype=np.int64)
        b = self.block_size
        return (self._positions_formula(cached) + (b - 1)) // b

    def units_one(self, cached: int) -> int:
        tab = self._units_table
        if tab is not None:
            return int(tab[cached])
        return int(self.units(np.array([cached]))[0])

    def max_units(self, n_seqs: int) -> int:
        """Units that fit beside the fixed state of `n_seqs` sequences (-1: not even that)."""
        # asked at nearly every iteration boundary, for a handful of distinct n_seqs (a
        # policy is fixed once built: capacity and unit sizes never change)
        hit = self._max_units.get(n_seqs)
        if hit is None:
            if len(self._max_units) > 4096:
                self._max_units.clear()
            hit = self._max_units[n_seqs] = self._max_units_formula(n_seqs)
        return hit

    def _max_units_formula(self, n_seqs: int) -> int:
        room = self.capacity_bytes - n_seqs * self.fixed_bytes
        if room < 0:
            return -1
        if self.unit_bytes <= 0:
            return _MANY_UNITS
        return int(math.floor(room / self.unit_bytes))

    def fits_alone(self, max_cached: int) -> bool:
        """Whether one sequence reaching `max_cached` positions fits in an empty replica."""
        if not self.paged and max_cached > self.max_seq_len:
            return False
        return self.units_one(max_cached) <= self.max_units(1)

    def useful_bytes(self, cached: np.ndarray) -> float:
        """Bytes of token states actually held by sequences with `cached` tokens."""
        return float(self.positions(cached).sum()) * self.bytes_per_token \
            + len(cached) * self.fixed_bytes

    def reserved_bytes(self, units_in_use: int, n_seqs: int) -> float:
        return units_in_use * self.unit_bytes + n_seqs * self.fixed_bytes


class KVPool:
    """One replica's KV memory: units and sequences in use, allocation counters."""

    __slots__ = ("policy", "units_in_use", "n_seqs", "units_allocated", "units_freed")

    def __init__(self, policy: KVPolicy) -> None:
        self.policy = policy
        self.units_in_use = 0
        self.n_seqs = 0
        self.units_allocated = 0
        self.units_freed = 0

    def free_units(self, extra_seqs: int = 0) -> int:
        return self.policy.max_units(self.n_seqs + extra_seqs) - self.units_in_use

    def admit(self, units: int) -> None:
        self.n_seqs += 1
        self.grow(units)

    def grow(self, units: int) -> None:
        self.units_in_use += units
        self.units_allocated += units

    def release(self, units: int) -> None:
        self.n_seqs -= 1
        self.units_in_use -= units
        self.units_freed += units

    @property
    def reserved_bytes(self) -> float:
        return self.policy.reserved_bytes(self.units_in_use, self.n_seqs)
