"""The prefix cache for stacks of full attention only (and MLA), with scalar streams.

Same semantics as `simkit.sim.prefix.PrefixCache` (which the tests compare it with), less
work: with every layer group growing with the context, a stream (one conversation, or one
request) is held by at most one running sequence at a time (a session's turns follow each
other), its cached blocks are always a prefix [0, pref) (blocks leave from the tail: the
LRU evicts a run's last blocks first, and a turn recomputing past its hit drops the rest)
and they are freed together. So a stream is three integers (cached prefix, blocks held,
LRU stamp) instead of three arrays: admitting, registering, releasing and evicting a
conversation's blocks cost no array work. Tenants' system prompts, held by many sequences
at once, keep their per-block reference counts (`Owner`).
"""

from __future__ import annotations

import heapq

import numpy as np

from simkit.sim.prefix import PrefixCache
from simkit.sim.prefix_blocks import Hit, Owner, SeqRef


class Stream:
    """One stream's cached prefix: blocks [0, pref) cached, [0, held) held by its one
    running sequence (held = 0: none), freed together at LRU stamp `stamp`."""

    __slots__ = ("key", "pref", "held", "holders", "stamp", "run", "dead")

    def __init__(self, key: tuple) -> None:
        self.key = key
        self.pref = 0
        self.held = 0
        self.holders = 0
        self.stamp = 0
        self.run: list | None = None  # its LRU run while it is free
        self.dead = False

    @property
    def n_live(self) -> int:
        return self.pref


class FullPrefixCache(PrefixCache):
    """`PrefixCache` for one cache class of full attention (see the module docstring)."""

    def _make_owners(self, rid: int):
        tab = self.table
        ft = int(tab.system_tokens[rid]) // self.block
        tenant = None
        if ft:
            t = int(tab.tenant[rid])
            tenant = self.tenants.get(t)
            if tenant is None:
                tenant = self.tenants[t] = Owner(("tenant", t), ft, 1)
        st = int(tab.stream[rid])
        stream = self.streams.get(st)
        if stream is None:
            stream = self.streams[st] = Stream(("stream", st))
        return tenant, stream, ft

    def _stream_held(self, stream: Stream, n: int) -> int:
        return min(n, stream.held)  # its one holder holds the blocks [0, held)

    # ---- admission ------------------------------------------------------------------------
    def acquire(self, rid: int, hit: Hit, tokens: int, footprint: int) -> None:
        pool = self.pool
        if self._owed:
            self._settle()
        tenant, stream, ft = self._make_owners(rid)
        if stream.holders:
            raise RuntimeError("prefix cache: a stream held twice at once")
        c = self.classes[0]
        w = c.weight
        h = hit.blocks
        rec = SeqRef(tenant, stream, ft, 1, h)
        run = rec.runs[0]
        kt = h if h < ft else ft
        if kt:  # the tenant's system prompt: per-block references
            ref = tenant.ref[0]
            if tenant.holders:
                seg = ref[:kt]
                held = int(np.count_nonzero(seg))
                seg += 1
            else:
                ref[:kt] = 1
                held = 0
            tenant.gen += 1
            last = tenant.last_run[0]
            if last is not None and last[4] <= kt:
                last[4] = last[3]  # its latest run is all held again
            moved = kt - held
            pool.cached_units -= w * moved
            pool.units_in_use += w * moved
            pool.shared_units += w * held
            rec.canon += w * kt
            run[1] = kt
        if ft and tenant.top[0] > kt:
            self._drop_past(c, tenant, None, ft, kt)
        if stream.run is not None:  # held again: its free cached blocks leave the LRU
            stream.run[4] = 0
            stream.run = None
        ks = h - ft
        if ks > 0:  # the conversation so far: cached and free (its previous turn is over)
            stream.held = ks
            pool.cached_units -= w * ks
            pool.units_in_use += w * ks
            rec.canon += w * ks
            run[3] = ks
        else:
            ks = 0
        if stream.pref > ks:  # cached past the hit: recomputed, so dropped
            gone = stream.pref - ks
            stream.pref = ks
            pool.cached_units -= w * gone
            pool.units_freed += w * gone
        if tenant is not None:
            tenant.holders += 1
        stream.holders = 1
        self.seqs[rid] = rec
        pool.admit(footprint - rec.canon)  # the sequence, and its private blocks
        self.version += 1

    # ---- as sequences compute -------------------------------------------------------------
    def _promote(self, rec: SeqRef, computed: int) -> None:
        f = computed // self.block
        run = rec.runs[0]
        ft = rec.ft
        if rec.tenant is not None and run[1] < min(f, ft):
            if self._owed:  # the tenant's blocks may be cached by others: look at them
                self._settle()
            run[1] = self._extend(self.classes[0], rec, rec.tenant, run[1], min(f, ft))
        end = f - ft
        if end > run[3]:
            stream = rec.stream
            # (the stream's cached prefix ends where this sequence's blocks do)
            k = end - run[3]
            stream.pref = stream.held = end
            rec.canon += self.classes[0].weight * k
            run[3] = end
        self.version += 1

    # ---- leaving the batch ----------------------------------------------------------------
    def release(self, rid: int, computed: int, footprint: int, keep: bool = True) -> None:
        rec = self.seqs.pop(rid)
        pool = self.pool
        if keep:
            self._promote(rec, computed)
        private = footprint - rec.canon
        c = self.classes[0]
        w = c.weight
        run = rec.runs[0]
        stream = rec.stream
        held = run[3]
        if held:  # the stream's blocks are all free now (deeper blocks first, as vLLM)
            self._stamp += 1
            s = stream.stamp = self._stamp
            r = stream.run = [s, stream, c, 0, stream.pref, None, -1]
            heapq.heappush(self._heap, r)
            pool.units_in_use -= w * held
            pool.cached_units += w * held
            rec.canon -= w * held
        stream.held = 0
        stream.holders = 0
        if rec.tenant is not None and run[1] > run[0]:
            self._release_run(c, rec.tenant, run[0], run[1], rec)
        if rec.canon:
            raise RuntimeError("prefix cache: a sequence left with references it never made")
        pool.release(private)
        if rec.tenant is not None:
            rec.tenant.holders -= 1
            self._forget(rec.tenant)
        self._forget(stream)
        self.version += 1

    def _release_run(self, c, own: Owner, a: int, z: int, rec: SeqRef) -> int:
        """A tenant's blocks [a, z): the holders hold prefixes of them, so references only
        fall along the blocks and the last one tells whether any block is free."""
        pool = self.pool
        seg = own.ref[0][a:z]
        seg -= 1
        own.gen += 1
        n = z - a
        last = int(seg[-1])
        if last < 0:
            raise RuntimeError("prefix cache: a reference count went negative")
        zeros = 0
        if last == 0:
            free = seg == 0
            zeros = int(np.count_nonzero(free))
            s = self._push(own, c, a, z)
            own.stamp[0][a:z][free] = s
        w = c.weight
        pool.units_in_use -= w * zeros
        pool.cached_units += w * zeros
        pool.shared_units -= w * (n - zeros)
        rec.canon -= w * n
        self.version += 1
        return w * n

    # ---- eviction -------------------------------------------------------------------------
    def _evict_run(self, run: list, want: int) -> int:
        own = run[1]
        if type(own) is not Stream:
            return super()._evict_run(run, want)
        if own.dead or own.holders or own.stamp != run[0] or run[4] <= 0:
            heapq.heappop(self._heap)
            return 0
        have = min(run[4], own.pref)
        k = min(want, have)
        own.pref = run[4] = have - k
        if not own.pref:
            heapq.heappop(self._heap)
            own.run = None
            self._forget(own)
        return k
