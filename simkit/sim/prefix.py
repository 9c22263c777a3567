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
Differences from vLLM beyond the above: a window layer caches only blocks a sequence held
(vLLM also caches blocks it computes and slides past within the same prefill), and swapped
out sequences come back with private copies.
"""

from __future__ import annotations

import heapq
import math
import warnings

import numpy as np

from simkit.errors import SimkitWarning

FULL, WINDOW, CHUNKED, STATE = "full", "window", "chunked", "state"


class CacheClass:
    """Layer groups that are cached in lockstep (same kind and span): their blocks share
    identities, holders and LRU order, and one block of the class weighs `weight` units."""

    __slots__ = ("index", "kind", "weight", "span", "need")

    def __init__(self, index: int, kind: str, weight: int, span: int = 0,
                 block_size: int = 1) -> None:
        self.index = index
        self.kind = kind
        self.weight = int(weight)
        self.span = int(span)  # window or chunk tokens
        # window: blocks that must be cached before a hit (the input token is in the window)
        self.need = -(-(self.span - 1) // block_size) if kind == WINDOW else 0

    def start_block(self, t: int, block_size: int) -> int:
        """First block a sequence at context t still holds."""
        if self.kind == WINDOW:
            return max(0, t - self.span) // block_size
        if self.kind == CHUNKED:
            return (self.span * ((t - 1) // self.span) if t > 0 else 0) // block_size
        return 0


def cache_classes(policy) -> tuple[list[CacheClass] | None, str]:
    """The layout's cache classes, or (None, why prefix caching cannot apply)."""
    if not policy.paged:
        return None, "contiguous KV memory has no blocks to share"
    if policy.budget_tokens is not None:
        return None, "eviction to serving.kv_budget_tokens drops the middle of the cache"
    groups = policy.layout.groups
    if not groups:
        return None, "a stack with only constant state has no paged blocks to key states on"
    b = policy.block_size
    full = 0
    spans: dict[tuple[str, int], int] = {}
    for i, g in enumerate(groups):
        w = policy.block_weight(i)
        if g.kind in ("full", "mla"):
            full += w
        elif g.kind == "window":
            spans[(WINDOW, int(g.window))] = spans.get((WINDOW, int(g.window)), 0) + w
        elif g.kind == "chunked":
            spans[(CHUNKED, int(g.chunk))] = spans.get((CHUNKED, int(g.chunk)), 0) + w
        else:
            return None, (f"layer group {g.label} ({g.kind}) has no prefix-cache manager in "
                          "vLLM")
    out: list[CacheClass] = []
    if full:
        out.append(CacheClass(0, FULL, full, block_size=b))
    for (kind, span), w in spans.items():
        out.append(CacheClass(len(out), kind, w, span, b))
    if policy.fixed_bytes > 0:
        out.append(CacheClass(len(out), STATE,
                              math.ceil(policy.fixed_bytes / policy.unit_bytes), block_size=b))
    return out, ""


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


class Owner:
    """The cached blocks of one prefix segment: a tenant's system prompt or one stream.

    Per cache class, arrays over the segment's blocks: ``live`` (cached: computed, not
    evicted), ``ref`` (running sequences holding it) and ``stamp`` (when it was last freed:
    the LRU order). ``pref`` is the length of the cached prefix of the first (full) class.
    """

    __slots__ = ("key", "size", "live", "ref", "stamp", "pref", "top", "holders", "n_live",
                 "dead", "last_run", "gen")

    def __init__(self, key: tuple, size: int, n_classes: int) -> None:
        self.key = key
        self.size = size
        self.live = [np.zeros(size, dtype=bool) for _ in range(n_classes)]
        self.ref = [np.zeros(size, dtype=np.int32) for _ in range(n_classes)]
        self.stamp = [np.zeros(size, dtype=np.int64) for _ in range(n_classes)]
        self.pref = 0
        self.top = [0] * n_classes  # per class: no block at or past this index is cached
        self.last_run: list = [None] * n_classes  # per class: its latest LRU run
        self.gen = 0  # changes whenever its arrays do (an LRU run's cached blocks go stale)
        self.holders = 0
        self.n_live = 0
        self.dead = False

    def grow_to(self, size: int) -> None:
        if size <= self.size:
            return
        extra = size - self.size
        self.live = [np.concatenate([a, np.zeros(extra, dtype=bool)]) for a in self.live]
        self.ref = [np.concatenate([a, np.zeros(extra, dtype=np.int32)]) for a in self.ref]
        self.stamp = [np.concatenate([a, np.zeros(extra, dtype=np.int64)]) for a in self.stamp]
        self.size = size


class SeqRef:
    """What one running sequence references in the cache: per class, a run of canonical
    blocks in its tenant's segment [t_lo, t_hi) and one in its stream's [s_lo, s_hi)."""

    __slots__ = ("tenant", "stream", "ft", "runs", "canon", "computed")

    def __init__(self, tenant: Owner | None, stream: Owner, ft: int, n_classes: int,
                 computed: int = 0) -> None:
        self.tenant = tenant
        self.stream = stream
        self.ft = ft
        self.computed = computed  # blocks computed (or hit) so far
        self.runs = [[0, 0, 0, 0] for _ in range(n_classes)]
        self.canon = 0  # units of canonical blocks referenced


class Hit:
    """The outcome of a lookup: hit length and the chain blocks each class would touch."""

    __slots__ = ("blocks", "tokens", "touch", "shared", "version")

    def __init__(self, blocks: int, tokens: int, touch: list, shared: int, version: int):
        self.blocks = blocks
        self.tokens = tokens
        self.touch = touch  # per class: (lo, hi) chain blocks, or None
        self.shared = shared  # units of touched blocks other sequences hold already
        self.version = version


_NO_HIT_TOUCH: list = []


class PrefixCache:
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

    # ---- lookups ------------------------------------------------------------------------
    def lookup(self, rid: int, tokens: int) -> Hit:
        """The longest cached prefix of request `rid`'s first `tokens` tokens (<= tokens - 1,
        in whole blocks) and what admitting it would touch."""
        if self._owed:
            self._settle()
        b = self.block
        m = (tokens - 1) // b  # blocks a hit may cover
        if self.only_full:
            return self._lookup_full(rid, m)
        tenant, stream, ft = self._chain(rid)
        if m <= 0 or (tenant is None and ft) or (not ft and stream is None):
            return Hit(0, 0, _NO_HIT_TOUCH, 0, self.version)
        h = m
        while True:
            h0 = h
            for c in self.classes:
                if h == 0:
                    break
                h = self._class_hit(c, tenant, stream, ft, h)
            if h == h0 or h == 0:
                break
        if h == 0:
            return Hit(0, 0, _NO_HIT_TOUCH, 0, self.version)
        touch = []
        shared = 0
        for c in self.classes:
            if c.kind == STATE:
                touch.append(None)
                continue
            if c.kind == FULL:
                lo = 0
            elif c.kind == WINDOW:
                lo = max(h - c.need, 0)
            else:
                lo = self._chunk_start(c, h)
            # only what the sequence still holds once its prefill is done
            lo = max(lo, c.start_block(tokens, b))
            touch.append((lo, h) if lo < h else None)
            if lo < h:
                for own, a, z in self._parts(tenant, stream, ft, lo, h):
                    if own.holders:
                        shared += c.weight * int(np.count_nonzero(own.ref[c.index][a:z]))
        return Hit(h, h * b, touch, shared, self.version)

    def shared_bound(self, rid: int, tokens: int) -> int:
        """At most the units admitting `rid` could share (no cache lookup): a blocked queue
        head is asked at every iteration, and this rules most of those asks out cheaply."""
        if not self.only_full:
            return 1 << 62
        tab = self.table
        b = self.block
        ft = int(tab.system_tokens[rid]) // b
        pre = 0
        if ft:
            tenant = self.tenants.get(int(tab.tenant[rid]))
            pre = tenant.pref if tenant is not None else 0
            if pre >= ft:
                stream = self.streams.get(int(tab.stream[rid]))
                pre = ft + (stream.pref if stream is not None else 0)
        else:
            stream = self.streams.get(int(tab.stream[rid]))
            pre = stream.pref if stream is not None else 0
        return min(pre, (tokens - 1) // b) * self.classes[0].weight

    def _lookup_full(self, rid: int, m: int) -> Hit:
        """`lookup` for stacks of full attention only: the cached prefix, touched whole."""
        tab = self.table
        b = self.block
        ft = int(tab.system_tokens[rid]) // b
        tenant = stream = None
        if ft:
            tenant = self.tenants.get(int(tab.tenant[rid]))
            if tenant is None:
                return Hit(0, 0, _NO_HIT_TOUCH, 0, self.version)
            pre = tenant.pref
            if pre >= ft:
                stream = self.streams.get(int(tab.stream[rid]))
                if stream is not None:
                    pre = ft + stream.pref
        else:
            stream = self.streams.get(int(tab.stream[rid]))
            pre = stream.pref if stream is not None else 0
        h = min(m, pre)
        if h <= 0:
            return Hit(0, 0, _NO_HIT_TOUCH, 0, self.version)
        shared = 0
        if tenant is not None and tenant.holders:
            shared += int(np.count_nonzero(tenant.ref[0][:min(h, ft)]))
        if h > ft and stream.holders:
            shared += int(np.count_nonzero(stream.ref[0][:h - ft]))
        return Hit(h, h * b, None, shared * self.classes[0].weight, self.version)

    def _chunk_start(self, c: CacheClass, h: int) -> int:
        return (h * self.block) // c.span * c.span // self.block

    def _live_chain(self, c: CacheClass, tenant, stream, ft: int, lo: int, hi: int
                    ) -> np.ndarray:
        parts = []
        for own, a, z in self._parts(tenant, stream, ft, lo, hi):
            if own is None:
                parts.append(np.zeros(z - a, dtype=bool))
            else:
                seg = own.live[c.index][a:z]
                parts.append(seg if len(seg) == z - a else
                             np.concatenate([seg, np.zeros(z - a - len(seg), dtype=bool)]))
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def _class_hit(self, c: CacheClass, tenant, stream, ft: int, h: int) -> int:
        """The longest hit <= h blocks class c can serve."""
        if c.kind == FULL:
            if ft and tenant.pref < ft:
                return min(h, tenant.pref)
            return min(h, ft + (stream.pref if stream is not None else 0))
        if c.kind == WINDOW:
            live = self._live_chain(c, tenant, stream, ft, 0, h)
            cs = np.concatenate(([0], np.cumsum(live, dtype=np.int64)))
            x = np.arange(h + 1)
            lo = np.maximum(0, x - c.need)
            ok = (cs[x] - cs[lo]) == np.minimum(x, c.need)
            return int(np.flatnonzero(ok)[-1])
        if c.kind == CHUNKED:
            start = self._chunk_start(c, h)
            if start >= h:
                return h
            live = self._live_chain(c, tenant, stream, ft, start, h)
            k = len(live) if live.all() else int(np.argmin(live))
            return start + k
        # STATE: the rightmost boundary x <= h whose state is cached
        live = self._live_chain(c, tenant, stream, ft, 0, h)
        nz = np.flatnonzero(live)
        return int(nz[-1]) + 1 if len(nz) else 0

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
        pool.n_seqs += 1
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
        pool.grow(footprint - rec.canon)
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
        private = shrunk - released
        self.pool.units_in_use -= private
        self.pool.units_freed += private

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
        pool.units_in_use -= private
        pool.units_freed += private
        pool.n_seqs -= 1
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
