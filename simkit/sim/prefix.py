"""Automatic prefix caching in the paged KV manager, with vLLM v1's semantics.

vLLM v1 (`vllm/v1/core/kv_cache_manager.py`, `block_pool.py`, `single_type_kv_cache_manager.py`,
`kv_cache_coordinator.py`; on by default since V1 became the default engine, v0.8.0:
``CacheConfig.enable_prefix_caching = True``) gives every FULL block of a request an identity,
the hash of its tokens chained to the previous block's hash, keeps a block cached after its
last user frees it, and lets a later request with the same prefix reuse it. This module does
the same with integers:

- **Identity.** Token values are not simulated, so a request's token stream gets an identity
  from where its tokens come from: its tenant's system prompt, then its stream (a session's
  conversation, every turn a prefix of the next one; or a request on its own), see
  `simkit.sim.sessions`. Block i of a request is block i of that chain: blocks that lie within
  the system prompt belong to the tenant (shared by all its sessions), the others to the
  stream. Equal prefixes therefore get equal identities, exactly when vLLM's hash chains
  would be equal (answers re-sent verbatim).
- **Hits on full blocks only**, at most ``prompt - 1`` tokens (vLLM recomputes the last
  prompt token to get its logits: `KVCacheManager.get_computed_blocks` caps the hit at
  ``num_tokens - 1`` tokens, so a fully cached prompt recomputes its last block). The hit
  is the longest prefix every layer group can serve (`HybridKVCacheCoordinator`'s fixed
  point: each group accepts a length or lowers it):
    full / MLA    every block of the prefix cached (`FullAttentionManager`);
    window w      the ceil((w - 1) / B) blocks before the hit cached, or the whole prefix
                  when it is shorter (`SlidingWindowManager.find_longest_cache_hit`): a
                  window layer reuses only what is still cached;
    chunked c     the blocks from the start of the hit's chunk on
                  (`ChunkedLocalAttentionManager`);
    constant state (SSM, linear attention, memory): the state at the hit's boundary must
                  have been kept. vLLM v1 caches Mamba states at block boundaries
                  (`MambaManager`; PR #25752 "Mamba2 Automatic Prefix Caching", PR #30877
                  ``mamba_cache_mode = "align"``, which keeps the state of the last token of
                  a step that ends on a block boundary); before them it disabled prefix
                  caching for such models. simkit keeps, like align mode, the state at the
                  last block boundary a request reached when it leaves the batch (what the
                  next turn of its session needs), as one cached block of
                  ceil(state bytes / unit bytes) units; earlier boundaries are not kept.
- **Reference counts**: a cached block held by several running requests is stored once; the
  admission needs only the blocks it does not share. A request prefills only the uncached
  suffix (from the hit on), and attention still reads the cached prefix.
- **LRU eviction of free cached blocks**: a block whose last holder leaves keeps its identity
  and counts as free memory; an allocation that finds no empty room evicts the least
  recently freed one first (vLLM's ``free_block_queue``; blocks freed together leave
  last-first, as `SingleTypeKVCacheManager.free` frees a request's blocks in reverse).
- A block becomes cached when it is computed: at the end of the prefill iteration for
  prompt blocks (so concurrent requests share a system prompt as soon as one has computed
  it), at release for blocks filled while decoding. vLLM hashes blocks when it schedules
  them; the difference is at most one iteration. A copy computed while an identical one is
  cached (two requests of one tenant admitted in the same iteration) stays private; vLLM
  registers both under one hash, which changes neither memory nor later hits.

Accounting stays in the KV manager's integer units (`simkit.sim.kvcache`): the replica's
per-sequence column is each sequence's own footprint; the pool counts held, cached-free and
shared units (see `KVPool`).

Not cached (one line says so and the run goes on without prefix caching, as vLLM disables
it for models it cannot cache): contiguous KV memory (no blocks), eviction to a budget
(StreamingLLM drops the middle of the cache), sparse window + global layers (no vLLM
manager), and stacks with only constant state (nothing paged to key the states on).
Differences from vLLM beyond the above: blocks a window or chunk layer computes and slides
past within one prefill are cached only where there is empty room (vLLM allocates them for
that iteration, then frees them to the cache); a constant state is kept only at the last
block boundary a request reached; swapped-out sequences come back with private copies.

Modules: `simkit.sim.prefix_blocks` (cache classes, owners, hits), `simkit.sim.prefix_lookup`
(the longest hit), `simkit.sim.prefix_lru` (free cached blocks, eviction), this one
(admission, computing, sliding, leaving), `simkit.sim.prefix_full` (the same for stacks of
full attention only, with scalars) and `simkit.sim.prefix_stats` (summary keys).
"""

from __future__ import annotations

import warnings

import numpy as np

from simkit.errors import SimkitWarning
from simkit.sim.prefix_blocks import (CHUNKED, FULL, STATE, WINDOW, CacheClass, Hit, Owner,
                                      SeqRef, cache_classes)
from simkit.sim.prefix_lookup import HitSearch
from simkit.sim.prefix_lru import LRUFreeBlocks


def applies(policy, enabled: bool) -> bool:
    """Whether prefix caching runs: asked for and possible (one warning when it is not)."""
    if not enabled:
        return False
    classes, why = cache_classes(policy)
    if classes is None:
        warnings.warn(SimkitWarning(f"serving.prefix_caching: off for this run: {why}"))
        return False
    return True


def make_cache(policy, pool, table, enabled: bool):
    """A replica's PrefixCache (None when caching is off; see `applies`): for stacks of
    full attention only, the one with scalar streams (`simkit.sim.prefix_full`)."""
    if not enabled:
        return None
    classes, _ = cache_classes(policy)
    if len(classes) == 1 and classes[0].kind == FULL:
        from simkit.sim.prefix_full import FullPrefixCache

        return FullPrefixCache(policy, pool, table, classes)
    return PrefixCache(policy, pool, table, classes)


class PrefixCache(HitSearch, LRUFreeBlocks):
    """One replica's prefix cache over its KVPool (see the module docstring)."""

    def __init__(self, policy, pool, table, classes: list[CacheClass]) -> None:
        self.policy = policy
        self.pool = pool
        pool.cache = self
        self.table = table
        self.classes = classes
        self.block = policy.block_size
        self.n_classes = len(classes)
        self.positional = [c for c in classes if c.kind != STATE]
        self.state = next((c for c in classes if c.kind == STATE), None)
        self.full = classes[0] if classes[0].kind == FULL else None
        self.only_full = len(classes) == 1 and self.full is not None
        self.tenants: dict[int, Owner] = {}
        self.streams: dict[int, Owner] = {}
        self.seqs: dict[int, SeqRef] = {}
        self._heap: list = []  # runs [stamp, owner, class, first block, end cursor]
        self._stamp = 0
        self.lazy = len(classes) == 1  # one block weight: evictions picked lazily
        self._owed = 0  # blocks counted as evicted, not yet picked
        self.version = 0  # changes whenever a lookup could answer differently
        # counters for the summary
        self.evicted_units = 0
        self.evictions = 0

    # ---- owners -------------------------------------------------------------------------
    def _chain(self, rid: int) -> tuple[Owner | None, Owner | None, int]:
        tab = self.table
        ft = int(tab.system_tokens[rid]) // self.block
        t = int(tab.tenant[rid])
        tenant = self.tenants.get(t) if ft else None
        return tenant, self.streams.get(int(tab.stream[rid])), ft

    def _make_owners(self, rid: int) -> tuple[Owner | None, Owner, int]:
        tab = self.table
        b = self.block
        ft = int(tab.system_tokens[rid]) // b
        tenant = None
        if ft:
            t = int(tab.tenant[rid])
            tenant = self.tenants.get(t)
            if tenant is None:
                tenant = self.tenants[t] = Owner(("tenant", t), ft, self.n_classes)
        st = int(tab.stream[rid])
        size = max(1, -(-int(tab.stream_tokens[rid]) // b) - ft + 1)
        stream = self.streams.get(st)
        if stream is None:
            stream = self.streams[st] = Owner(("stream", st), size, self.n_classes)
        else:
            stream.grow_to(size)
        return tenant, stream, ft

    def _forget(self, owner: Owner) -> None:
        """Drop an owner that holds nothing and has nothing cached."""
        if owner.holders or owner.n_live:
            return
        kind, key = owner.key
        d = self.tenants if kind == "tenant" else self.streams
        if d.get(key) is owner:
            del d[key]
        owner.dead = True

    def _parts(self, tenant: Owner | None, stream: Owner | None, ft: int, lo: int, hi: int):
        """(owner, owner lo, owner hi) pieces of chain blocks [lo, hi): the tenant's first."""
        if lo >= hi:
            return
        if lo < ft:
            yield tenant, lo, min(hi, ft)
        if hi > ft:
            yield stream, max(lo, ft) - ft, hi - ft

    # ---- admission ----------------------------------------------------------------------
    def acquire(self, rid: int, hit: Hit, tokens: int, footprint: int) -> None:
        """Admit `rid` with `hit` (from `lookup`, same cache version): touch the hit blocks,
        drop cached blocks past the hit that it will recompute, allocate the rest."""
        pool = self.pool
        if self._owed:
            self._settle()
        tenant, stream, ft = self._make_owners(rid)
        h = hit.blocks
        rec = SeqRef(tenant, stream, ft, self.n_classes, h)
        for c in self.classes:
            if c.kind == STATE:
                if h:
                    self._restamp_state(c, tenant, stream, ft, h - 1)
                continue
            if hit.touch is None:  # full attention only: the whole hit
                tr = (0, h)
            else:
                tr = hit.touch[c.index] if hit.touch else None
            run = rec.runs[c.index]
            if tr is not None:
                lo, hi = tr
                for own, a, z in self._parts(tenant, stream, ft, lo, hi):
                    ref = own.ref[c.index]
                    if own.holders:
                        seg = ref[a:z]
                        held = int(np.count_nonzero(seg))
                        seg += 1
                    else:
                        ref[a:z] = 1
                        held = 0
                    own.gen += 1
                    last = own.last_run[c.index]
                    if last is not None and a <= last[3] and last[4] <= z:
                        last[4] = last[3]  # every block of its latest run is held again
                    moved = (z - a) - held  # cached-free blocks now held again
                    pool.cached_units -= c.weight * moved
                    pool.units_in_use += c.weight * moved
                    pool.shared_units += c.weight * held
                    rec.canon += c.weight * (z - a)
                    if own is tenant:
                        run[0], run[1] = a, z
                    else:
                        run[2], run[3] = a, z
            self._drop_past(c, tenant, stream, ft, h)
        if tenant is not None:
            tenant.holders += 1
        stream.holders += 1
        self.seqs[rid] = rec
        pool.admit(footprint - rec.canon)  # the sequence, and its private blocks
        self.version += 1

    def _drop_past(self, c: CacheClass, tenant, stream, ft: int, h: int) -> None:
        """Cached blocks no one holds beyond the hit: the request recomputes them, so they
        are dropped (vLLM would cache its copy beside them; in memory either is free)."""
        for own, a in ((tenant, h), (stream, h - ft)):
            if own is None or a >= own.size:
                continue
            a = max(a, 0)
            if a >= own.top[c.index]:
                continue
            live = own.live[c.index]
            drop = np.flatnonzero(live[a:] & (own.ref[c.index][a:] == 0))
            if len(drop):
                live[a + drop] = False
                own.gen += 1
                own.stamp[c.index][a + drop] = 0
                own.n_live -= len(drop)
                self.pool.cached_units -= c.weight * len(drop)
                self.pool.units_freed += c.weight * len(drop)
                if c.kind == FULL:
                    own.pref = min(own.pref, a + int(drop[0]))

    def _restamp_state(self, c: CacheClass, tenant, stream, ft: int, x: int) -> None:
        """A state hit refreshes its block's place in the LRU order (vLLM touches it)."""
        own, j = (tenant, x) if x < ft else (stream, x - ft)
        if own is not None and own.live[c.index][j]:
            self._push(own, c, j, j + 1)

    # ---- as sequences compute -----------------------------------------------------------
    def promote(self, rid: int, computed: int) -> None:
        """Register the blocks `rid` has filled (`computed` tokens so far) that no cached
        block has the identity of yet; they become canonical blocks the sequence holds."""
        rec = self.seqs.get(rid)
        if rec is not None:
            self._promote(rec, computed)

    def _promote(self, rec: SeqRef, computed: int) -> None:
        b = self.block
        f = computed // b
        for c in self.positional:
            run = rec.runs[c.index]
            lo_t = c.start_block(computed, b)
            if c.kind != FULL and rec.computed < min(lo_t, f):
                self._cache_passed(c, rec, rec.computed, min(lo_t, f))
            if rec.tenant is not None and run[1] < min(f, rec.ft):
                if self._owed:  # the tenant's blocks may be cached by others: look at them
                    self._settle()
                if run[0] == run[1]:
                    run[0] = run[1] = max(run[1], lo_t)
                run[1] = self._extend(c, rec, rec.tenant, run[1], min(f, rec.ft))
            end = f - rec.ft
            if end > run[3]:
                if run[2] == run[3]:
                    run[2] = run[3] = max(run[3], lo_t - rec.ft, 0)
                run[3] = self._extend(c, rec, rec.stream, run[3], end)
        rec.computed = max(rec.computed, f)
        self.version += 1

    def _cache_passed(self, c: CacheClass, rec: SeqRef, a: int, z: int) -> None:
        """Blocks [a, z) a window or chunk layer computed and left behind within one prefill:
        vLLM holds them for that iteration and then frees them to the cache; simkit never
        held them, so it caches those it has empty room for (nearest the window first), as
        free blocks."""
        pool = self.pool
        room = (pool.policy.max_units(pool.n_seqs) - pool.units_in_use
                - pool.cached_units) // c.weight
        for own, lo, hi in reversed(list(self._parts(rec.tenant, rec.stream, rec.ft, a, z))):
            if room <= 0:
                break
            lo = max(lo, hi - room)
            live = own.live[c.index]
            new = np.flatnonzero(~live[lo:hi]) + lo
            if not len(new):
                continue
            live[new] = True
            own.gen += 1
            own.n_live += len(new)
            own.top[c.index] = max(own.top[c.index], hi)
            own.stamp[c.index][new] = self._push(own, c, lo, hi)
            pool.cached_units += c.weight * len(new)
            pool.units_allocated += c.weight * len(new)
            room -= len(new)

    def _extend(self, c: CacheClass, rec: SeqRef, own: Owner, a: int, z: int) -> int:
        """Promote own's blocks [a, ...) up to z while they are not cached; returns the new
        end of the sequence's run."""
        if a >= z:
            return a
        i = c.index
        live = own.live[i]
        top = own.top[i]
        if a >= top:  # nothing cached at or past a (a stream's own new blocks)
            k = z - a
        else:
            seg = live[a:z]
            k = (z - a) if not seg.any() else int(seg.argmax())
        if k:
            live[a:a + k] = True
            own.ref[i][a:a + k] = 1
            own.gen += 1
            own.n_live += k
            rec.canon += c.weight * k
            if c.kind == FULL and own.pref == a:
                if a + k >= top:
                    own.pref = a + k
                else:
                    rest = live[a + k:]
                    own.pref = a + k + (len(rest) if rest.all() else int(rest.argmin()))
            if a + k > top:
                own.top[i] = a + k
        return a + k

    def slide(self, rid: int, computed: int, shrunk: int) -> None:
        """`rid`'s windows or chunks moved (context now `computed`) and its footprint shrank
        by `shrunk` units: release the canonical blocks it slid past, free the private ones."""
        rec = self.seqs[rid]
        released = self._slide(rec, computed)
        self.pool.resize(0, shrunk - released)  # its private blocks

    def shrink_units(self, t0: np.ndarray, t1: np.ndarray) -> np.ndarray:
        """Units each sequence's windows and chunks leave behind going from context t0 to
        t1 (vectorised; full classes never shrink)."""
        b = self.block
        out = np.zeros(np.shape(t0), dtype=np.int64)
        for c in self.positional:
            if c.kind == WINDOW:
                out += c.weight * (np.maximum(0, t1 - c.span) // b
                                   - np.maximum(0, t0 - c.span) // b)
            elif c.kind == CHUNKED:
                s0 = np.where(t0 > 0, c.span * ((t0 - 1) // c.span), 0) // b
                s1 = np.where(t1 > 0, c.span * ((t1 - 1) // c.span), 0) // b
                out += c.weight * (s1 - s0)
        return out

    def _slide(self, rec: SeqRef, computed: int) -> int:
        b = self.block
        out = 0
        for c in self.positional:
            if c.kind == FULL:
                continue
            a = c.start_block(computed, b)
            run = rec.runs[c.index]
            if rec.tenant is not None and run[0] < min(a, run[1]):
                out += self._release_run(c, rec.tenant, run[0], min(a, run[1]), rec)
                run[0] = min(a, run[1])
            if run[2] < min(a - rec.ft, run[3]):
                out += self._release_run(c, rec.stream, run[2], min(a - rec.ft, run[3]), rec)
                run[2] = min(a - rec.ft, run[3])
        return out

    def _release_run(self, c: CacheClass, own: Owner, a: int, z: int, rec: SeqRef) -> int:
        """rec stops holding own's blocks [a, z) of class c; those no one holds any more
        become free cached blocks (one LRU stamp, last block first)."""
        pool = self.pool
        ref = own.ref[c.index]
        seg = ref[a:z]
        seg -= 1
        own.gen += 1
        n = z - a
        if own.holders == 1:
            zeros = n
            own.stamp[c.index][a:z] = self._push(own, c, a, z)
        else:
            if (seg[-1] if c.kind == FULL else seg.min()) < 0:  # (full: refs never rise
                raise RuntimeError("prefix cache: a reference count went negative")  # along)
            free = seg == 0
            zeros = int(np.count_nonzero(free))
            if zeros:
                s = self._push(own, c, a, z)
                own.stamp[c.index][a:z][free] = s
        pool.units_in_use -= c.weight * zeros
        pool.cached_units += c.weight * zeros
        pool.shared_units -= c.weight * (n - zeros)
        rec.canon -= c.weight * n
        self.version += 1
        return c.weight * n

    # ---- leaving the batch --------------------------------------------------------------
    def release(self, rid: int, computed: int, footprint: int, keep: bool = True) -> None:
        """`rid` leaves the batch (finished or preempted) with `computed` tokens in its cache
        and `footprint` units as its own: register its filled blocks and the state at its
        last block boundary (keep), free its private blocks, release its canonical ones."""
        rec = self.seqs.pop(rid)
        pool = self.pool
        if keep:
            self._promote(rec, computed)
        private = footprint - rec.canon
        for c in self.positional:
            run = rec.runs[c.index]
            # the stream's (deeper) blocks are freed first, as vLLM frees last-first
            if run[3] > run[2]:
                self._release_run(c, rec.stream, run[2], run[3], rec)
            if rec.tenant is not None and run[1] > run[0]:
                self._release_run(c, rec.tenant, run[0], run[1], rec)
        if rec.canon:
            raise RuntimeError("prefix cache: a sequence left with references it never made")
        pool.release(private)
        if keep and self.state is not None:
            self._checkpoint(rec, computed // self.block)
        if rec.tenant is not None:
            rec.tenant.holders -= 1
            self._forget(rec.tenant)
        rec.stream.holders -= 1
        self._forget(rec.stream)
        self.version += 1

    def _checkpoint(self, rec: SeqRef, f: int) -> None:
        """Keep the constant state at block boundary f (after block f - 1) as a free cached
        block of the state class (vLLM align mode keeps the state of a step that ends on a
        block boundary)."""
        if f <= 0:
            return
        c = self.state
        own, j = (rec.tenant, f - 1) if f - 1 < rec.ft else (rec.stream, f - 1 - rec.ft)
        if own is None or j >= own.size:
            return
        live = own.live[c.index]
        if not live[j]:
            pool = self.pool
            room = pool.policy.max_units(pool.n_seqs) - pool.units_in_use
            if room < c.weight:
                return  # the state does not fit even with every cached block evicted
            short = c.weight - (room - pool.cached_units)
            if short > 0:
                self.evict(short)
            live[j] = True
            own.gen += 1
            own.n_live += 1
            own.top[c.index] = max(own.top[c.index], j + 1)
            pool.cached_units += c.weight
            pool.units_allocated += c.weight
        self._push(own, c, j, j + 1)
