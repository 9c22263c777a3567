"""The longest prefix-cache hit of a request: each layer group kind's rule (vLLM v1
`single_type_kv_cache_manager.py`: `FullAttentionManager`, `SlidingWindowManager`,
`ChunkedLocalAttentionManager`, `MambaManager` `find_longest_cache_hit`) and the fixed point
over the groups (`kv_cache_coordinator.py`, `HybridKVCacheCoordinator`: each group accepts a
length or lowers it until all agree). The rules are in `simkit.sim.prefix`'s docstring.

A mixin of `simkit.sim.prefix.PrefixCache`."""

from __future__ import annotations

import numpy as np

from simkit.sim.prefix_blocks import _NO_HIT_TOUCH, CHUNKED, FULL, STATE, WINDOW, CacheClass, Hit


class HitSearch:
    """lookup() and shared_bound() over the owners of `PrefixCache` (table, block, classes,
    only_full, tenants, streams, _owed, _settle, _chain, _parts)."""

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
            return Hit(0, 0, _NO_HIT_TOUCH, 0)
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
            return Hit(0, 0, _NO_HIT_TOUCH, 0)
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
        return Hit(h, h * b, touch, shared)

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
                return Hit(0, 0, _NO_HIT_TOUCH, 0)
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
            return Hit(0, 0, _NO_HIT_TOUCH, 0)
        shared = 0
        if tenant is not None and tenant.holders:
            shared += int(np.count_nonzero(tenant.ref[0][:min(h, ft)]))
        if h > ft and stream.holders:
            shared += self._stream_held(stream, h - ft)
        return Hit(h, h * b, None, shared * self.classes[0].weight)

    def _stream_held(self, stream, n: int) -> int:
        """How many of a stream's first `n` cached blocks running sequences hold."""
        return int(np.count_nonzero(stream.ref[0][:n]))

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
