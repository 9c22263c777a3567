"""One serving replica: its queue, its running batch, its KV pool and its iteration loop.

The running batch is one (5 x capacity) int64 array, columns in admission order (the last
admitted is the first preempted, as in vLLM): request id, cached tokens, KV units owned,
output tokens still to produce, prompt tokens still to prefill. Each iteration boundary (an
engine event) commits the iteration that just ended, retires finished requests, grows KV
memory for the decodes (preempting when it runs out), lets the scheduler admit, and starts
the next iteration.

Fast path: while the batch only decodes and nothing can join it, membership changes only at
the next completion, the next memory shortfall or the next arrival. The replica then plans
all the iterations up to that point at once, with the cost model's vectorised
``decode_steps_s`` and one (steps x batch) grid of KV positions, and schedules a single
event. ``fast=False`` steps one iteration at a time through ``step_time_s``; both give the
same numbers, bit for bit (tests/test_sim_replica.py checks it).
"""

from __future__ import annotations

import math
from array import array
from collections import deque

import numpy as np

from simkit.sim.engine import PRIORITY_STEP
from simkit.sim.kvcache import KVPolicy, KVPool
from simkit.sim.request import COMPLETED, QUEUED, RUNNING, SWAPPED

_I64 = np.int64
ID, CACHED, UNITS, LEFT, PRE = range(5)
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
        self.R[:, n] = (rid, cached, units, left, pre)
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
        rid, cached, units, left, pre = (int(v) for v in self.R[:, i])
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
            need = units(self.R[CACHED, :n] + 1) - self.R[UNITS, :n]
            if dec is not None:
                need *= dec
            total = int(need.sum())
            if total <= self.pool.free_units():
                if total:
                    self.R[UNITS, :n] += need
                    self.pool.grow(total)
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
                R[CACHED, :n] += b
                R[LEFT, :n] -= b
            else:
                R[CACHED, a] += b
                R[LEFT, a] -= b
            if not self._run_finishes:
                return
        elif kind == "tail":  # decodes [:a], whole-prompt prefills [a:n] (see _step_tail)
            R[CACHED, :a] += 1
            R[CACHED, a:n] += R[PRE, a:n]
            R[PRE, a:n] = 0
            R[LEFT, :n] -= 1
            ids = R[ID, a:n]
            tab = self.table
            ft = tab.first_token_s[ids]
            tab.first_token_s[ids] = np.where(np.isnan(ft), now_s, ft)
            self.n_pre = 0
        else:  # one mixed iteration: decode mask a (None = all), prefill chunks b
            if a is None:
                R[CACHED, :n] += 1
                R[LEFT, :n] -= 1
            elif a.any():
                R[CACHED, :n] += a
                R[LEFT, :n] -= a
            if b is not None:
                R[CACHED, :n] += b
                R[PRE, :n] -= b
                first = (b > 0) & (R[PRE, :n] == 0)
                if first.any():
                    R[LEFT, :n] -= first
                    ids = R[ID, :n][first]
                    tab = self.table
                    ft = tab.first_token_s[ids]
                    tab.first_token_s[ids] = np.where(np.isnan(ft), now_s, ft)
                    self.n_pre -= int(np.count_nonzero(first))
        left = R[LEFT, :n]
        fin = left == 0
        if self.n_done:
            fin &= ~self.done[:n]
        if not fin.any():
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
        ids = R[ID, :n][fin]
        tab.finish_s[ids] = now_s
        tab.status[ids] = COMPLETED
        freed = R[UNITS, :n][fin]
        pool = self.pool
        pool.n_seqs -= len(ids)
        u = int(freed.sum())
        pool.units_in_use -= u
        pool.units_freed += u
        self.completed += len(ids)
        self.sim.on_completed(len(ids))
        self._keep(~fin)

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
        if self._swap_pending:
            self.swap_bytes_total += self._swap_pending
            dt += self._swap_pending / self.swap_bytes_per_s
        pool = self.pool
        self.log_t.append(now_s)
        self.log_dt.append(dt)
        self.log_batch.append(n_dec + n_pre)
        self.log_units.append(pool.units_in_use)
        self.log_pos.append(int(self.policy.positions(after).sum()))
        self.log_seqs.append(pool.n_seqs)
        self.log_tokens.append(n_dec + first)
        self.iterations += 1
        self._last_dt = dt
        self._pending = ("step", dec, chunks)
        self.engine.schedule(now_s + dt, PRIORITY_STEP, self._on_boundary)

    def _step_tail(self, now_s: float) -> None:
        """One iteration where the last n_pre sequences (just admitted) prefill their whole
        prompt and the others decode: the general step specialised with slices (whole-prompt
        schedulers only; ``fast=False`` keeps the general path as the reference)."""
        R, n, m = self.R, self.n, self.n_pre
        nd = n - m
        d_ctx = R[CACHED, :nd] + 1
        p_len = R[PRE, nd:n]
        p_start = R[CACHED, nd:n]
        dt = float(self.model.step_time_s(d_ctx, p_start, p_len))
        if self._swap_pending:
            self.swap_bytes_total += self._swap_pending
            dt += self._swap_pending / self.swap_bytes_per_s
        pos = self.policy._pos_table
        pool = self.pool
        self.log_t.append(now_s)
        self.log_dt.append(dt)
        self.log_batch.append(n)
        self.log_units.append(pool.units_in_use)
        self.log_pos.append(int(pos[d_ctx].sum()) + int(pos[p_start + p_len].sum()))
        self.log_seqs.append(pool.n_seqs)
        self.log_tokens.append(n)
        self.iterations += 1
        self._last_dt = dt
        self._pending = ("tail", nd, None)
        self.engine.schedule(now_s + dt, PRIORITY_STEP, self._on_boundary)

    def _plan_run(self, now_s: float) -> bool:
        """Plan k >= 1 decode-only iterations at once; False when the slow path must act.

        Works whether or not this boundary's memory growth has happened: the needs are
        counted from the units the sequences own now, step 1 included, against the units
        free now, exactly as stepping would grow them one iteration at a time.
        """
        policy, pool = self.policy, self.pool
        R, n = self.R, self.n
        if self.n_done:  # static batching: finished sequences hold memory, do not decode
            idx = np.flatnonzero(~self.done[:n])
            c = R[CACHED, idx]
            k_cap = int(R[LEFT, idx].min())
            pos_others = int(policy.positions(R[CACHED, :n][self.done[:n]]).sum())
            units_now = int(R[UNITS, idx].sum())
        else:
            idx = None
            c = R[CACHED, :n]
            k_cap = int(R[LEFT, :n].min())
            pos_others = 0
            units_now = int(R[UNITS, :n].sum())
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
        paged = policy.paged
        pos_table = policy._pos_table
        units_table = policy._units_table
        parts = []
        t = now_s
        k = 0
        last_units = None
        while k < k_cap:
            kk = min(est, k_cap - k)
            dts = self.model.decode_steps_s(c + (k + 1), kk)
            ends = np.cumsum(np.concatenate(((t,), dts)))[1:]
            if ends[-1] >= horizon_s:  # the next arrival lands in step kk_cut: stop there
                kk = int(np.argmax(ends >= horizon_s)) + 1
                k_cap = k + kk
                dts, ends = dts[:kk], ends[:kk]
            grid = c + np.arange(k + 1, k + kk + 1, dtype=_I64)[:, None]  # ctx of each step
            if paged:
                ugrid = units_table[grid]
                need = ugrid.sum(axis=1) - units_now
                if need[-1] > free_units:  # memory runs short within this chunk
                    kk = int(np.argmax(need > free_units))
                    if kk == 0:
                        break
                    k_cap = k + kk
                    need, dts, ends, grid = need[:kk], dts[:kk], ends[:kk], grid[:kk]
                last_units = ugrid[kk - 1]
                units_log = need + pool.units_in_use
            else:
                units_log = np.full(kk, pool.units_in_use)
            pos_log = pos_table[grid].sum(axis=1)
            if pos_others:
                pos_log += pos_others
            parts.append((dts, ends, units_log, pos_log))
            t = float(ends[-1])
            k += kk
            est *= 2
        if k == 0:
            return False
        if len(parts) == 1:
            dts, ends, units_log, pos_log = parts[0]
        else:
            dts, ends, units_log, pos_log = (np.concatenate(x) for x in zip(*parts))
        if paged:
            # own the last planned step's blocks now: nothing else allocates on this replica
            # before the plan ends, and the plan stops before memory would run short
            pool.grow(int(need[-1]))
            if idx is None:
                R[UNITS, :n] = last_units
            else:
                R[UNITS, idx] = last_units
        log_t = self.log_t
        log_t.append(now_s)
        if k > 1:
            log_t.frombytes(ends[:-1].tobytes())
        self.log_dt.frombytes(np.ascontiguousarray(dts, dtype=np.float64).tobytes())
        same = np.full(k, n_dec, dtype=_I64).tobytes()
        self.log_batch.frombytes(same)
        self.log_tokens.frombytes(same)
        self.log_units.frombytes(units_log.astype(_I64, copy=False).tobytes())
        self.log_pos.frombytes(pos_log.astype(_I64, copy=False).tobytes())
        self.log_seqs.frombytes(np.full(k, n_seqs, dtype=_I64).tobytes())
        self.iterations += k
        end_s = float(ends[-1])
        self._last_dt = float(dts[-1])
        self._pending = ("run", idx, k)
        self._run_finishes = k == k_left
        self.engine.schedule(end_s, PRIORITY_STEP, self._on_boundary)
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
