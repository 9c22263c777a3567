"""One serving replica: its queue, its running batch, its KV memory and its iteration loop.

The replica executes; its scheduler decides (`simkit.sim.scheduler`): at each iteration
boundary (an engine event) the replica commits the iteration that just ended, retires
finished requests, and asks the scheduler to form the next batch, then times it, logs it
and schedules its end. Iterations are named types: `DecodeRun` (k decode-only iterations
planned at once, `simkit.sim.decoderun`), `TailStep` (the last sequences prefill whole
prompts, the others decode or, for prefill_first, sit out), `MixedStep` (any decode
mask and prefill chunks) and `SpecStep` (a speculative iteration: draft and verification,
`simkit.sim.speculative`). In a disaggregated deployment a replica hands prefilled requests
on or takes them in (`simkit.sim.handoff`).

The running batch is one int64 array, a column per sequence (`simkit.sim.rows`); beside it,
per column, done (finished but held: static batching), and the times of the tokens that did
not come at the last boundary (time between tokens, `simkit.sim.tbt`). The mechanisms that
change the batch's membership (admission, growth, preemption) are `simkit.sim.admission`.

Memory: `KVPool` counts units; with prefix caching (`simkit.sim.prefix`) a sequence starts
from its cache hit (cached tokens = hit, prefilling only the rest), shares the blocks it hit,
registers the blocks it fills and leaves them cached when it goes.

Fast path: while the batch only decodes and nothing can join it, membership changes only at
the next completion, the next memory shortfall or the next arrival. The replica then plans
all the iterations up to that point at once and schedules a single event; an arrival that
was not known when the run was planned (a session's next turn) cuts it at the first
iteration boundary after it, where stepping would have seen it. ``fast=False`` steps one
iteration at a time through ``step_time_s``; both give the same numbers, bit for bit
(tests/test_sim_replica.py checks it). Replicas that speculate always step one iteration at
a time: their sequences advance by sampled numbers of tokens, which the planned runs (one
token per step) do not model.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections import deque
from typing import NamedTuple

import numpy as np

from simkit.errors import SimkitError
from simkit.sim.admission import Admission
from simkit.sim.handoff import Handoff
from simkit.sim.decoderun import DecodeRun, commit_run, plan_run
from simkit.sim.engine import PRIORITY_STEP
from simkit.sim.kvcache import KVPolicy, KVPool
from simkit.sim.prefix import make_cache
from simkit.sim.request import COMPLETED, QUEUED
from simkit.sim.rows import ASYNC, CACHED, ID, NLEFT, PRE, ROWS, STEP, UNITS
from simkit.sim.speculative import SpecStep, spec_step
from simkit.sim.tbt import TokenTimes

_I64 = np.int64


class TailStep(NamedTuple):
    """Sequences [first:n] prefill their whole prompt; [:first] decode (or, when `decode`
    is False, sit this iteration out: prefill_first)."""

    first: int
    decode: bool


class MixedStep(NamedTuple):
    """One general iteration: decode mask (None: all) and prefill chunks (None: none)."""

    decode: np.ndarray | None
    chunks: np.ndarray | None


class Replica(Admission, TokenTimes, Handoff):
    """A model replica (gpus_per_replica GPUs) serving its own queue."""

    def __init__(self, index: int, sim, policy: KVPolicy, scheduler, step_model, *,
                 swap: bool, swap_bytes_per_s: float, fast: bool = True,
                 prefix_caching: bool = False, spec=None) -> None:
        self.index = index
        self.sim = sim
        self.table = sim.table
        self.engine = sim.engine
        self.policy = policy
        self.pool = KVPool(policy)
        self.cache = make_cache(policy, self.pool, self.table, prefix_caching)
        self.scheduler = scheduler
        #: units an admission must leave free while others run (`Admission._reserve_units`)
        self._reserve = int(scheduler.admission_reserve * max(policy.max_units(0), 0))
        self.model = step_model
        # integer-sum shortcuts of the cost model, when it has them (StepCostModel does):
        # the same bits as decode_steps_s / step_time_s without building context arrays
        self._decode_sum = getattr(step_model, "decode_steps_sum_s", None)
        self._step_sum = getattr(step_model, "step_sum_s", None)
        self._step_prefills = getattr(step_model, "step_prefills_sum_s", None)
        #: every context the run can reach is tabulated with exact decode columns (the
        #: simulator asked the model to `ensure_tables`): grid and lookup forms apply
        self._tabulated = bool(getattr(step_model, "_exact_tables", False)) and \
            getattr(step_model, "_decode_affine", None) is None
        #: a prompt's blocks at its end are the most it holds while prefilled: units only
        #: grow, or the whole prompt is prefilled in one iteration
        self._end_units = policy.monotone_units or scheduler.whole_prefill
        self.swap = swap
        self.swap_bytes_per_s = float(swap_bytes_per_s)
        # eviction to a budget steps one iteration at a time; so do sliding windows with a
        # prefix cache (their blocks leave the cache one by one as windows move)
        self.fast = fast and policy.budget_tokens is None and (
            self.cache is None or policy.monotone_units)
        #: speculative decoding (`simkit.sim.speculative`): sampled advances, one
        #: iteration at a time (the planned runs assume one token per step)
        self.spec = spec
        if spec is not None:
            self.fast = False
        #: multi-step scheduling: decode-only batches run rounds of this many iterations,
        #: always planned whole (`plan_run`), also when stepping
        self.rounds = scheduler.rounds
        if self.rounds > 1 and self.cache is not None and not policy.monotone_units:
            raise SimkitError(f"serving.scheduler_steps = {self.rounds}: not modelled with "
                              "prefix caching on sliding-window or chunked layers (their "
                              "blocks leave the cache one iteration at a time); set "
                              "serving.prefix_caching = false")
        self.plans = self.fast or self.rounds > 1
        self.spec_slots = self.spec_tokens = 0  # sequence-iterations verified, tokens
        self.spec_full_slots = self.spec_full_tokens = 0  # those that drafted all k
        self.spec_draft_s = 0.0  # time the draft took (in the logged iteration times)
        self._init_handoff()
        #: positions one unit of shared blocks stands for (useful bytes count a block once)
        self._pos_per_unit = policy.block_size * (policy._weights[0] // policy._block_weights[0]
                                                  if policy._block_weights else 1)
        self.waiting: deque[int] = deque()
        self.swapped: deque[tuple[int, int, int]] = deque()  # (id, cached, units)
        cap = max(1, min(int(scheduler.max_batch), 1024))
        self.R = np.zeros((ROWS, cap), dtype=_I64)
        self.done = np.zeros(cap, dtype=bool)  # finished, held until the batch ends (static)
        # when each sequence last emitted a token (time between tokens): most at `_t_sync`,
        # the last boundary (one number to advance per iteration); those with row ASYNC set
        # (resumed, recomputed, stalled by prefill_first) in `_last` by request id. A prompt
        # not yet prefilled (PRE > 0, ASYNC clear) has no token yet: callers count no gap
        # for a first token
        self._t_sync = 0.0
        self._last: dict[int, float] = {}
        #: answers a streamed multi-step round completed before its end (request id -> the
        #: time of their last token; they leave the batch when the round ends)
        self._finish_at: dict[int, float] = {}
        self._n_async = 0  # sequences in the batch with ASYNC set
        # (the hot path's one weighted gap: two C appends, no calls)
        self._gap_append = sim.gaps.vals.append
        self._gap_weight = sim.gaps.wts.append
        self.n = 0  # sequences in the batch
        self.n_pre = 0  # of which still prefilling
        self.n_done = 0  # of which finished but held (static batching)
        self.busy = False
        self._pending = None
        self._token = 0  # the boundary event that is current (a cut run leaves a stale one)
        self._swap_pending = 0.0
        self._last_dt = 0.0
        self._memo: tuple = (-1, -1, -1, None)  # (rid, tokens, cache version, Hit)
        self.completed = 0
        self.preemptions = 0
        self.recomputed_tokens = 0  # prefilled again after a preemption by recompute
        self.swap_bytes_total = 0.0
        self.iterations = 0
        # per-iteration log: start, duration, sequences computed, KV units held, token
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
        # every admission's prefill: from which cached token, how many tokens (FLOPs later)
        self.adm_start = array("q")
        self.adm_len = array("q")

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
        """What the router compares: requests running, queued or swapped out here (and,
        on a decode replica, waiting for or receiving their KV)."""
        return self.n + len(self.waiting) + len(self.swapped) + len(self.incoming) \
            + len(self.xfer)

    def n_decoding(self) -> int:
        """Running sequences that are neither prefilling nor finished."""
        if not self.n_pre and not self.n_done:
            return self.n
        n = self.n
        return int(np.count_nonzero((self.R[PRE, :n] == 0) & ~self.done[:n]))

    @property
    def shared_positions(self) -> int:
        """Token positions the running sequences share (counted once in useful bytes)."""
        s = self.pool.shared_units
        return s * self._pos_per_unit if s else 0

    def enqueue(self, rid: int, now_s: float) -> None:
        """A routed arrival joins the queue; an idle replica wakes up after this instant's
        other arrivals (PRIORITY_STEP sorts after PRIORITY_ARRIVAL); a planned decode run
        that could have admitted it ends at the first boundary after it."""
        self.waiting.append(rid)
        self.table.status[rid] = QUEUED
        self.table.replica[rid] = self.index
        self.sim.queue_log(now_s, 1)
        if not self.busy:
            self.busy = True
            self._token += 1
            self.engine.schedule(now_s, PRIORITY_STEP, self._on_boundary, self._token)
        elif type(self._pending) is DecodeRun and self._pending.cuttable:
            self._cut_run(now_s)

    def _cut_run(self, now_s: float) -> None:
        run = self._pending
        k = bisect_left(run.ends, now_s) + 1
        if k >= run.steps:
            return
        drop = run.steps - k
        for log in (self.log_t, self.log_dt, self.log_batch, self.log_units, self.log_pos,
                    self.log_seqs, self.log_tokens):
            del log[len(log) - drop:]
        self.iterations -= drop
        run.steps = k
        run.last_units = run.units_end = None
        del run.ends[k:]
        run.finishes = False
        self._last_dt = self.log_dt[-1]
        self._token += 1
        self.engine.schedule(run.ends[-1], PRIORITY_STEP, self._on_boundary, self._token)

    # ---- batch bookkeeping --------------------------------------------------------------
    def _append(self, rid: int, cached: int, units: int, left: int, pre: int,
                last: float) -> None:
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
        if last == last:  # resumed or recomputed: its next token has a gap to count
            R[ASYNC, n] = 1
            self._last[rid] = last
            self._n_async += 1
        else:
            R[ASYNC, n] = 0
        self.n = n + 1
        if pre:
            self.n_pre += 1

    def _keep(self, keep: np.ndarray) -> None:
        """Keep the sequences where `keep` (length n) is true, in order."""
        n = self.n
        m = int(np.count_nonzero(keep))
        if self._n_async:
            gone = ~keep & (self.R[ASYNC, :n] == 1)
            last = self._last
            for rid in self.R[ID, :n][gone].tolist():
                del last[rid]
            self._n_async -= int(np.count_nonzero(gone))
        self.R[:, :m] = self.R[:, :n][:, keep]
        self.done[:m] = self.done[:n][keep]
        self.n = m
        self.n_pre = int(np.count_nonzero(self.R[PRE, :m])) if self.n_pre else 0
        self.n_done = int(np.count_nonzero(self.done[:m])) if self.n_done else 0

    # ---- the iteration loop -------------------------------------------------------------
    def _on_boundary(self, token: int) -> None:
        if token != self._token:
            return  # the end of a run that an arrival has since cut short
        now_s = self.engine.now_s
        if self._pending is not None:
            self._commit(now_s)
        self._begin(now_s)

    def _commit(self, now_s: float) -> None:
        step = self._pending
        self._pending = None
        R, n = self.R, self.n
        kind = type(step)
        if kind is DecodeRun:
            commit_run(self, step)
            if not step.finishes:
                return
        elif kind is TailStep:
            a = step.first
            if step.decode:
                R[STEP, :n] += 1  # everyone emits a token; the prefills' caches fixed below
                if a:
                    if not self._n_async:
                        self._gap_append(now_s - self._t_sync)
                        self._gap_weight(a)
                    else:
                        self._emit(slice(0, a), now_s)
            else:
                R[STEP, a:n] += 1  # prefill_first: only the prompts ran
                if a:
                    self._sit_out(slice(0, a))
            tab = self.table
            if n - a == 1:  # one admission (the usual case): scalars
                R[CACHED, a] += R[PRE, a] - 1
                R[PRE, a] = 0
                rid = R[ID, a]
                if tab.first_token_s[rid] != tab.first_token_s[rid]:  # NaN: first time
                    tab.first_token_s[rid] = now_s
                if R[ASYNC, a]:  # recomputed after preemption: its next token
                    self.sim.gaps.add_one(now_s - self._last.pop(int(rid)), 1)
                    R[ASYNC, a] = 0
                    self._n_async -= 1
                if self.cache is not None:
                    self.cache.promote(int(rid), int(R[CACHED, a]))
            else:
                R[CACHED, a:n] += R[PRE, a:n] - 1
                R[PRE, a:n] = 0
                ids = R[ID, a:n]
                ft = tab.first_token_s[ids]
                tab.first_token_s[ids] = np.where(np.isnan(ft), now_s, ft)
                if self._n_async:  # recomputed ones: their next tokens
                    sel = np.zeros(n, dtype=bool)
                    sel[a:n] = R[ASYNC, a:n] == 1
                    if sel.any():
                        self._emit(sel, now_s)
                if self.cache is not None:
                    for i in range(a, n):
                        self.cache.promote(int(R[ID, i]), int(R[CACHED, i]))
            self.n_pre = 0
        elif kind is SpecStep:
            dec, chunks, idx, adv = step
            if len(idx):
                R[CACHED, idx] += adv
                R[NLEFT, idx] += adv
                sel = np.zeros(n, dtype=bool)
                sel[idx] = True
                self._emit(sel, now_s)
                extra = int(adv.sum()) - len(idx)
                if extra:  # the rest of each burst arrives with its first token
                    self.sim.gaps.add_one(0.0, extra)
                self.table.decode_steps[R[ID, idx]] += 1
            elif self.scheduler.prefill_only:
                self._sit_out(R[PRE, :n] == 0)
            if chunks is not None:
                self._commit_chunks(chunks, now_s)
        else:  # one mixed iteration: decode mask (None = all), prefill chunks
            dec, chunks = step
            if dec is None:
                R[STEP, :n] += 1
                self._emit(slice(0, n), now_s, self._n_async)
            elif dec.any():
                R[STEP, :n] += dec
                self._emit(dec, now_s)
            elif self.scheduler.prefill_only:
                self._sit_out(R[PRE, :n] == 0)  # (the prompts have no token to wait on)
            if chunks is not None:
                self._commit_chunks(chunks, now_s)
        self._t_sync = now_s
        if self.handoff is not None:
            self._hand_off(now_s)
            return
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

    def _commit_chunks(self, chunks: np.ndarray, now_s: float) -> None:
        """Prefill chunks ran: prompts advance; finished ones emit their first token."""
        R, n = self.R, self.n
        R[CACHED, :n] += chunks
        R[PRE, :n] -= chunks
        first = (chunks > 0) & (R[PRE, :n] == 0)
        if first.any():
            R[NLEFT, :n] += first
            ids = R[ID, :n][first]
            tab = self.table
            ft = tab.first_token_s[ids]
            tab.first_token_s[ids] = np.where(np.isnan(ft), now_s, ft)
            if self._n_async:  # recomputed ones: their next tokens
                again = first & (R[ASYNC, :n] == 1)
                if again.any():
                    self._emit(again, now_s)
            self.n_pre -= int(np.count_nonzero(first))
        if self.cache is not None:
            for i in np.flatnonzero(chunks):
                self.cache.promote(int(R[ID, i]), int(R[CACHED, i]))

    def _release(self, fin: np.ndarray, now_s: float) -> None:
        """Finished sequences (mask over the batch) leave it and free their memory."""
        R, n = self.R, self.n
        tab = self.table
        pool = self.pool
        where = fin.nonzero()[0]
        if self.cache is not None:
            for i in where:
                self.cache.release(int(R[ID, i]), int(R[CACHED, i]), int(R[UNITS, i]))
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
            if R[ASYNC, i]:
                del self._last[int(rid)]
                self._n_async -= 1
            R[:, i:n - 1] = R[:, i + 1:n]  # close the gap, keeping admission order
            self.done[i:n - 1] = self.done[i + 1:n]
            self.n = n - 1
            ids = (rid,)
        else:
            ids = R[ID, :n][fin]
            tab.finish_s[ids] = now_s
            tab.status[ids] = COMPLETED
            u = int(np.add.reduce(R[UNITS, :n][fin]))
            self._keep(~fin)
        if self.cache is None:
            pool.n_seqs -= len(where)
            pool.units_in_use -= u
            pool.units_freed += u
        if self.spec is not None:  # a finished sequence's draws are no longer needed
            for rid in ids:
                self.spec.release(int(rid))
        when = None
        if self._finish_at:  # answers complete at their last streamed token
            when = {int(r): self._finish_at.pop(int(r), now_s) for r in ids}
            for rid, t in when.items():
                tab.finish_s[rid] = t
        self.completed += len(where)
        self.sim.on_completed(len(where))
        on_finished = self.sim.on_finished
        if on_finished is not None:
            for rid in ids:
                on_finished(int(rid), now_s if when is None else when[int(rid)])

    def _begin(self, now_s: float) -> None:
        self._swap_pending = 0.0
        if self.ready:
            self._join_ready(now_s)
        n = self.n
        if (self.plans and n and not self.n_pre and not self.n_done and not self.waiting
                and not self.swapped and not self.incoming and self.pool.free_units() >= n):
            # a pure decode batch with nothing to admit and room for one more block each
            # (a sequence needs at most one new block per token): no preemption is possible,
            # and the planned run allocates its first step's blocks itself
            if plan_run(self, now_s):
                return
        sched = self.scheduler
        preempted, admitted = sched.form_batch(self, now_s)
        if self.incoming and not preempted and not self.waiting and not self.swapped:
            self._accept_incoming(now_s)
        n = self.n
        if not n:
            self.busy = False
            if sched.ratio is not None:
                sched.ratio.idle(self)
            return
        if (self.plans and not preempted and not admitted and not self.n_pre
                and self._swap_pending == 0.0 and self.n_done < n):
            if plan_run(self, now_s):
                return
        if sched.prefill_only:
            if self.fast:
                self._step_tail(now_s, decode=False)
                return
        elif self.fast and self.n_pre and not self.n_done and sched.whole_prefill:
            self._step_tail(now_s, decode=True)
            return
        R = self.R
        dec = sched.decoding(self)
        chunks = sched.prefill_chunks(self) if self.n_pre else None
        cached = R[CACHED, :n]
        if chunks is not None:
            pidx = np.flatnonzero(chunks)
            p_start, p_len = cached[pidx], chunks[pidx]
            n_pre = len(pidx)
            first = int(np.count_nonzero((chunks > 0) & (chunks == R[PRE, :n])))
        else:
            p_start = p_len = ()
            n_pre = first = 0
        if self.spec is not None:
            spec_step(self, now_s, dec, chunks, p_start, p_len, n_pre, first)
            return
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
        held = int(self.policy.positions(after).sum()) - self.shared_positions
        self._schedule_step(now_s, dt, n_dec + n_pre, held, n_dec + first,
                            MixedStep(dec, chunks))

    def _schedule_step(self, now_s: float, dt: float, batch: int, held: int, tokens: int,
                       pending) -> None:
        """Log one iteration (plus any swap traffic it carries) and schedule its end."""
        if self._swap_pending:
            self.swap_bytes_total += self._swap_pending
            dt += self._swap_pending / self.swap_bytes_per_s
        if self.announce is not None:
            self.announce(self, pending, now_s, dt)
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
        self._token += 1
        self.engine.schedule(now_s + dt, PRIORITY_STEP, self._on_boundary, self._token)

    def _step_tail(self, now_s: float, decode: bool) -> None:
        """One iteration where the last n_pre sequences (just admitted) prefill their whole
        prompt and the others decode (or, prefill_first, sit out): the general step
        specialised with slices (whole-prompt schedulers only; ``fast=False`` keeps the
        general path as the reference)."""
        R, n, m = self.R, self.n, self.n_pre
        nd = n - m
        pos = self.policy._pos_table
        dt = None
        shared = self.pool.shared_units
        if shared:
            shared *= self._pos_per_unit
        if not decode:  # prefill_first: the running decodes stall; their caches still held
            if m == 1 and self._step_sum is not None:
                start, length = int(R[CACHED, nd]), int(R[PRE, nd])
                dt = self._step_sum(0, 0, start, length)
            if dt is None:
                dt = float(self.model.step_time_s((), R[CACHED, nd:n], R[PRE, nd:n]))
            held = int(np.add.reduce(pos[R[CACHED, :nd]])) \
                + int(np.add.reduce(pos[R[CACHED, nd:n] + R[PRE, nd:n]])) - shared
            self._schedule_step(now_s, dt, m, held, m, TailStep(nd, False))
            return
        if m == 1 and self._step_sum is not None:  # one admission: integers only
            d_total = int(np.add.reduce(R[CACHED, :nd])) + nd  # decode contexts: cached + 1
            start, length = int(R[CACHED, nd]), int(R[PRE, nd])
            dt = self._step_sum(d_total, nd, start, length)
            if dt is not None:
                if self.policy.positions_are_tokens:
                    held = d_total + start + length
                else:
                    held = int(np.add.reduce(pos[R[CACHED, :nd] + 1])) + int(pos[start + length])
        elif self._step_prefills is not None:  # several admissions: integers and tables
            d_total = int(np.add.reduce(R[CACHED, :nd])) + nd
            p_start, p_len = R[CACHED, nd:n], R[PRE, nd:n]
            dt = self._step_prefills(d_total, nd, p_start, p_len)
            if dt is not None:
                if self.policy.positions_are_tokens:
                    held = d_total + int(np.add.reduce(p_start)) + int(np.add.reduce(p_len))
                else:
                    held = int(np.add.reduce(pos[R[CACHED, :nd] + 1])) \
                        + int(np.add.reduce(pos[p_start + p_len]))
        if dt is None:
            d_ctx = R[CACHED, :nd] + 1
            p_len = R[PRE, nd:n]
            p_start = R[CACHED, nd:n]
            if m == 1 and self._tabulated:  # tables, not the general call (same bits)
                dt = self.model.step_ctx_s(d_ctx, int(p_start[0]), int(p_len[0]))
            else:
                dt = float(self.model.step_time_s(d_ctx, p_start, p_len))
            held = int(np.add.reduce(pos[d_ctx])) + int(np.add.reduce(pos[p_start + p_len]))
        self._schedule_step(now_s, dt, n, held - shared, n, TailStep(nd, True))


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
