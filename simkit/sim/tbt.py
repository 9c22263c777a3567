"""Time between tokens (TBT): the gap between consecutive tokens of one request, pooled over
every token of every request.

TPOT averages a request's decode; TBT shows its stalls, which is where schedulers differ:
a prefill-first iteration (vLLM v0, Vidur's ``vllm`` scheduler) stops every running decode
for as long as the prompts take, and Sarathi-Serve (Agrawal et al. 2024, arXiv:2403.02310,
Sec. 2) reports P99 TBT to show it. A gap runs from a request's previous token to its next
one, so it includes prefill-only iterations it sat out and the time it spent preempted.

The replica hands over gaps as it commits iterations; they are binned on a fixed log grid
(200 bins a decade from 0.1 us to 1e5 s: bins 1.16% wide), so quantiles are exact to within
a bin, whatever the number of tokens, and integer counts make them bit-identical whichever
path (one iteration at a time or a planned run) produced the gaps. The mean is exact: the
run's total decode time over its decode tokens (see `mean_tbt_s`).
"""

from __future__ import annotations

from array import array

import numpy as np

from simkit.sim.rows import ASYNC, ID

#: bin edges (s): 200 per decade from 1e-7 to 1e5
EDGES_S = np.logspace(-7, 5, 12 * 200 + 1)
_FLUSH = 1 << 20


class TokenGaps:
    """A histogram of gaps (s), each with an integer weight (the tokens it stands for)."""

    def __init__(self) -> None:
        self.counts = np.zeros(len(EDGES_S) + 1, dtype=np.int64)
        self._runs: list[tuple[list[float], int]] = []
        # one gap for many tokens: (gap, tokens) pairs, in typed arrays (not lists: the
        # garbage collector would walk millions of floats); never replaced, only emptied, so
        # a replica may keep their bound `append`s
        self.vals = array("d")
        self.wts = array("q")
        self._pending = 0

    def add_one(self, gap: float, weight: int) -> None:
        """`weight` tokens with the same gap."""
        self.vals.append(gap)
        self.wts.append(weight)
        if len(self.vals) > _FLUSH:
            self._flush()

    def add_diffs(self, times: list[float], weight: int) -> None:
        """`weight` tokens at each gap between consecutive `times` (a decode run's ends)."""
        self._runs.append((times, weight))
        self._pending += len(times)
        if self._pending > _FLUSH:
            self._flush()

    def _flush(self) -> None:
        vals: list[np.ndarray] = []
        wts: list[np.ndarray] = []
        if self._runs:  # every run's consecutive gaps at once
            lens = np.array([len(t) for t, _ in self._runs])
            ends = np.array([x for t, _ in self._runs for x in t])
            d = np.diff(ends)
            keep = np.ones(len(d), dtype=bool)
            keep[np.cumsum(lens)[:-1] - 1] = False  # gaps between two runs are not gaps
            vals.append(d[keep])
            wts.append(np.repeat(np.array([float(w) for _, w in self._runs]), lens - 1))
        if self.vals:
            vals.append(np.array(self.vals, dtype=np.float64))  # (copies: no buffer held)
            wts.append(np.array(self.wts, dtype=np.float64))
        if vals:
            v = np.concatenate(vals)
            w = np.concatenate(wts)
            ok = ~np.isnan(v)
            idx = np.searchsorted(EDGES_S, v[ok], side="right")
            # weights are whole numbers far below 2**53: the float sums are exact
            self.counts += np.bincount(idx, weights=w[ok],
                                       minlength=len(self.counts)).astype(np.int64)
        self._runs.clear()
        del self.vals[:]
        del self.wts[:]
        self._pending = 0

    def quantiles(self, qs: list[float], chunks: bool = False) -> list[float | None]:
        """Quantiles (0..1), interpolated geometrically within their bin; `chunks`: of the
        gaps that end a chunk only (the tokens within a burst, below 0.1 us, left out)."""
        self._flush()
        counts = self.counts
        if chunks:
            counts = counts.copy()
            counts[0] = 0
        total = int(counts.sum())
        if not total:
            return [None for _ in qs]
        cum = np.cumsum(counts)
        out = []
        for q in qs:
            rank = q * (total - 1) + 1  # the rank-th smallest gap (1-based, as a real)
            i = int(np.searchsorted(cum, rank, side="left"))
            if i == 0:  # below 0.1 us: tokens that came together (a burst)
                out.append(0.0)
                continue
            below = int(cum[i - 1]) if i else 0
            frac = (rank - below) / max(int(counts[i]), 1)
            lo = EDGES_S[i - 1] if i else EDGES_S[0]
            hi = EDGES_S[i] if i < len(EDGES_S) else EDGES_S[-1]
            out.append(float(lo * (hi / lo) ** min(max(frac, 0.0), 1.0)))
        return out


def mean_tbt_s(first_token_s: np.ndarray, finish_s: np.ndarray, output_tokens: np.ndarray
               ) -> float | None:
    """Mean gap over the decode tokens of completed requests: sum of (finish - first token)
    over sum of (output tokens - 1)."""
    tokens = int(np.sum(output_tokens - 1))
    if tokens <= 0:
        return None
    return float(np.sum(finish_s - first_token_s)) / tokens


def tbt_stats(gaps: TokenGaps, first_token_s: np.ndarray, finish_s: np.ndarray,
              output_tokens: np.ndarray) -> dict[str, float | None]:
    p50, p90, p99 = gaps.quantiles([0.5, 0.9, 0.99])
    return {"mean": mean_tbt_s(first_token_s, finish_s, output_tokens), "p50": p50,
            "p90": p90, "p99": p99}


def itl_stats(gaps: TokenGaps, first_token_s: np.ndarray, finish_s: np.ndarray
              ) -> dict[str, float | None]:
    """Inter-token latency as a streaming client measures it (vLLM's benchmark_serving and
    sglang.bench_serving: the gaps between a response's streamed chunks): tokens that arrive
    together -- a multi-step round, speculative decoding's accepted tokens -- are one chunk.
    Without bursts it is the time between tokens. The mean is the completed requests'
    decode time over the chunk gaps (a request's gaps add up to its finish - first token)."""
    p50, p90, p99 = gaps.quantiles([0.5, 0.9, 0.99], chunks=True)
    n = int(gaps.counts[1:].sum())
    return {"mean": float(np.sum(finish_s - first_token_s)) / n if n else None, "p50": p50,
            "p90": p90, "p99": p99}


class TokenTimes:
    """A replica's token times (mixin of `simkit.sim.replica.Replica`): most sequences' last
    token came at the last iteration boundary, ``_t_sync`` (one number to advance per
    iteration); those with row ASYNC set (resumed, recomputed, stalled by prefill_first) have
    theirs in the dict ``_last`` by request id. Gaps go to the run's `TokenGaps`."""

    def _emit(self, sel, now_s: float, n_async: int | None = None) -> None:
        """Sequences `sel` (slice or mask over the batch, each with an earlier token) emitted
        a token at now_s: their gaps since their previous tokens. `n_async`: how many of
        them have ASYNC set, when the caller knows it (0: one weighted gap, no array work)."""
        gaps = self.sim.gaps
        if n_async == 0:
            k = (sel.stop - sel.start) if type(sel) is slice else int(np.count_nonzero(sel))
            if k:
                self._gap_append(now_s - self._t_sync)
                self._gap_weight(k)
            return
        flags = self.R[ASYNC, :self.n]
        mine = flags[sel]
        a = mine == 1
        n_a = int(np.count_nonzero(a))
        k = len(mine) - n_a
        if k:
            self._gap_append(now_s - self._t_sync)
            self._gap_weight(k)
        if n_a:
            last = self._last
            for rid in self.R[ID, :self.n][sel][a].tolist():
                gaps.add_one(now_s - last.pop(rid), 1)
            self._n_async -= n_a
            flags[sel] = 0

    def _sit_out(self, sel) -> None:
        """Sequences `sel` (each with an earlier token) emit nothing this iteration
        (prefill_first stalls them): they keep the time of their last token while the
        others' moves on."""
        flags = self.R[ASYNC, :self.n]
        sync = flags[sel] == 0
        if sync.any():
            t = self._t_sync
            for rid in self.R[ID, :self.n][sel][sync].tolist():
                self._last[rid] = t
            self._n_async += int(np.count_nonzero(sync))
            flags[sel] = 1
