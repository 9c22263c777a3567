"""One serving replica: its queue, its running batch, its KV pool and its iteration loop.

The running batch is one (5 x capacity) int64 array, columns in admission order (the last
admitted is the first preempted, as in vLLM): request id, cached tokens, minus the output
tokens still to produce (negated so that a decode step adds 1 to both rows at once), KV units
owned, prompt tokens still to prefill. Each iteration boundary (an engine event) commits the
iteration that just ended, retires finished requests, grows KV memory for the decodes
(preempting when it runs out), lets the scheduler admit, and starts the next iteration.

Fast path: while the batch only decodes and nothing can join it, membership changes only at
the next completion, the next memory shortfall or the next arrival. The replica then plans
all the iterations up to that point at once, with the cost model's vectorised
``decode_steps_s`` and one (steps x batch) grid of KV units, and schedules a single event.
``fast=False`` steps one iteration at a time through ``step_time_s``; both give the same
numbers, bit for bit (tests/test_sim_replica.py checks it).

Speed (benchmarks/simulate.py): an event costs a few dozen numpy calls on batch-sized arrays,
so the hot paths count calls. When the cost model offers integer-sum forms
(``decode_steps_sum_s``, ``step_sum_s``: exact for affine per-token costs) the replica hands
it sums of contexts instead of arrays, and with full attention (positions = tokens) the
positions held are sums too; per-step figures of a run are Python lists.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from collections import deque
from itertools import accumulate

import numpy as np

from simkit.sim.engine import PRIORITY_STEP
from simkit.sim.kvcache import KVPolicy, KVPool
from simkit.sim.request import COMPLETED, QUEUED, RUNNING, SWAPPED

_I64 = np.int64
ID, CACHED, NLEFT, UNITS, PRE = range(5)
#: CACHED and NLEFT (minus the output tokens still to produce) are adjacent rows, so one
#: slice advances both by a decode step: R[STEP] += 1
STEP = slice(CACHED, NLEFT + 1)
#: longest decode run planned in one go (bounds the planning grid; a longer run is simply
#: continued by the next plan, with identical results)
MAX_PLAN_STEPS = 1024


class Replica:
    """A model replica (gpus_per_replica GPUs) serving its own queue."""

    def __init__(self, index: int, sim, policy: KVPolicy, scheduler, step_model, *,
                 swap: bool, swap_bytes_per_s: float, fast: bool = True) -> None:
        self.index = index
        self.sim = sim
        self.table = sim.table
        self.engine = sim.engine
        self.policy = policy
        self.pool = KVPool(policy)
        self.scheduler = scheduler
        self.model = step_model
        # integer-sum shortcuts of the cost model, when it has them (StepCostModel does):
        # the same bits as decode_steps_s / step_time_s without building context arrays
        self._decode_sum = getattr(step_model, "decode_steps_sum_s", None)
        self._step_sum = getattr(step_model, "step_sum_s", None)
        #: every context the run can reach is tabulated with exact decode columns (the
        #: simulator asked the model to `ensure_tables`): grid and lookup forms apply
        self._tabulated = bool(getattr(step_model, "_exact_tables", False)) and \
            getattr(step_model, "_decode_affine", None) is None
        self.swap = swap
        self.swap_bytes_per_s = float(swap_bytes_per_s)
        self.fast = fast and policy.budget_tokens is None
        self.waiting: deque[int] = deque()
        self.swapped: deque[tuple[int, int, int]] = deque()  # (id, cached, units)
        cap = max(1, min(int(scheduler.max_batch), 1024))
        self.R = np.zeros((5, cap), dtype=_I64)
        self.done = np.zeros(cap, dtype=bool)  # finished, held until the batch ends (static)
        self.n = 0  # sequences in the batch
        self.n_pre = 0  # of which still prefilling
        self.n_done = 0  # of which finished but held (static batching)
        self.busy = False
        self._pending = None
        self._run_finishes = False
        self._swap_pending = 0.0
        self._last_dt = 0.0
        self.completed = 0
        self.preemptions = 0
        self.swap_bytes_total = 0.0
        self.iterations = 0
        # per-iteration log: start, duration, sequences computed, KV units owned, token
        # positions held, sequences holding memory, tokens produced (integers: turned into
        # bytes once, at the end, by `iteration_log`)
        # (compact typed arrays: a million iterations take 56 MB, not 250 MB of list items)
        self.log_t = array("d")
        self.log_dt = array("d")
        self.log_batch = array("q")
        self.log_units = array("q")
        self.log_pos = array("q")
        self.log_seqs = array("q")
        self.log_tokens = array("q")

    # ---- views ---------------------------------------------------------------------------
    @property
    def r_id(self) -> np.ndarray:
        return self.R[ID, :self.n]

    @property
    def r_pre(self) -> np.ndarray:
        return self.R[PRE, :self.n]

    @property
    def r_done(self) -> np.ndarray:
        return self.done[:self.n]

    @property
    def load(self) -> int:
        """What the router compares: requests running, queued or swapped out here."""
        return self.n + len(self.waiting) + len(self.swapped)

    def enqueue(self, rid: int, now_s: float) -> None:
        """A routed arrival joins the queue; an idle replica wakes up after this instant's
        other arrivals (PRIORITY_STEP sorts after PRIORITY_ARRIVAL)."""
        self.waiting.append(rid)
        self.table.status[rid] = QUEUED
        self.table.replica[rid] = self.index
        self.sim.queue_log(now_s, 1)
        if not self.busy:
            self.busy = True
            self.engine.schedule(now_s, PRIORITY_STEP, self._on_boundary)

    # ---- admission (called by schedulers) -----------------------------------------------
    def _append(self, rid: int, cached: int, units: int, left: int, pre: int) -> None:
        n = self.n
        if n == self.R.shape[1]:
            self.R = np.concatenate([self.R, np.zeros_like(self.R)], axis=1)
            self.done = np.concatenate([self.done, np.zeros_like(self.done)])
        R = self.R
        R[ID, n] = rid  # (scalar stores: cheaper than converting a tuple to a column)
        R[CACHED, n] = cached
        R[NLEFT, n] = -left
        R[UNITS, n] = units
        R[PRE, n] = pre
        self.done[n] = False
        self.n = n + 1
        if pre:
            self.n_pre += 1

    def admit_fcfs(self, now_s: float, max_batch: int, max_tokens: int | None,
                   token_budget: int | None = None) -> int:
        """Admit swapped, then waiting requests in order while they fit; stop at the first
        that does not (head-of-line, as vLLM's FCFS). Returns the number admitted."""
        tab, pool, policy = self.table, self.pool, self.policy
        n = 0
        tokens = 0
        while self.swapped and self.n < max_batch:
            rid, cached, units = self.swapped[0]
            if token_budget is not None and token_budget < 1:
                break
            need = policy.units_one(cached + 1)
            if need > pool.free_units(1):
                break
            self.swapped.popleft()
            pool.admit(need)
            self._swap_pending += units * policy.unit_bytes + policy.fixed_bytes
            left = int(tab.output_tokens[rid] - tab.generated[rid])
            self._append(rid, cached, need, left, 0)
            tab.status[rid] = RUNNING
            self.sim.queue_log(now_s, -1)
            if token_budget is not None:
                token_budget -= 1
            n += 1
        if self.swapped:
            return n  # swapped requests go first; new ones wait behind them
        prompt, output, generated = tab.prompt_tokens, tab.output_tokens, tab.generated
        while self.waiting and self.n < max_batch:
            rid = self.waiting[0]
            g = int(generated[rid])
            pre = int(prompt[rid]) + g  # recompute: prompt + tokens already emitted
            if token_budget is not None and token_budget < 1:
                break
            if max_tokens is not None and n and tokens + pre > max_tokens:
                break
            need = policy.units_one(pre)
            if need > pool.free_units(1):
                break
            self.waiting.popleft()
            pool.admit(need)
            self._append(rid, 0, need, int(output[rid]) - g, pre)
            if tab.start_s[rid] != tab.start_s[rid]:  # NaN: first time scheduled
                tab.start_s[rid] = now_s
            tab.status[rid] = RUNNING
            self.sim.queue_log(now_s, -1)
            tokens += pre
            if token_budget is not None:
                token_budget -= pre
            n += 1
        return n

    # ---- batch bookkeeping --------------------------------------------------------------
    def _keep(self, keep: np.ndarray) -> None:
        """Keep the sequences where `keep` (length n) is true, in order."""
        n = self.n
        m = int(np.count_nonzero(keep))
        self.R[:, :m] = self.R[:, :n][:, keep]
        self.done[:m] = self.done[:n][keep]
        self.n = m
        self.n_pre = int(np.count_nonzero(self.R[PRE, :m])) if self.n_pre else 0
        self.n_done = int(np.count_nonzero(self.done[:m])) if self.n_done else 0

    def _preempt(self, i: int, now_s: float) -> None:
        tab = self.table
        rid, cached, nleft, units, pre = (int(v) for v in self.R[:, i])
        left = -nleft
        self.pool.release(units)
        tab.preemptions[rid] += 1
        self.preemptions += 1
        tab.generated[rid] = tab.output_tokens[rid] - left
        if self.swap and pre == 0:
            # swap the cache out over the host link; resumed later without recompute
            self._swap_pending += units * self.policy.unit_bytes + self.policy.fixed_bytes
            self.swapped.appendleft((rid, cached, units))
            tab.status[rid] = SWAPPED
        else:
            # recompute: drop the cache; prompt + emitted tokens are prefilled again
            self.waiting.appendleft(rid)
            tab.status[rid] = QUEUED
        self.sim.queue_log(now_s, 1)
        keep = np.ones(self.n, dtype=bool)
        keep[i] = False
        self._keep(keep)

    def _decode_mask(self) -> np.ndarray | None:
        """Sequences that decode this iteration (None = all of them)."""
        n = self.n
        if not self.n_pre and not self.n_done:
            return None
        return (self.R[PRE, :n] == 0) & ~self.done[:n]

    def _grow_decodes(self, now_s: float) -> bool:
        """Give every decoding sequence room for its next token, preempting the most recently
        admitted ones while memory is short. Returns whether anyone was preempted."""
        if not self.policy.paged:
            return False
        preempted = False
        units = self.policy.units
        while self.n:
            n = self.n
            dec = self._decode_mask()
            if dec is None and self.policy.monotone_units:
                # everyone decodes and nobody frees blocks: own units(cached + 1) each, one
                # lookup; the batch owns every unit in use, so this is the sum of the growths
                new = units(self.R[CACHED, :n] + 1)
                total = int(np.add.reduce(new)) - self.pool.units_in_use
                if total <= self.pool.free_units():
                    if total:
                        self.R[UNITS, :n] = new
                        self.pool.grow(total)
                    return preempted
                victims = np.flatnonzero(~self.done[:n])
                self._preempt(int(victims[-1]), now_s)
                preempted = True
                continue
            need = units(self.R[CACHED, :n] + 1) - self.R[UNITS, :n]
            if dec is not None:
                need *= dec
            total = int(np.add.reduce(need))
            if total <= self.pool.free_units():
                if total or not self.policy.monotone_units:
                    # the step's net change: a window sliding past a block frees it as
                    # another sequence takes a new one (counted per step, as the fast path)
                    self.R[UNITS, :n] += need
                    self.pool.resize(max(total, 0), max(-total, 0))
                return preempted
            victims = np.flatnonzero(~self.done[:n])
            self._preempt(int(victims[-1]), now_s)
            preempted = True
        return preempted

    # ---- the iteration loop -------------------------------------------------------------
    def _on_boundary(self, _arg=None) -> None:
        now_s = self.engine.now_s
        if self._pending is not None:
            self._commit(now_s)
        self._begin(now_s)

    def _commit(self, now_s: float) -> None:
        kind, a, b = self._pending
        self._pending = None
        R, n = self.R, self.n
        if kind == "run":  # b decode steps of every sequence (a: their indices, None = all)
            if a is None:
                R[STEP, :n] += b
            else:
                R[STEP, a] += b
            if not self._run_finishes:
                return
        elif kind == "tail":  # decodes [:a], whole-prompt prefills [a:n] (see _step_tail)
            R[STEP, :n] += 1  # everyone emits a token; the prefills' caches fixed below
            tab = self.table
            if n - a == 1:  # one admission (the usual case): scalars
                R[CACHED, a] += R[PRE, a] - 1
                R[PRE, a] = 0
                rid = R[ID, a]
                if tab.first_token_s[rid] != tab.first_token_s[rid]:  # NaN: first time
                    tab.first_token_s[rid] = now_s
            else:
                R[CACHED, a:n] += R[PRE, a:n] - 1
                R[PRE, a:n] = 0
                ids = R[ID, a:n]
                ft = tab.first_token_s[ids]
                tab.first_token_s[ids] = np.where(np.isnan(ft), now_s, ft)
            self.n_pre = 0
        else:  # one mixed iteration: decode mask a (None = all), prefill chunks b
            if a is None:
                R[STEP, :n] += 1
            elif a.any():
                R[STEP, :n] += a
            if b is not None:
                R[CACHED, :n] += b
                R[PRE, :n] -= b
                first = (b > 0) & (R[PRE, :n] == 0)
                if first.any():
                    R[NLEFT, :n] += first
                    ids = R[ID, :n][first]
                    tab = self.table
                    ft = tab.first_token_s[ids]
                    tab.first_token_s[ids] = np.where(np.isnan(ft), now_s, ft)
                    self.n_pre -= int(np.count_nonzero(first))
        fin = R[NLEFT, :n] == 0
        if self.n_done:
            fin &= ~self.done[:n]
        if not np.count_nonzero(fin):  # (cheaper than fin.any())
            return
        if self.scheduler.holds_until_batch_end:
            self.done[:n] |= fin
            self.n_done = int(np.count_nonzero(self.done[:n]))
            if self.n_done < n:
                return
            fin = self.done[:n].copy()
        self._release(fin, now_s)

    def _release(self, fin: np.ndarray, now_s: float) -> None:
        """Finished sequences (mask over the batch) leave it and free their memory."""
        R, n = self.R, self.n
        tab = self.table
        pool = self.pool
        where = fin.nonzero()[0]
        if len(where) == 1:  # one finisher (the usual case): scalars and one shift
            i = int(where[0])
            rid = R[ID, i]
            tab.finish_s[rid] = now_s
            tab.status[rid] = COMPLETED
            u = int(R[UNITS, i])
            if R[PRE, i]:
                self.n_pre -= 1
            if self.done[i]:
                self.n_done -= 1
            R[:, i:n - 1] = R[:, i + 1:n]  # close the gap, keeping admission order
            self.done[i:n - 1] = self.done[i + 1:n]
            self.n = n - 1
        else:
            ids = R[ID, :n][fin]
            tab.finish_s[ids] = now_s
            tab.status[ids] = COMPLETED
            u = int(np.add.reduce(R[UNITS, :n][fin]))
            self._keep(~fin)
        pool.n_seqs -= len(where)
        pool.units_in_use -= u
        pool.units_freed += u
        self.completed += len(where)
        self.sim.on_completed(len(where))

    def _begin(self, now_s: float) -> None:
        self._swap_pending = 0.0
        n = self.n
        if (self.fast and n and not self.n_pre and not self.n_done and not self.waiting
                and not self.swapped and self.pool.free_units() >= n):
            # a pure decode batch with nothing to admit and room for one more block each
            # (a sequence needs at most one new block per token): no preemption is possible,
            # and the planned run allocates its first step's blocks itself
            if self._plan_run(now_s):
                return
        preempted = self._grow_decodes(now_s) if n else False
        if self.n and self.n_done == self.n:
            # static batching: preemption took every unfinished sequence; the batch ends
            self._release(self.done[:self.n].copy(), now_s)
        if not self.n:
            preempted = False  # an empty replica must admit, or its queue would stall
        admitted = 0
        if not preempted and (self.waiting or self.swapped):
            admitted = self.scheduler.admit(self, now_s)
        n = self.n
        if not n:
            self.busy = False
            return
        if (self.fast and not preempted and not admitted and not self.n_pre
                and self._swap_pending == 0.0 and self.n_done < n):
            if self._plan_run(now_s):
                return
        R = self.R
        if self.fast and self.n_pre and not self.n_done and self.scheduler.whole_prefill:
            self._step_tail(now_s)
            return
        dec = self._decode_mask()
        chunks = self.scheduler.prefill_chunks(self) if self.n_pre else None
        cached = R[CACHED, :n]
        if chunks is not None:
            pidx = np.flatnonzero(chunks)
            p_start, p_len = cached[pidx], chunks[pidx]
            n_pre = len(pidx)
            first = int(np.count_nonzero((chunks > 0) & (chunks == R[PRE, :n])))
        else:
            p_start = p_len = ()
            n_pre = first = 0
        if dec is None:
            d_ctx = cached + 1
            n_dec = n
            after = d_ctx
        else:
            d_ctx = cached[dec] + 1
            n_dec = len(d_ctx)
            after = cached + dec
        if chunks is not None:
            after = after + chunks
        budget = self.policy.budget_tokens
        if budget is not None:
            # eviction to a budget (StreamingLLM: sinks + recent window): attention reads
            # at most `budget` cached keys
            d_ctx = np.minimum(d_ctx, budget)
            p_start = np.minimum(p_start, budget)
        dt = float(self.model.step_time_s(d_ctx, p_start, p_len))
        self._schedule_step(now_s, dt, n_dec + n_pre, int(self.policy.positions(after).sum()),
                            n_dec + first, ("step", dec, chunks))

    def _schedule_step(self, now_s: float, dt: float, batch: int, held: int, tokens: int,
                       pending: tuple) -> None:
        """Log one iteration (plus any swap traffic it carries) and schedule its end."""
        if self._swap_pending:
            self.swap_bytes_total += self._swap_pending
            dt += self._swap_pending / self.swap_bytes_per_s
        pool = self.pool
        self.log_t.append(now_s)
        self.log_dt.append(dt)
        self.log_batch.append(batch)
        self.log_units.append(pool.units_in_use)
        self.log_pos.append(held)
        self.log_seqs.append(pool.n_seqs)
        self.log_tokens.append(tokens)
        self.iterations += 1
        self._last_dt = dt
        self._pending = pending
        self.engine.schedule(now_s + dt, PRIORITY_STEP, self._on_boundary)

    def _step_tail(self, now_s: float) -> None:
        """One iteration where the last n_pre sequences (just admitted) prefill their whole
        prompt and the others decode: the general step specialised with slices (whole-prompt
        schedulers only; ``fast=False`` keeps the general path as the reference)."""
        R, n, m = self.R, self.n, self.n_pre
        nd = n - m
        pos = self.policy._pos_table
        dt = None
        if m == 1 and self._step_sum is not None:  # one admission: integers only
            d_total = int(np.add.reduce(R[CACHED, :nd])) + nd  # decode contexts: cached + 1
            start, length = int(R[CACHED, nd]), int(R[PRE, nd])
            dt = self._step_sum(d_total, nd, start, length)
            if dt is not None:
                if self.policy.positions_are_tokens:
                    held = d_total + start + length
                else:
                    held = int(np.add.reduce(pos[R[CACHED, :nd] + 1])) + int(pos[start + length])
        if dt is None:
            d_ctx = R[CACHED, :nd] + 1
            p_len = R[PRE, nd:n]
            p_start = R[CACHED, nd:n]
            if m == 1 and self._tabulated:  # tables, not the general call (same bits)
                dt = self.model.step_ctx_s(d_ctx, int(p_start[0]), int(p_len[0]))
            else:
                dt = float(self.model.step_time_s(d_ctx, p_start, p_len))
            held = int(np.add.reduce(pos[d_ctx])) + int(np.add.reduce(pos[p_start + p_len]))
        self._schedule_step(now_s, dt, n, held, n, ("tail", nd, None))

    def _plan_run(self, now_s: float) -> bool:
        """Plan k >= 1 decode-only iterations at once; False when the slow path must act.

        Works whether or not this boundary's memory growth has happened: the needs are
        counted from the units the sequences own now, step 1 included, against the units
        free now, exactly as stepping would grow them one iteration at a time.

        Per-step figures (k of them, usually a handful) are Python lists: for short runs a
        few list operations cost less than numpy calls; batch-wide work stays in numpy, one
        (steps x batch) grid of contexts for the memory and position totals.
        """
        policy, pool = self.policy, self.pool
        R, n = self.R, self.n
        if self.n_done:  # static batching: finished sequences hold memory, do not decode
            idx = np.flatnonzero(~self.done[:n])
            c = R[CACHED, idx]
            k_cap = -int(R[NLEFT, idx].max())
            pos_others = int(policy.positions(R[CACHED, :n][self.done[:n]]).sum())
            units_now = int(R[UNITS, idx].sum())
        else:
            idx = None
            c = R[CACHED, :n]
            k_cap = -int(np.maximum.reduce(R[NLEFT, :n]))
            pos_others = 0
            units_now = pool.units_in_use  # = R[UNITS, :n].sum(): the batch owns them all
        k_left = k_cap  # a run of this many steps ends with a completion
        k_cap = min(k_cap, MAX_PLAN_STEPS)
        horizon_s = math.inf
        if (self.scheduler.admits_midway and not self.waiting and not self.swapped
                and n < self.scheduler.max_batch):
            horizon_s = self.sim.next_arrival_s()
        free_units = pool.free_units()
        if horizon_s == math.inf:
            est = k_cap
        else:
            dt0 = self._last_dt if self._last_dt > 0 else 1e-3
            est = max(1, min(k_cap, int((horizon_s - now_s) / dt0 * 1.25) + 1))
        n_dec = len(c)
        n_seqs = pool.n_seqs
        units_in_use = pool.units_in_use
        paged = policy.paged
        pos_table = policy._pos_table
        units_table = policy._units_table
        decode_steps_s, decode_sum = self.model.decode_steps_s, self._decode_sum
        same_pos = policy.positions_are_tokens
        c_total = int(np.add.reduce(c))  # step j of the run: contexts sum to c_total + j n_dec
        dts: list[float] = []
        ends: list[float] = []  # end time of each step
        units_log: list[int] = []
        pos_log: list[int] = []
        t = now_s
        k = 0
        last_units = None
        queued = bool(self.waiting or self.swapped)
        tabulated = self._tabulated
        decode_grid = self.model.decode_grid_s if tabulated else None
        grown = shrunk = 0
        prev_total = units_now
        while k < k_cap:
            kk = min(est, k_cap - k)
            first = c_total + (k + 1) * n_dec  # contexts' sum at the chunk's first step
            d = decode_sum(first, n_dec, kk) if decode_sum is not None else None
            ctx = grid = None
            if d is None:
                ctx = c + (k + 1)
                if tabulated:  # the memory figures' grid gives the exact sums too
                    grid = ctx[None, :] if kk == 1 else \
                        np.add.outer(np.arange(kk, dtype=_I64), ctx)
                    d = decode_grid(grid)
                else:
                    d = decode_steps_s(ctx, kk).tolist()
            e = list(accumulate(d, initial=t))[1:]  # t + dt, one step after the other
            e_cut = e[-1] >= horizon_s
            if e_cut:  # the next arrival lands in step kk_cut: stop there
                kk = bisect_left(e, horizon_s) + 1
                k_cap = k + kk
                del d[kk:], e[kk:]
            if (paged or not same_pos) and grid is None:
                if ctx is None:
                    ctx = c + (k + 1)
                # contexts of every step of the chunk, (kk x batch)
                grid = ctx[None, :] if kk == 1 else np.add.outer(np.arange(kk, dtype=_I64), ctx)
            elif grid is not None and e_cut:
                grid = grid[:kk]
            if paged:
                ugrid = units_table[grid]
                need = np.add.reduce(ugrid, axis=1).tolist()
                limit = units_now + free_units
                # memory runs short within this chunk: stop before (units only grow unless
                # a window or chunk frees blocks, then any step may be the largest)
                cut = None
                if (need[-1] if policy.monotone_units else max(need)) > limit:
                    cut = next(i for i, u in enumerate(need) if u > limit)
                if queued and not policy.monotone_units:
                    # a window or chunk freeing blocks may let the queue's head in at the
                    # next boundary: stop before the first step that frees units
                    prev = units_log[-1] - units_in_use + units_now if units_log else None
                    for i, u in enumerate(need):
                        if prev is not None and u < prev:
                            cut = i if cut is None else min(cut, i)
                            break
                        prev = u
                if cut is not None:
                    kk = cut
                    if kk == 0:
                        break
                    k_cap = k + kk
                    del need[kk:], d[kk:], e[kk:]
                    grid = grid[:kk]
                last_units = ugrid[kk - 1]
                if not policy.monotone_units:  # each step's net change, as stepping counts
                    for u in need:
                        if u > prev_total:
                            grown += u - prev_total
                        else:
                            shrunk += prev_total - u
                        prev_total = u
                # units in use after each step's growth
                units_log += [u - units_now + units_in_use for u in need]
            else:
                units_log += [units_in_use] * kk
            if same_pos:
                pos_log += range(first + pos_others, first + pos_others + kk * n_dec, n_dec) \
                    if n_dec else [pos_others] * kk
            else:
                p = np.add.reduce(pos_table[grid], axis=1).tolist()
                pos_log += [x + pos_others for x in p] if pos_others else p
            dts += d
            ends += e
            t = e[-1]
            k += kk
            est *= 2
        if k == 0:
            return False
        if paged:
            # own the last planned step's blocks now: nothing else allocates on this replica
            # before the plan ends, and the plan stops before memory would run short
            if policy.monotone_units:
                pool.grow(units_log[-1] - units_in_use)
            else:  # count every sequence's steps up and down, as stepping would
                pool.resize(grown, shrunk)
            if idx is None:
                R[UNITS, :n] = last_units
            else:
                R[UNITS, idx] = last_units
        log_t = self.log_t
        log_t.append(now_s)
        log_t.extend(ends[:-1])
        self.log_dt.extend(dts)
        same = array("q", (n_dec,)) * k
        self.log_batch.extend(same)
        self.log_tokens.extend(same)
        self.log_units.extend(units_log)
        self.log_pos.extend(pos_log)
        self.log_seqs.extend(array("q", (n_seqs,)) * k)
        self.iterations += k
        self._last_dt = dts[-1]
        self._pending = ("run", idx, k)
        self._run_finishes = k == k_left
        self.engine.schedule(ends[-1], PRIORITY_STEP, self._on_boundary)
        return True


def iteration_log(rep: Replica) -> dict[str, np.ndarray]:
    """A replica's per-iteration log as arrays, KV figures in bytes (reserved = units x unit
    bytes + sequences x fixed state; useful = positions x bytes per token + fixed state)."""
    p = rep.policy
    def f(a):
        return np.frombuffer(a, dtype=np.float64).copy()

    def i(a):
        return np.frombuffer(a, dtype=np.int64).copy()

    fixed = i(rep.log_seqs) * p.fixed_bytes
    return {"t": f(rep.log_t), "dt": f(rep.log_dt), "batch": i(rep.log_batch),
            "reserved": i(rep.log_units) * p.unit_bytes + fixed,
            "useful": i(rep.log_pos) * p.bytes_per_token + fixed,
            "tokens": i(rep.log_tokens)}
