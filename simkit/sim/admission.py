"""What a scheduler calls to change the running batch (its mechanisms; the policy is the
scheduler's, `simkit.sim.scheduler`): admit the head of the waiting queue (its prefix-cache
hit, its blocks), swap the head of the swapped queue back in, give every decode room for its
next token (preempting the scheduler's victims while memory is short), preempt one sequence
(swap out or recompute), end a static batch.

A mixin of `simkit.sim.replica.Replica`, whose batch layout is `simkit.sim.rows`."""

from __future__ import annotations

import numpy as np

from simkit.sim.prefix_blocks import Hit
from simkit.sim.request import QUEUED, RUNNING, SWAPPED
from simkit.sim.rows import ASYNC, CACHED, ID, NLEFT, PRE, UNITS

_NO_HIT = Hit(0, 0, [], 0)
_NAN = float("nan")


class Admission:
    """Batch membership and memory: admission, resumption, growth, preemption."""

    def _lookup(self, rid: int, tokens: int) -> Hit:
        cache = self.cache
        if cache is None:
            return _NO_HIT
        m = self._memo
        if m[0] == rid and m[1] == tokens and m[2] == cache.version:
            return m[3]
        hit = cache.lookup(rid, tokens)
        self._memo = (rid, tokens, cache.version, hit)
        return hit

    def _room(self, rid: int, tokens: int) -> int:
        """Units free for request `rid` to join holding `tokens`: the pool's free units, less
        the scheduler's `admission_reserve` while others run, and with `reserves_output`
        (admission = "no_evict") less what the running sequences and `rid` itself will
        still grow by up to their last tokens, or under SGLang's estimate (admission =
        "new_token_ratio") less what it reserves for them. An empty replica takes what
        fits."""
        free = self.pool.free_units(1)
        if not self.n:
            return free
        free -= self._reserve
        sched = self.scheduler
        if sched.reserves_output:
            free -= self._growth_ahead() + max(self._units_at_end(rid, tokens), 0)
        elif sched.ratio is not None:  # (SGLang admits while the total stays strictly below)
            free -= sched.ratio.reserved_units(self) + sched.ratio.own_units(self, rid, tokens) \
                + 1
        return free

    def _end_tokens(self, rids):
        """Tokens cached at a request's last step: prompt + output - 1, and the throw-away
        steps of a multi-step round past its end."""
        return self.table.stream_tokens[rids] + (self.rounds - 2)

    def _units_at_end(self, rid: int, tokens: int) -> int:
        """Units request `rid` will hold by its last token beyond what `tokens` hold."""
        policy = self.policy
        return policy.peak_units_one(tokens, int(self._end_tokens(rid))) - \
            policy.units_one(tokens)

    def _growth_ahead(self) -> int:
        """Units the running sequences will still take up to their last tokens."""
        n = self.n
        peak = self.policy.peak_units(self.R[CACHED, :n], self._end_tokens(self.R[ID, :n]))
        return int(np.maximum(peak - self.R[UNITS, :n], 0).sum())

    def head_prefill(self) -> tuple[int, int]:
        """(tokens the prefix cache serves, tokens to hold) of the head of the queue: a
        preempted request recomputes its prompt and the tokens it already emitted."""
        rid = self.waiting[0]
        tokens = int(self.table.prompt_tokens[rid] + self.table.generated[rid])
        return self._lookup(rid, tokens).tokens, tokens

    def head_might_fit(self) -> bool:
        """Whether the head of the swapped or waiting queue could fit the memory free now
        (counting every block it could share: an upper bound); never while SGLang's batch
        is marked full."""
        ratio = self.scheduler.ratio
        if ratio is not None and ratio.blocked(self):
            return False
        policy = self.policy
        if self.swapped:
            rid, cached, _ = self.swapped[0]
            tokens = cached + 1
        else:
            rid = self.waiting[0]
            tokens = int(self.table.prompt_tokens[rid] + self.table.generated[rid])
        need = policy.peak_units_one(0, tokens) if not self._end_units \
            else policy.units_one(tokens)
        if self.cache is not None:
            need -= self.cache.shared_bound(rid, tokens)
        return need <= self._room(rid, tokens)

    def _count_prefill(self, rid: int, computed: int) -> None:
        """Prompt tokens an admission computes; after a preemption all of them were computed
        before (`recomputed_tokens`)."""
        self.table.prefill_tokens[rid] += computed
        if self.table.preemptions[rid]:
            self.recomputed_tokens += computed

    def admit_head(self, now_s: float) -> bool:
        """Admit the head of the waiting queue if its blocks fit; False leaves it queued."""
        tab, pool, policy = self.table, self.pool, self.policy
        rid = self.waiting[0]
        g = int(tab.generated[rid])
        tokens = int(tab.prompt_tokens[rid]) + g
        cache = self.cache
        free = self._room(rid, tokens)
        if cache is None and self._end_units:  # (the plain path first: fewest steps)
            need = policy.units_one(tokens)
            if need > free:
                return False
            pool.admit(need)
            self.waiting.popleft()
            self._append(rid, 0, need, int(tab.output_tokens[rid]) - g, tokens,
                         tab.last_token_s[rid] if g else _NAN)
            if tab.start_s[rid] != tab.start_s[rid]:  # NaN: first time scheduled
                tab.start_s[rid] = now_s
                tab.cached_tokens[rid] = 0
            self._count_prefill(rid, tokens)
            self.adm_start.append(0)
            self.adm_len.append(tokens)
            tab.status[rid] = RUNNING
            self.sim.queue_log(now_s, -1)
            return True
        if self._end_units:  # (with a cache: without one the plain path has returned)
            need = policy.units_one(tokens)
            if need > free and policy.monotone_units and \
                    need - cache.shared_bound(rid, tokens) > free:
                return False  # not even if every block it could hit were shared
            hit = self._lookup(rid, tokens)
        else:  # prefilled in chunks, a window or chunk holds more at some chunk's end than
            # at the prompt's end: reserve the most it holds on the way
            hit = _NO_HIT if cache is None else self._lookup(rid, tokens)
            need = policy.peak_units_one(hit.tokens, tokens)
        if need - hit.shared > free:
            return False
        if cache is None:
            pool.admit(need)
        else:
            cache.acquire(rid, hit, tokens, need)
        self.waiting.popleft()
        h = hit.tokens
        self._append(rid, h, need, int(tab.output_tokens[rid]) - g, tokens - h,
                     tab.last_token_s[rid] if g else _NAN)
        if tab.start_s[rid] != tab.start_s[rid]:  # NaN: first time scheduled
            tab.start_s[rid] = now_s
            tab.cached_tokens[rid] = h
        self._count_prefill(rid, tokens - h)
        self.adm_start.append(h)
        self.adm_len.append(tokens - h)
        tab.status[rid] = RUNNING
        self.sim.queue_log(now_s, -1)
        return True

    def resume_head(self, now_s: float) -> bool:
        """Swap the head of the swapped queue back in if it fits (no recomputation)."""
        tab, pool, policy = self.table, self.pool, self.policy
        rid, cached, units = self.swapped[0]
        need = policy.units_one(cached + 1)
        hit = self._lookup(rid, cached + 1)
        if need - hit.shared > self._room(rid, cached + 1):
            return False
        self.swapped.popleft()
        if self.cache is not None:
            self.cache.acquire(rid, hit, cached + 1, need)
        else:
            pool.admit(need)
        self._swap_pending += units * policy.unit_bytes + policy.fixed_bytes
        left = int(tab.output_tokens[rid] - tab.generated[rid])
        self._append(rid, cached, need, left, 0, tab.last_token_s[rid])
        tab.status[rid] = RUNNING
        self.sim.queue_log(now_s, -1)
        return True

    def _preempt(self, i: int, now_s: float) -> None:
        tab = self.table
        rid, cached, nleft, units, pre = (int(v) for v in self.R[:ASYNC, i])
        left = -nleft
        if self.cache is not None:
            self.cache.release(rid, cached, units)
        else:
            self.pool.release(units)
        tab.preemptions[rid] += 1
        tab.last_token_s[rid] = self._last.get(rid, _NAN) if self.R[ASYNC, i] else \
            _NAN if pre else self._t_sync
        self.preemptions += 1
        tab.generated[rid] = tab.output_tokens[rid] - left
        if self.swap and pre == 0:
            # swap the cache out over the host link; resumed later without recompute
            self._swap_pending += units * self.policy.unit_bytes + self.policy.fixed_bytes
            self.swapped.appendleft((rid, cached, units))
            tab.status[rid] = SWAPPED
        else:
            # recompute: drop the cache; prompt + emitted tokens are prefilled again
            if self.scheduler.requeue_front:
                self.waiting.appendleft(rid)
            else:
                self.waiting.append(rid)
            tab.status[rid] = QUEUED
        self.sim.queue_log(now_s, 1)
        keep = np.ones(self.n, dtype=bool)
        keep[i] = False
        self._keep(keep)

    def _decode_mask(self) -> np.ndarray | None:
        """Sequences that hold a decode slot (None = all of them)."""
        n = self.n
        if not self.n_pre and not self.n_done:
            return None
        return (self.R[PRE, :n] == 0) & ~self.done[:n]

    def _grow_to(self, n: int) -> np.ndarray:
        """Context each sequence needs room for in the next iteration: one more token, or
        with speculation its last token and the k drafted ones (vLLM's lookahead slots),
        never past its answer."""
        c = self.R[CACHED, :n] + 1
        if self.spec is None:
            return c
        return c + np.maximum(np.minimum(self.spec.k, -self.R[NLEFT, :n] - 1), 0)

    def grow_decodes(self, now_s: float) -> bool:
        """Give every decoding sequence room for its next token, preempting the scheduler's
        victims while memory is short. Returns whether anyone was preempted."""
        if not self.policy.paged:
            return False
        preempted = False
        units = self.policy.units
        pool = self.pool
        if self.cache is not None and not self.policy.monotone_units:
            self._slide_windows()
        while self.n:
            n = self.n
            dec = self._decode_mask()
            if dec is None and self.policy.monotone_units:
                # everyone decodes and nobody frees blocks: own units(cached + 1) each, one
                # lookup; the batch's footprints sum to the pool's footprint
                new = units(self._grow_to(n))
                total = int(np.add.reduce(new)) - pool.footprint
                if total <= pool.free_units():
                    if total:
                        self.R[UNITS, :n] = new
                        pool.grow(total)
                    return preempted
                self._short(now_s)
                preempted = True
                continue
            if self.spec is None:
                need = units(self._grow_to(n)) - self.R[UNITS, :n]
            else:  # a rejected draft leaves the context anywhere up to the drafted end: hold
                # the most a window or chunk needs on the way (a chunk boundary frees blocks)
                c = self.R[CACHED, :n]
                need = self.policy.peak_units(c + 1, self._grow_to(n)) - self.R[UNITS, :n]
            if dec is not None:
                need *= dec
            total = int(np.add.reduce(need))
            if total <= pool.free_units():
                if self.cache is not None:  # windows already slid: growth, or what a
                    self.R[UNITS, :n] += need  # prefill reserved beyond its end
                    if total > 0:
                        pool.grow(total)
                    elif total < 0:
                        pool.units_in_use += total
                        pool.units_freed -= total
                elif total or not self.policy.monotone_units:
                    # the step's net change: a window sliding past a block frees it as
                    # another sequence takes a new one (counted per step, as the fast path)
                    self.R[UNITS, :n] += need
                    pool.resize(max(total, 0), max(-total, 0))
                return preempted
            self._short(now_s)
            preempted = True
        return preempted

    def _short(self, now_s: float) -> None:
        """The decodes' next tokens do not fit: preempt the scheduler's victim (SGLang
        retracts until the rest have room to go on: `NewTokenRatio.retract`)."""
        ratio = self.scheduler.ratio
        if ratio is not None:
            ratio.retract(self, now_s)
        else:
            self._preempt(self.scheduler.victim(self), now_s)

    def _slide_windows(self) -> None:
        """Prefix cache with window / chunked layers: before growing, every decoding
        sequence's windows move to its next position; the blocks they leave are released
        (cached ones stay cached, free) and its footprint shrinks by them."""
        n = self.n
        dec = self._decode_mask()
        c0 = self.R[CACHED, :n]
        shrink = self.cache.shrink_units(c0, c0 + 1)
        if dec is not None:
            shrink = shrink * dec
        for i in np.flatnonzero(shrink):
            s = int(shrink[i])
            self.cache.slide(int(self.R[ID, i]), int(c0[i]) + 1, s)
            self.R[UNITS, i] -= s

    def end_static_batch(self, now_s: float) -> None:
        """Static batching: when preemption took every unfinished sequence, the batch ends."""
        if self.n and self.n_done == self.n:
            self._release(self.done[:self.n].copy(), now_s)
