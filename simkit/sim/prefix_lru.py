"""The LRU queue of free cached blocks and eviction (vLLM v1 `block_pool.py`: a block whose
last holder frees it stays cached in ``free_block_queue``; an allocation that finds no empty
block evicts the least recently freed one, and a request's blocks are freed last-first).

A mixin of `simkit.sim.prefix.PrefixCache`: the cache's owners keep per block a ``stamp``
(when it was freed); each release pushes one run of blocks with one stamp on a heap."""

from __future__ import annotations

import heapq

from simkit.sim.prefix_blocks import FULL, STATE, CacheClass, Owner


class LRUFreeBlocks:
    """Free cached blocks in LRU order; evict() makes room (see the module docstring).
    Expects of its class: pool, classes, lazy, _heap, _stamp, _owed, version, evicted_units,
    evictions, seqs, tenants, streams and _forget(owner)."""

    def _push(self, own: Owner, c: CacheClass, a: int, z: int) -> int:
        """Put blocks [a, z) of own (class c) at the young end of the LRU order."""
        self._stamp += 1
        s = self._stamp
        if c.kind == STATE:
            own.stamp[c.index][a:z] = s
        own.gen += 1
        run = [s, own, c, a, z, None, -1]  # (+ its evictable blocks as of generation)
        heapq.heappush(self._heap, run)
        own.last_run[c.index] = run
        return s

    # ---- eviction -----------------------------------------------------------------------
    def evict(self, units: int) -> None:
        """Make `units` empty by evicting free cached blocks, least recently freed first.

        With one cache class every block weighs the same, so how many blocks go is known at
        once: the memory is counted now and the blocks are picked when someone next looks
        at the cache (`_settle`), in the same LRU order, many at a time."""
        if self.lazy:
            c = self.classes[0]
            k = -(-units // c.weight)
            if k * c.weight > self.pool.cached_units:
                raise RuntimeError("prefix cache: nothing left to evict")
            self._account(c, k)
            self._owed += k
            self.version += 1
            return
        while units > 0:
            c, k = self._evict_some(-1, units)
            self._account(c, k)
            units -= c.weight * k
        self.version += 1

    def _account(self, c: CacheClass, k: int) -> None:
        pool = self.pool
        pool.cached_units -= c.weight * k
        pool.units_freed += c.weight * k
        self.evicted_units += c.weight * k
        self.evictions += k

    def _settle(self) -> None:
        """Pick the blocks evictions already counted (one class: see `evict`)."""
        while self._owed:
            _, k = self._evict_some(self._owed, 0)
            self._owed -= k

    def _evict_some(self, blocks: int, units: int) -> tuple[CacheClass, int]:
        """Evict from the least recently freed run: up to `blocks` blocks (or, when blocks
        is -1, enough for `units` units); returns (class, blocks evicted)."""
        heap = self._heap
        while heap:
            run = heap[0]
            c = run[2]
            k = self._evict_run(run, blocks if blocks >= 0 else -(-units // c.weight))
            if k:
                return c, k
        raise RuntimeError("prefix cache: nothing left to evict")

    def _evict_run(self, run: list, want: int) -> int:
        """Evict up to `want` blocks of one run, its last blocks first (0: the run has none
        left; it leaves the heap)."""
        heap = self._heap
        s, own, c, a, z, idx, gen = run
        if own.dead or z <= a:
            heapq.heappop(heap)
            return 0
        i = c.index
        live = own.live[i]
        stamp = own.stamp[i]
        if gen != own.gen:
            # (one look at the whole run: numpy costs the same for 1 block or 500). A block
            # still carries the run's stamp only while it is cached (evicting or dropping it
            # clears the stamp) and is free unless a sequence touched it since
            ok = (stamp[a:z] == s) & (own.ref[i][a:z] == 0)
            idx = ok.nonzero()[0] + a
        if not len(idx):
            heapq.heappop(heap)
            return 0
        if want < len(idx):  # the rest stay for later
            gone = idx[len(idx) - want:]
            run[4] = int(gone[0])
            run[5] = idx[:len(idx) - want]
            run[6] = own.gen + 1  # (the cached list stays right: this eviction is the change)
        else:
            gone = idx
            heapq.heappop(heap)
        live[gone] = False
        stamp[gone] = 0
        own.gen += 1
        own.n_live -= len(gone)
        if c.kind == FULL:
            own.pref = min(own.pref, int(gone[0]))
        self._forget(own)
        return len(gone)

    def flush(self) -> None:
        """Free every cached block (the run is over): units allocated = units freed."""
        self._owed = 0
        if self.seqs:
            raise RuntimeError("prefix cache: flushed with sequences still running")
        self.pool.units_freed += self.pool.cached_units
        self.pool.cached_units = 0
        for d in (self.tenants, self.streams):
            for own in d.values():
                own.dead = True
            d.clear()
        self._heap.clear()
