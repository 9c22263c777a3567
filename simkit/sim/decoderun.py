"""The replica's fast path: k decode-only iterations planned at once (`DecodeRun`).

While a batch only decodes and nothing can join it, its membership changes only at the next
completion, the next memory shortfall or the next arrival. `plan_run` plans every iteration
up to that point with the cost model's vectorised ``decode_steps_s`` (or its integer-sum
form) and one (steps x batch) grid of KV units, logs them and schedules a single event;
`commit_run` applies them when the event fires (or when an arrival that was unknown at
planning time cut the run short: `Replica._cut_run`). Memory grows at commit, never at
planning, so a cut run leaves the pool exactly as stepping would. With multi-step
scheduling (`Replica.rounds` > 1) a run is one round: that many steps, whoever finishes in
them, not cuttable, committed by `_commit_round`.

Speed (benchmarks/simulate.py): an event costs a few dozen numpy calls on batch-sized
arrays, so the hot paths count calls. When the cost model offers integer-sum forms
(``decode_steps_sum_s``: exact for affine per-token costs) the planner hands it sums of
contexts instead of arrays, and with full attention (positions = tokens) the positions held
are sums too; per-step figures of a run are Python lists.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from itertools import accumulate

import numpy as np

from simkit.sim.engine import PRIORITY_STEP
from simkit.sim.rows import CACHED, ID, NLEFT, STEP, UNITS

_I64 = np.int64
#: longest decode run planned in one go (bounds the planning grid; a longer run is simply
#: continued by the next plan, with identical results)
MAX_PLAN_STEPS = 1024


class DecodeRun:
    """`steps` decode-only iterations of the sequences `idx` (None: the whole batch), ending
    at `ends` (one time per iteration); `finishes`: a sequence completes in the run (at its
    last step, or within a multi-step round);
    `cuttable`: an arrival could have joined (the run stops at the first boundary after a
    new one)."""

    __slots__ = ("idx", "steps", "finishes", "ends", "cuttable", "units_end", "last_units",
                 "grown", "shrunk")

    def __init__(self, idx, steps: int, finishes: bool, ends: list, cuttable: bool,
                 units_end: int | None = None, last_units=None) -> None:
        self.idx = idx
        self.units_end = units_end  # units held after the last step (monotone, planned)
        self.last_units = last_units  # the members' own units after the last step
        self.grown = self.shrunk = 0  # units rising and falls, step by step (windows)
        self.steps = steps
        self.finishes = finishes
        self.ends = ends
        self.cuttable = cuttable


def plan_run(rep, now_s: float) -> bool:
    """Plan k >= 1 decode-only iterations at once; False when the slow path must act.

    Works whether or not this boundary's memory growth has happened: the needs are counted
    from the units the sequences own now, step 1 included, against the units free now,
    exactly as stepping would grow them one iteration at a time.
    """
    policy, pool = rep.policy, rep.pool
    R, n = rep.R, rep.n
    shared = pool.shared_units * rep._pos_per_unit
    if rep.n_done:  # static batching: finished sequences hold memory, do not decode
        idx = np.flatnonzero(~rep.done[:n])
        c = R[CACHED, idx]
        k_cap = -int(R[NLEFT, idx].max())
        pos_others = int(policy.positions(R[CACHED, :n][rep.done[:n]]).sum()) - shared
        units_now = int(R[UNITS, idx].sum())
    else:
        idx = None
        c = R[CACHED, :n]
        k_cap = -int(np.maximum.reduce(R[NLEFT, :n]))
        pos_others = -shared
        units_now = pool.footprint  # = R[UNITS, :n].sum(): the batch's own footprints
    k_left = k_cap  # a run of this many steps ends with a completion
    k_cap = min(k_cap, MAX_PLAN_STEPS)
    sched = rep.scheduler
    rounds = rep.rounds
    if rounds > 1:  # a multi-step round: that many steps, whoever finishes (see `commit_run`)
        k_cap = rounds
    elif sched.admits_before_growing and (rep.waiting or rep.swapped) and rep.head_might_fit():
        k_cap = 1  # memory this boundary freed is offered to the queue at the next one
    horizon_s = math.inf
    cuttable = (sched.admits_midway and not rep.waiting and not rep.swapped
                and n < sched.max_batch and rounds == 1)
    if cuttable:
        horizon_s = (rep.sim.arrival_ahead_s(rep.lookahead) if rep.lookahead else
                     rep.sim.next_arrival_s()) if rep.external else math.inf
    free_units = pool.free_units()
    if horizon_s == math.inf:
        est = k_cap
    else:
        dt0 = rep._last_dt if rep._last_dt > 0 else 1e-3
        # (at least 17 steps when the run may be that long: the cost model times them in
        # one array operation, cheaper than a few one by one; steps past the next arrival
        # are dropped below)
        est = max(1, min(k_cap, max(int((horizon_s - now_s) / dt0 * 1.25) + 1, 17)))
    n_dec = len(c)
    n_seqs = pool.n_seqs
    units_in_use = pool.units_in_use
    paged = policy.paged
    pos_table = policy._pos_table
    units_table = policy._units_table
    decode_steps_s, decode_sum = rep.model.decode_steps_s, rep._decode_sum
    tabulated = rep._tabulated
    decode_grid = rep.model.decode_grid_s if tabulated else None
    same_pos = policy.positions_are_tokens
    c_total = int(np.add.reduce(c))  # step j of the run: contexts sum to c_total + j n_dec
    dts: list[float] = []
    ends: list[float] = []  # end time of each step
    units_log: list[int] = []
    pos_log: list[int] = []
    t = now_s
    k = 0
    last_units = None
    grown = shrunk = 0
    prev_total = units_now
    queued = bool(rep.waiting or rep.swapped or rep.incoming)
    # a round's later steps run without the scheduler: no per-sequence host work
    host_s = rep.model.sequence_host_time_s(n_dec) if rounds > 1 else 0.0
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
        if host_s:
            d = [x - host_s for x in d] if k else [d[0]] + [x - host_s for x in d[1:]]
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
            need_arr = np.add.reduce(ugrid, axis=1)
            need = need_arr.tolist()
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
            # units held after each step's growth
            units_log += (need_arr[:len(need)] + (units_in_use - units_now)).tolist()
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
    log_t = rep.log_t
    log_t.append(now_s)
    log_t.extend(ends[:-1])
    rep.log_dt.extend(dts)
    same = array("q", (n_dec,)) * k
    rep.log_batch.extend(same)
    rep.log_tokens.extend(same)
    rep.log_units.extend(units_log)
    rep.log_pos.extend(pos_log)
    rep.log_seqs.extend(array("q", (n_seqs,)) * k)
    rep.iterations += k
    rep._last_dt = dts[-1]
    run = rep._pending = DecodeRun(idx, k, k >= k_left, ends, cuttable,
                                   units_log[-1] if paged else None, last_units)
    run.grown, run.shrunk = grown, shrunk
    rep._token += 1
    rep.engine.schedule(ends[-1], PRIORITY_STEP, rep._on_boundary, rep._token)
    return True


def commit_run(rep, run: DecodeRun) -> None:
    """Apply a run's `steps` decode steps: contexts, KV units (growth happens now, as
    stepping would have done it, step by step), and the time between tokens."""
    R, n, pool, policy = rep.R, rep.n, rep.pool, rep.policy
    k = run.steps
    idx = run.idx
    sel = slice(0, n) if idx is None else idx
    n_dec = n if idx is None else len(idx)
    if policy.paged:
        if run.last_units is not None:  # as planned
            if policy.monotone_units:
                grown = run.units_end - pool.units_in_use
                if grown:
                    pool.grow(grown)
            else:
                pool.resize(run.grown, run.shrunk)
            R[UNITS, sel] = run.last_units
        else:  # a run cut short, or units that rise and fall: count the steps again
            units_table = policy._units_table
            c = R[CACHED, sel]
            own = R[UNITS, sel]
            last = units_table[c + k]
            if policy.monotone_units:
                grown = int(np.add.reduce(last)) - int(np.add.reduce(own))
                if grown:
                    pool.grow(grown)
            else:  # each step's net change over the batch, as stepping counts it
                totals = np.add.reduce(units_table[c[None, :] + np.arange(1, k + 1)[:, None]],
                                       axis=1)
                steps = np.diff(totals, prepend=int(np.add.reduce(own)))
                pool.resize(int(steps[steps > 0].sum()), -int(steps[steps < 0].sum()))
            R[UNITS, sel] = last
    ends = run.ends
    gaps = rep.sim.gaps
    if rep.rounds > 1:
        _commit_round(rep, k, ends)
        return
    if idx is None and not rep._n_async:  # every member's last token came at the start
        rep._gap_append(ends[0] - rep._t_sync)
        rep._gap_weight(n)
    else:
        rep._emit(sel, ends[0])
    if k > 1:
        gaps.add_diffs(ends, n_dec)
    rep._t_sync = ends[-1]
    if idx is None:
        R[STEP, :n] += k
    else:
        R[STEP, idx] += k


def _commit_round(rep, k: int, ends: list) -> None:
    """A multi-step round of k steps (the whole batch) ended at ends[-1] (its steps at
    `ends`). Streamed, a member's j-th token of the round reaches the client at ends[j - 1],
    and one whose answer ends in the round is complete at its last token (`Replica.
    _finish_at`); otherwise they all arrive now, in one burst (one gap since each member's
    last token, then gaps of 0). A member with fewer than k tokens left computed the rest
    for nothing and leaves the batch now."""
    R, n = rep.R, rep.n
    end_s = ends[-1]
    nleft = R[NLEFT, :n]
    if rep.scheduler.stream_rounds:
        first = ends[0]
        made = np.minimum(-nleft, k)  # tokens each member makes in the round
        if k > 1:  # step j's gap for every member still answering at step j
            still = np.cumsum(np.bincount(made, minlength=k + 1)[::-1])[::-1]
            for j in range(1, k):
                if still[j + 1]:
                    rep.sim.gaps.add_one(ends[j] - ends[j - 1], int(still[j + 1]))
        for i in np.flatnonzero(made < k):  # answers that end mid-round
            rep._finish_at[int(R[ID, i])] = ends[int(made[i]) - 1]
    else:
        first = end_s
        tokens = int(np.add.reduce(np.minimum(-nleft, k)))
        if tokens > n:
            rep.sim.gaps.add_one(0.0, tokens - n)
    if not rep._n_async:
        rep._gap_append(first - rep._t_sync)
        rep._gap_weight(n)
    else:
        rep._emit(slice(0, n), first)
    # a finished answer's extra tokens are dropped: they never join its cache (prefix
    # caching registers only its real tokens); their blocks stay held until it leaves
    R[STEP, :n] += k - np.maximum(nleft + k, 0)
    rep._t_sync = end_s
