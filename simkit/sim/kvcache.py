"""KV-cache memory managers: contiguous reservation and paged blocks, in integer units.

Memory is counted in *units* so that every fit decision is exact integer arithmetic (the
fast multi-step path and the one-iteration-at-a-time path must decide identically):

- **paged** (vLLM, Kwon et al. 2023, arXiv:2309.06180): blocks of ``block_size`` token
  positions allocated on demand, per layer group, block-exact, as vLLM's hybrid KV-cache
  manager does (vLLM v1 `KVCacheCoordinator`: one block table per group of layers with the
  same attention spec). A sequence at context t owns, in each group, the blocks that hold a
  position it still needs:
    full / MLA       [0, t)                        ceil(t / B) blocks
    window w         [t - w, t)                    blocks of finished windows are freed
    chunked c        [c floor((t-1)/c), t)         blocks of finished chunks are freed
    sparse w + g     [0, g) and [t - w, t)         (vLLM's SlidingWindowManager /
                                                    ChunkedLocalAttentionManager free the
                                                    rest)
  so a window that is not aligned to blocks holds one block more than ceil(w / B).
  A unit is the largest block size that divides every group's block (their gcd); a sequence
  owns sum_g blocks_g(t) x (block bytes_g / unit bytes) units.
- **contiguous** (FasterTransformer / Orca): one unit per sequence, reserving room for
  ``max_seq_len`` positions at admission whatever the request will actually use (for a
  window or chunked layer, the most it holds at any length up to ``max_seq_len``).

Either way a sequence also holds the stack's constant state (SSM or linear-attention state,
memory slots: ``fixed_bytes``), allocated at admission. Eviction to a budget
(StreamingLLM, Xiao et al. 2023, arXiv:2309.17453): a growing group keeps only the first
``sink_tokens`` and the most recent ``budget - sink_tokens`` positions. Bytes per position
already reflect the KV dtype and tensor-parallel replication (`StepCostModel.kv_layout`).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

#: stands in for "unlimited units" when a unit holds no bytes (constant-state stacks)
_MANY_UNITS = 1 << 62


def _ceil_div(a: np.ndarray, b: int) -> np.ndarray:
    return -(-a // b)


def held_interval_blocks(a: np.ndarray, b: np.ndarray, t: np.ndarray, block: int) -> np.ndarray:
    """Blocks of `block` positions touched by [0, a) and [b, t) (0 <= a <= b <= t)."""
    head = _ceil_div(a, block)
    tail = _ceil_div(t, block) - b // block
    tail = np.where(t > b, tail, 0)
    overlap = np.where(t > b, np.maximum(0, head - b // block), 0)
    return head + tail - overlap


def held_intervals(group, t: np.ndarray, budget: int | None, sinks: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) such that a sequence at context t holds positions [0, a) and [b, t)."""
    zero = np.zeros_like(t)
    kind = group.kind
    if kind == "window":
        return zero, np.maximum(0, t - group.window)
    if kind == "chunked":
        c = group.chunk
        return zero, np.where(t > 0, c * ((t - 1) // c), 0)
    if kind == "sparse":
        g, w = group.global_tokens or 0, group.window
        start = np.maximum(0, t - w)
        return np.minimum(g, start), start
    # full / mla: everything, unless evicted to a budget (sinks + recent window)
    if budget is None:
        return zero, zero
    recent = budget - sinks
    start = np.maximum(0, t - recent)
    return np.minimum(sinks, start), start


class KVPolicy:
    """How many units a sequence needs and what they weigh, for one replica's memory."""

    def __init__(self, step_model, *, kind: str, block_size: int, capacity_bytes: float,
                 max_seq_len: int, budget_tokens: int | None = None,
                 sink_tokens: int = 0) -> None:
        layout = step_model.kv_layout
        self.layout = layout
        self.kind = kind
        self.paged = kind == "paged"
        self.block_size = int(block_size)
        self.capacity_bytes = float(capacity_bytes)
        self.max_seq_len = int(max_seq_len)
        self.budget_tokens = budget_tokens
        self.sink_tokens = int(sink_tokens)
        self.fixed_bytes = float(layout.fixed_bytes)
        # bytes of one "position unit": the gcd of the groups' bytes per position (exact
        # rationals: int4 caches hold half bytes), and each group's weight in such units
        bpp = [Fraction(g.bytes_per_position).limit_denominator(2) for g in layout.groups]
        for g, f in zip(layout.groups, bpp):
            if abs(float(f) - g.bytes_per_position) > 1e-6 * g.bytes_per_position:
                raise RuntimeError(f"KV group {g.label}: {g.bytes_per_position} bytes per "
                                   "position is not a multiple of half a byte")
        q = _gcd_fractions(bpp) if bpp else Fraction(1)
        self._weights = [int(f / q) for f in bpp]
        self.bytes_per_token = float(q)  # bytes of one unit of `positions`
        g_w = math.gcd(*self._weights) if self._weights else 1
        self._block_weights = [w // g_w for w in self._weights]
        self._pos_table: np.ndarray | None = None
        self._units_table: np.ndarray | None = None
        self._max_units: dict = {}
        self._sparse: list | None = None  # range-maximum table of units (peak_units)
        self.positions_are_tokens = False  # known once the tables are built
        #: a sequence's units never shrink as it grows: no group frees blocks as it slides
        self.monotone_units = not self.paged or all(
            g.kind in ("full", "mla") for g in layout.groups) and budget_tokens is None
        if not layout.groups:
            self.unit_bytes = 0.0
        elif self.paged:
            self.unit_bytes = float(self.block_size * q * g_w)
        else:
            # the most positions a sequence holds at any length up to max_seq_len (a chunked
            # layer holds fewer at a chunk's start than just before it)
            self.unit_bytes = float(self._positions_formula(
                np.arange(self.max_seq_len + 1)).max()) * self.bytes_per_token

    def build_tables(self, max_tokens: int) -> None:
        """Tabulate positions and units for every length 0..max_tokens+1, so the hot loop
        does one array lookup instead of evaluating the formulas."""
        t = np.arange(int(max_tokens) + 2, dtype=np.int64)
        self._pos_table = self._positions_formula(t)
        # one full-attention group without eviction holds every token: positions(t) = t, so
        # a sum of positions is a sum of contexts (the replica then skips the table lookups)
        self.positions_are_tokens = bool(np.array_equal(self._pos_table, t))
        self._units_table = self._units_formula(t)
        self._sparse = None

    def _positions_formula(self, cached: np.ndarray) -> np.ndarray:
        """Position units (sum over groups of weight x positions held) at `cached` tokens."""
        t = np.asarray(cached, dtype=np.int64)
        out = np.zeros(t.shape, dtype=np.int64)
        for g, w in zip(self.layout.groups, self._weights):
            a, b = held_intervals(g, t, self.budget_tokens, self.sink_tokens)
            out += w * (a + (t - b))
        return out

    def _units_formula(self, cached: np.ndarray) -> np.ndarray:
        t = np.asarray(cached, dtype=np.int64)
        if not self.paged:
            return np.ones(t.shape, dtype=np.int64)
        out = np.zeros(t.shape, dtype=np.int64)
        for g, w in zip(self.layout.groups, self._block_weights):
            a, b = held_intervals(g, t, self.budget_tokens, self.sink_tokens)
            out += w * held_interval_blocks(a, b, t, self.block_size)
        return out

    def peak_units(self, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
        """Most units a sequence owns at any context in [lo, hi] (vectorised; tables built).
        A window or chunk that frees blocks makes units(t) rise and fall, so a request that
        fits at its longest may not fit at its prompt: a range maximum (sparse table)."""
        lo = np.asarray(lo, dtype=np.int64)
        hi = np.asarray(hi, dtype=np.int64)
        tab = self._units_table
        if self.monotone_units:
            return tab[hi]
        if self._sparse is None:
            levels = [tab]
            while (1 << len(levels)) <= len(tab):
                prev, step = levels[-1], 1 << (len(levels) - 1)
                levels.append(np.maximum(prev[:-step], prev[step:]))
            self._sparse = levels
        span = np.maximum(hi - lo + 1, 1)
        k = np.floor(np.log2(span)).astype(np.int64)
        out = np.empty(lo.shape, dtype=np.int64)
        for j in np.unique(k):
            sel = k == j
            lev = self._sparse[int(j)]
            out[sel] = np.maximum(lev[lo[sel]], lev[hi[sel] - (1 << int(j)) + 1])
        return out

    def peak_units_one(self, lo: int, hi: int) -> int:
        """`peak_units` of one range (scalars: the admission path)."""
        if self.monotone_units:
            return int(self._units_table[hi])
        if self._sparse is None:
            self.peak_units(np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64))
        k = max(hi - lo + 1, 1).bit_length() - 1
        lev = self._sparse[k]
        return int(max(lev[lo], lev[hi - (1 << k) + 1]))

    def group_blocks(self, cached: np.ndarray) -> dict[str, np.ndarray]:
        """Blocks each layer group holds at `cached` tokens (paged; for reports)."""
        t = np.asarray(cached, dtype=np.int64)
        out = {}
        for g in self.layout.groups:
            a, b = held_intervals(g, t, self.budget_tokens, self.sink_tokens)
            out[g.label] = held_interval_blocks(a, b, t, self.block_size)
        return out

    def positions(self, cached: np.ndarray) -> np.ndarray:
        """Position units a sequence stores when `cached` tokens are in its cache."""
        tab = self._pos_table
        if tab is not None:
            return tab[cached]
        return self._positions_formula(cached)

    def units(self, cached: np.ndarray) -> np.ndarray:
        """Units a sequence with `cached` tokens must own (vectorised)."""
        tab = self._units_table
        if tab is not None:
            return tab[cached]
        return self._units_formula(cached)

    def units_one(self, cached: int) -> int:
        tab = self._units_table
        if tab is not None:
            return int(tab[cached])
        return int(self._units_formula(np.array([cached]))[0])

    def block_weight(self, group_index: int) -> int:
        """Units one block of layer group `group_index` takes (paged)."""
        return self._block_weights[group_index]

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


def _gcd_fractions(xs: list[Fraction]) -> Fraction:
    den = math.lcm(*(x.denominator for x in xs))
    return Fraction(math.gcd(*(int(x * den) for x in xs)), den)


class KVPool:
    """One replica's KV memory: units and sequences in use, allocation counters.

    With prefix caching (`simkit.sim.prefix`) blocks may be shared by several sequences and
    outlive them, so three numbers describe the memory:
    - ``units_in_use``: units held by running sequences (a shared block counted once);
    - ``cached_units``: cached blocks no sequence holds; they count as free (vLLM's
      ``get_num_free_blocks`` counts them) and are evicted, least recently used first, when
      an allocation needs their room;
    - ``shared_units``: what sharing saves: the sum of every sequence's own footprint (its
      units as if alone, the replica's per-sequence column) minus ``units_in_use``.
    Without a cache the last two stay 0.

    Disaggregation (`simkit.sim.disagg`): a decode replica allocates the blocks of a request
    whose KV is on its way before the request joins the batch; ``held_units`` counts them
    (they are in ``units_in_use`` and the request in ``n_seqs``, but in no batch column).
    """

    __slots__ = ("policy", "units_in_use", "n_seqs", "units_allocated", "units_freed",
                 "cached_units", "shared_units", "cache", "held_units")

    def __init__(self, policy: KVPolicy) -> None:
        self.policy = policy
        self.units_in_use = 0
        self.n_seqs = 0
        self.units_allocated = 0
        self.units_freed = 0
        self.cached_units = 0
        self.shared_units = 0
        self.cache = None  # the replica's PrefixCache, if any
        self.held_units = 0

    def free_units(self, extra_seqs: int = 0) -> int:
        return self.policy.max_units(self.n_seqs + extra_seqs) - self.units_in_use

    @property
    def footprint(self) -> int:
        """Sum of the running sequences' own footprints (units as if each were alone)."""
        return self.units_in_use + self.shared_units - self.held_units

    def admit(self, units: int) -> None:
        self.n_seqs += 1
        self.grow(units)

    def grow(self, units: int) -> None:
        if self.cached_units and units > 0:
            # evict cached blocks (least recently used first) when the empty room is short
            short = units - (self.policy.max_units(self.n_seqs) - self.units_in_use
                             - self.cached_units)
            if short > 0:
                self.cache.evict(short)
        self.units_in_use += units
        self.units_allocated += units

    def resize(self, grown: int, shrunk: int) -> None:
        """Sequences gained `grown` units and gave back `shrunk` (a window or chunk that
        slides past a block frees it; with a prefix cache, only its private blocks)."""
        self.units_in_use += grown - shrunk
        self.units_allocated += grown
        self.units_freed += shrunk

    def release(self, units: int) -> None:
        self.n_seqs -= 1
        self.units_in_use -= units
        self.units_freed += units

    @property
    def reserved_bytes(self) -> float:
        return self.policy.reserved_bytes(self.units_in_use, self.n_seqs)
