"""One serving replica: its queue, its running batch, its KV pool and its iteration loop.

The running batch is a set of parallel numpy arrays in admission order (the last admitted is
the first preempted, as in vLLM). Each iteration boundary (an engine event) commits the
iteration that just ended, retires finished requests, lets the scheduler admit, grows KV
memory for the decodes (preempting when it runs out) and starts the next iteration.

Fast path: while the batch only decodes and nothing can join it, membership changes only at
the next completion, the next memory shortfall or the next arrival. The replica then plans
all the iterations up to that point at once with the cost model's vectorised
``decode_steps_s`` and one (steps x batch) grid for KV blocks, and schedules a single event.
``fast=False`` steps one iteration at a time through ``step_time_s``; both give the same
numbers (tests/test_sim_replica.py checks it).
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np

from simkit.sim.engine import PRIORITY_STEP
from simkit.sim.kvcache import KVPolicy, KVPool
from simkit.sim.request import COMPLETED, QUEUED, RUNNING, SWAPPED

_I64 = np.int64
_EMPTY_I = np.empty(0, dtype=_I64)
#: longest decode run planned in one go (bounds the planning grid; a longer run is simply
#: continued by the next plan, with identical results)
MAX_PLAN_STEPS = 2048


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
        # running batch, admission order
        self.r_id = _EMPTY_I
        self.r_cached = _EMPTY_I  # tokens whose K/V are in the cache
        self.r_units = _EMPTY_I  # KV units owned
        self.r_left = _EMPTY_I  # output tokens still to produce
        self.r_pre = _EMPTY_I  # prompt (or recompute) tokens still to prefill
        self.r_done = np.empty(0, dtype=bool)  # finished, held until the batch ends (static)
        self.busy = False
        self._pending = None
        self._last_dt = 0.0
        self.completed = 0
        self.preemptions = 0
        self.swap_bytes_total = 0.0
        self.iterations = 0
        # per-iteration log: start, duration, sequences computed, KV reserved/useful, tokens
        self.log_t: list[float] = []
        self.log_dt: list[float] = []
        self.log_batch: list[int] = []
        self.log_reserved: list[float] = []
        self.log_useful: list[float] = []
        self.log_tokens: list[int] = []

    # ---- load, as the router sees it ----------------------------------------------------
    @property
    def load(self) -> int:
        return len(self.r_id) + len(self.waiting) + len(self.swapped)

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
        self.r_id = np.append(self.r_id, rid)
        self.r_cached = np.append(self.r_cached, cached)
        self.r_units = np.append(self.r_units, units)
        self.r_left = np.append(self.r_left, left)
        self.r_pre = np.append(self.r_pre, pre)
        self.r_done = np.append(self.r_done, False)

    def admit_fcfs(self, now_s: float, max_batch: int, max_tokens: int | None,
                   token_budget: int | None = None) -> int:
        """Admit swapped, then waiting requests in order while they fit; stop at the first
        that does not (head-of-line, as vLLM's FCFS). Returns the number admitted."""
        tab, pool, policy = self.table, self.pool, self.policy
        n = 0
        tokens = 0
        while self.swapped and len(self.r_id) < max_batch:
            rid, cached, _units = self.swapped[0]
            need = policy.units_one(cached + 1)
            if token_budget is not None and token_budget < 1:
                break
            if need > pool.free_units(1):
                break
            self.swapped.popleft()
            pool.admit(need)
            self._swap_pending += _units * policy.unit_bytes + policy.fixed_bytes
            left = int(tab.output_tokens[rid] - tab.generated[rid])
            self._append(rid, cached, need, left, 0)
            tab.status[rid] = RUNNING
            self.sim.queue_log(now_s, -1)
            if token_budget is not None:
                token_budget -= 1
            n += 1
        if self.swapped:
            return n  # swapped requests go first; new ones wait behind them
        while self.waiting and len(self.r_id) < max_batch:
            rid = self.waiting[0]
            g = int(tab.generated[rid])
            pre = int(tab.prompt_tokens[rid]) + g  # recompute: prompt + tokens emitted
            if token_budget is not None and token_budget < 1:
                break
            if max_tokens is not None and n and tokens + pre > max_tokens:
                break
            need = policy.units_one(pre)
            if need > pool.free_units(1):
                break
            self.waiting.popleft()
            pool.admit(need)
            self._append(rid, 0, need, int(tab.output_tokens[rid]) - g, pre)
            if math.isnan(tab.start_s[rid]):
                tab.start_s[rid] = now_s
            tab.status[rid] = RUNNING
            self.sim.queue_log(now_s, -1)
            tokens += pre
            if token_budget is not None:
                token_budget -= pre
            n += 1
        return n

    # ---- preemption ---------------------------------------------------------------------
    def _remove(self, keep: np.ndarray) -> None:
        self.r_id = self.r_id[keep]
        self.r_cached = self.r_cached[keep]
        self.r_units = self.r_units[keep]
        self.r_left = self.r_left[keep]
        self.r_pre = self.r_pre[keep]
        self.r_done = self.r_done[keep]

    def _preempt(self, i: int, now_s: float) -> None:
        tab = self.table
        rid = int(self.r_id[i])
        units = int(self.r_units[i])
        self.pool.release(units)
        tab.preemptions[rid] += 1
        self.preemptions += 1
        tab.generated[rid] = tab.output_tokens[rid] - self.r_left[i]
        if self.swap and self.r_pre[i] == 0:
            # swap out the cache over the host link; resumed later without recompute
            self._swap_pending += units * self.policy.unit_bytes + self.policy.fixed_bytes
            self.swapped.appendleft((rid, int(self.r_cached[i]), units))
            tab.status[rid] = SWAPPED
        else:
            # recompute: drop the cache; prompt + emitted tokens are prefilled again
            self.waiting.appendleft(rid)
            tab.status[rid] = QUEUED
        self.sim.queue_log(now_s, 1)
        keep = np.ones(len(self.r_id), dtype=bool)
        keep[i] = False
        self._remove(keep)

    def _grow_decodes(self, now_s: float) -> bool:
        """Give every decoding sequence room for its next token, preempting the most recently
        admitted ones while memory is short. Returns whether anyone was preempted."""
        if not self.policy.paged or not len(self.r_id):
            return False
        preempted = False
        while True:
            dec = (self.r_pre == 0) & ~self.r_done
            need = np.where(dec, self.policy.units(self.r_cached + 1) - self.r_units, 0)
            total = int(need.sum())
            if total <= self.pool.free_units():
                break
            victims = np.flatnonzero(~self.r_done)
            self._preempt(int(victims[-1]), now_s)
            preempted = True
        if total:
            self.r_units = self.r_units + need
            self.pool.grow(total)
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
        tab = self.table
        if kind == "run":  # k decode steps of the sequences at indices a
            idx, k = a, b
            self.r_cached[idx] += k
            self.r_left[idx] -= k
        else:  # one mixed iteration: decode mask a, prefill chunks b
            dec, chunks = a, b
            if dec.any():
                self.r_cached[dec] += 1
                self.r_left[dec] -= 1
            if chunks.any():
                self.r_cached += chunks
                self.r_pre -= chunks
                first = (chunks > 0) & (self.r_pre == 0)
                if first.any():
                    self.r_left[first] -= 1
                    ids = self.r_id[first]
                    ft = tab.first_token_s[ids]
                    tab.first_token_s[ids] = np.where(np.isnan(ft), now_s, ft)
        fin = (self.r_left == 0) & ~self.r_done
        if not fin.any():
            return
        if self.scheduler.holds_until_batch_end:
            self.r_done = self.r_done | fin
            if not self.r_done.all():
                return
            fin = self.r_done
        ids = self.r_id[fin]
        tab.finish_s[ids] = now_s
        tab.status[ids] = COMPLETED
        tab.generated[ids] = tab.output_tokens[ids]
        for u in self.r_units[fin].tolist():
            self.pool.release(u)
        self.completed += len(ids)
        self.sim.on_completed(len(ids))
        self._remove(~fin)

    def _begin(self, now_s: float) -> None:
        self._swap_pending = 0.0
        preempted = self._grow_decodes(now_s)
        admitted = 0
        if not preempted and (self.waiting or self.swapped):
            admitted = self.scheduler.admit(self, now_s)
        if not len(self.r_id):
            self.busy = False
            return
        dec = (self.r_pre == 0) & ~self.r_done
        if (self.fast and not preempted and not admitted and self._swap_pending == 0.0
                and not self.r_pre.any() and dec.any()):
            if self._plan_run(now_s, np.flatnonzero(dec)):
                return
        chunks = self.scheduler.prefill_chunks(self)
        pidx = np.flatnonzero(chunks)
        n_dec = int(np.count_nonzero(dec))
        if not n_dec and not len(pidx):
            # only finished requests holding memory: cannot happen (released at batch end)
            raise AssertionError("replica has a batch with nothing to compute")
        dt = float(self.model.step_time_s(self.r_cached[dec] + 1, self.r_cached[pidx],
                                          chunks[pidx]))
        if self._swap_pending:
            self.swap_bytes_total += self._swap_pending
            dt += self._swap_pending / self.swap_bytes_per_s
        after = self.r_cached + dec + chunks
        first = int(np.count_nonzero((chunks > 0) & (chunks == self.r_pre)))
        reserved = self.pool.reserved_bytes
        self.log_t.append(now_s)
        self.log_dt.append(dt)
        self.log_batch.append(n_dec + len(pidx))
        self.log_reserved.append(reserved)
        self.log_useful.append(self.policy.useful_bytes(after))
        self.log_tokens.append(n_dec + first)
        if reserved > self.pool.peak_bytes:
            self.pool.peak_bytes = reserved
        self.iterations += 1
        self._last_dt = dt
        self._pending = ("step", dec, chunks)
        self.engine.schedule(now_s + dt, PRIORITY_STEP, self._on_boundary)

    def _plan_run(self, now_s: float, idx: np.ndarray) -> bool:
        """Plan k >= 1 decode-only iterations at once; False when the slow path must act."""
        policy, pool = self.policy, self.pool
        c = self.r_cached[idx]
        k_cap = min(int(self.r_left[idx].min()), MAX_PLAN_STEPS)
        horizon_s = math.inf
        if (self.scheduler.admits_midway and not self.waiting and not self.swapped
                and len(self.r_id) < self.scheduler.max_batch):
            horizon_s = self.sim.next_arrival_s()
        free_units = pool.free_units()
        units_now = int(self.r_units[idx].sum())
        # positions held by sequences that do not decode (static: finished, held)
        others = ~np.isin(np.arange(len(self.r_id)), idx) if len(idx) < len(self.r_id) else None
        pos_others = int(policy.positions(self.r_cached[others]).sum()) if others is not None else 0
        n_seqs = pool.n_seqs
        if horizon_s == math.inf:
            est = k_cap
        else:
            dt0 = self._last_dt if self._last_dt > 0 else 1e-3
            est = max(2, min(k_cap, int((horizon_s - now_s) / dt0 * 1.25) + 2))
        ends_parts, dts_parts, res_parts, use_parts = [], [], [], []
        t = now_s
        done_steps = 0
        stop = False
        while not stop and done_steps < k_cap:
            kk = min(est, k_cap - done_steps)
            j = np.arange(done_steps + 1, done_steps + kk + 1, dtype=_I64)
            grid = c[None, :] + j[:, None]  # context after each step's token, per sequence
            pos = policy.positions(grid)
            if policy.paged:
                if policy.block_size > 0:
                    b = policy.block_size
                    need = ((pos + (b - 1)) // b).sum(axis=1) - units_now
                else:
                    need = np.zeros(kk, dtype=_I64)
                over = np.flatnonzero(need > free_units)
                if len(over):
                    kk = int(over[0])
                    stop = True
                    if kk == 0:
                        break
                    need = need[:kk]
                    pos = pos[:kk]
                    grid = grid[:kk]
            else:
                need = np.zeros(kk, dtype=_I64)
            dts = np.asarray(self.model.decode_steps_s(c + done_steps + 1, kk), dtype=np.float64)
            ends = np.cumsum(np.concatenate(([t], dts)))[1:]
            if horizon_s != math.inf:
                hit = np.flatnonzero(ends >= horizon_s)
                if len(hit):
                    kk = int(hit[0]) + 1
                    stop = True
                    dts, ends, need, pos = dts[:kk], ends[:kk], need[:kk], pos[:kk]
            reserved = (units_now + need) * policy.unit_bytes + n_seqs * policy.fixed_bytes
            useful = (pos.sum(axis=1) + pos_others) * policy.bytes_per_token \
                + n_seqs * policy.fixed_bytes
            dts_parts.append(dts)
            ends_parts.append(ends)
            res_parts.append(reserved)
            use_parts.append(useful)
            t = float(ends[-1])
            done_steps += kk
            est *= 2
        if done_steps == 0:
            return False
        dts = np.concatenate(dts_parts)
        ends = np.concatenate(ends_parts)
        reserved = np.concatenate(res_parts)
        starts = np.concatenate(([now_s], ends[:-1]))
        k = done_steps
        if policy.paged:
            # grow to the last step's blocks now; equivalent, since nothing else can allocate
            # before the plan ends (the plan stops where memory would run short)
            b = policy.block_size
            new_units = (policy.positions(c + k) + (b - 1)) // b
            pool.grow(int(new_units.sum()) - units_now)
            self.r_units[idx] = new_units
        n = len(idx)
        self.log_t.extend(starts.tolist())
        self.log_dt.extend(dts.tolist())
        self.log_batch.extend([n] * k)
        self.log_reserved.extend(reserved.tolist())
        self.log_useful.extend(np.concatenate(use_parts).tolist())
        self.log_tokens.extend([n] * k)
        peak = float(reserved.max())
        if peak > pool.peak_bytes:
            pool.peak_bytes = peak
        self.iterations += k
        self._last_dt = float(dts[-1])
        self._pending = ("run", idx, k)
        self.engine.schedule(float(ends[-1]), PRIORITY_STEP, self._on_boundary)
        return True
