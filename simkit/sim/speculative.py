"""Speculative decoding: a draft model proposes k tokens, the target verifies them at once.

Leviathan, Kalman & Matias 2023, "Fast Inference from Transformers via Speculative
Decoding", arXiv:2211.17192 (Chen et al. 2023, arXiv:2302.01318, the same scheme). A decode
iteration of a replica that speculates (`Replica._spec_step`):

1. the draft runs k decode steps over the batch (its own step model, `step_model_for(...,
   draft=...)`, on the replica's hardware and GPUs; step j at each sequence's context + j);
   a prompt chunk in the iteration is prefilled by the draft too (in its first step): the
   draft needs the prompt's cache to propose. The draft's passes run inside the iteration
   (vLLM v1's proposer calls them from the same model-runner step, on GPU tensors): they
   pay THE formula's roofline, attention and per-layer terms but not the per-step and
   per-sequence fixed costs, which the iteration pays once
   (`StepCostModel.inner_step_time_s`);
2. the target verifies: each sequence runs its last token and its k drafts, k + 1 query
   tokens after its cached ones, timed by THE formula as a prefill chunk
   (`StepCostModel.verify_time_s`), beside the iteration's prompt chunks;
3. each sequence emits its accepted drafts + 1 (the target's own token at the first
   rejection, or the bonus token after k acceptances), never past its answer: k is cut to
   the tokens it still needs.

Accepted lengths. With a per-token acceptance rate alpha (each draft accepted
independently, the paper's i.i.d. assumption), P(a = j) = alpha^j (1 - alpha) for j < k and
P(a = k) = alpha^k, so the expected tokens per iteration are
    E[a + 1] = (1 - alpha^(k+1)) / (1 - alpha)                     (arXiv:2211.17192, eq. 1)
(`simkit.costs.speculative`)
Or a distribution `acceptance_lengths = [p0, ..., pk]` (e.g. measured). Each request draws
from its own stream (`SeedSequence(seed, spawn_key=(STREAMS["speculative"], request id))`),
one draw per iteration it takes part in: its numbers do not depend on what it is batched
with, and the same seed gives the same numbers.

Memory: both caches live on the replica. The KV manager sees one layout, the target's layer
groups followed by the draft's (`combined_layout`), so a block of the stack holds both, and
the draft's weights come off the KV capacity. Before an iteration every decoding sequence
gets room for its k drafted tokens (vLLM's lookahead slots).

Where the gain goes. At batch 1 a decode step is a read of the weights; verifying k + 1
tokens costs about one step, so the expected tokens per iteration divide the time per token,
less the draft's k steps. At large batches the verification's (k + 1) x batch tokens make
the step compute-bound: it costs k + 1 decode steps' FLOPs, and the gain vanishes. Replicas
that speculate step one iteration at a time (the fast multi-step path plans one token per
step); the fast path == stepping identity is then trivial for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from simkit.costs.speculative import expected_tokens  # noqa: F401  (the closed form)
from simkit.sim.rows import CACHED, ID, NLEFT
from simkit.sim.workload import stream_key


def length_probabilities(spec) -> np.ndarray:
    """P(a = j), j = 0..k, of accepted drafts per iteration from a `SpeculativeSpec`."""
    k = int(spec.tokens)
    if spec.acceptance_lengths is not None:
        p = np.asarray(spec.acceptance_lengths, dtype=np.float64)
        return p / p.sum()
    a = float(spec.acceptance)
    p = a ** np.arange(k + 1, dtype=np.float64) * (1.0 - a)
    p[k] = a ** k
    return p


def combined_layout(target, draft):
    """One cache layout holding the target's groups and the draft's (labels 'draft: ...')."""
    from simkit.costs.compiled import KVGroup, KVLayout

    groups = tuple(target.groups) + tuple(
        KVGroup(label=f"draft: {g.label}", kind=g.kind, bytes_per_position=g.bytes_per_position,
                positions=g.positions, window=g.window, chunk=g.chunk,
                global_tokens=g.global_tokens) for g in draft.groups)
    return KVLayout(groups, target.fixed_bytes + draft.fixed_bytes)


@dataclass
class Speculation:
    """One scenario's speculative decoding: the draft's step model, k, the accepted-length
    distribution and the per-request streams."""

    draft: object  # the draft's StepCostModel
    k: int
    probabilities: np.ndarray  # P(a = j), j = 0..k
    seed: int
    _cdf: np.ndarray = field(init=False, repr=False)
    _draws: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self._cdf = np.cumsum(self.probabilities)
        self._cdf[-1] = np.inf  # rounding never lets a draw fall past k

    @property
    def expected_tokens(self) -> float:
        """E[accepted + 1] of the distribution (eq. 1 when it is the i.i.d. one)."""
        return float(np.dot(np.arange(1, self.k + 2), self.probabilities))

    def _stream(self, rid: int, need: int) -> tuple[np.ndarray, list]:
        got = self._draws.get(rid)
        if got is None or len(got[0]) - got[1][0] < need:
            # the request's own stream, drawn in one go (an iteration emits >= 1 token, so
            # its answer never needs more draws than tokens); regrown if ever exhausted
            n = max(need, 64 if got is None else 2 * len(got[0]))
            rng = np.random.default_rng(np.random.SeedSequence(
                self.seed, spawn_key=(stream_key("speculative"), int(rid))))
            u = rng.random(n)
            a = np.searchsorted(self._cdf, u, side="right").astype(np.int64)
            pos = [0] if got is None else got[1]
            got = (a, pos)
            self._draws[rid] = got
        return got

    def accepted(self, rids: np.ndarray, left: np.ndarray) -> np.ndarray:
        """Tokens each sequence emits this iteration: its next accepted length + 1, at most
        the tokens it still needs."""
        out = np.empty(len(rids), dtype=np.int64)
        for i, (rid, lf) in enumerate(zip(rids.tolist(), left.tolist())):
            a, pos = self._stream(rid, lf)
            out[i] = a[pos[0]]
            pos[0] += 1
        return np.minimum(out + 1, left)

    def release(self, rid: int) -> None:
        self._draws.pop(rid, None)

    def step_time_s(self, target, cached: np.ndarray, ahead: np.ndarray, p_start, p_len
                    ) -> tuple[float, float]:
        """(iteration time, the draft's share): the draft's steps -- step j decodes the
        sequences that still draft (ahead > j) at context cached + 1 + j, the first step
        also prefills the iteration's prompt chunks -- then the target's verification of
        ahead + 1 tokens per sequence beside those chunks."""
        step = self.draft.inner_step_time_s
        steps = int(ahead.max()) if ahead.size else 0
        draft_s = 0.0
        if len(p_len) and steps == 0:
            draft_s += float(step((), p_start, p_len))
        for j in range(steps):
            sel = ahead > j
            ctx = cached[sel] + 1 + j
            draft_s += float(step(ctx, p_start, p_len) if j == 0 else step(ctx))
        verify_s = float(target.verify_time_s(cached, ahead + 1, p_start, p_len))
        return draft_s + verify_s, draft_s


class SpecStep(NamedTuple):
    """One speculative iteration: the sequences `idx` drafted and verified, emitting `adv`
    tokens each; prefill chunks (None: none) and the decode mask as in `MixedStep`."""

    decode: np.ndarray | None
    chunks: np.ndarray | None
    idx: np.ndarray
    adv: np.ndarray


def spec_step(rep, now_s: float, dec, chunks, p_start, p_len, n_pre: int, first: int
              ) -> None:
    """Plan one speculative iteration of replica `rep`: the draft proposes up to k tokens
    per decoding sequence (never past its answer), the target verifies them, each sequence
    will emit its sampled accepted tokens + 1 (committed by the replica)."""
    R, n, spec = rep.R, rep.n, rep.spec
    idx = np.arange(n) if dec is None else np.flatnonzero(dec)
    cached = R[CACHED, idx]
    left = -R[NLEFT, idx]
    ahead = np.minimum(spec.k, left - 1)
    adv = spec.accepted(R[ID, idx], left)
    dt, draft_s = spec.step_time_s(rep.model, cached, ahead, p_start, p_len)
    after = R[CACHED, :n].copy()
    after[idx] += adv
    if chunks is not None:
        after += chunks
    held = int(rep.policy.positions(after).sum()) - rep.shared_positions
    rep.spec_slots += len(idx)
    rep.spec_tokens += int(adv.sum())
    rep.spec_draft_s += draft_s
    full = ahead == spec.k  # drafted all k: the accepted length is not cut short
    rep.spec_full_slots += int(np.count_nonzero(full))
    rep.spec_full_tokens += int(adv[full].sum())
    rep._schedule_step(now_s, dt, len(idx) + n_pre, held, int(adv.sum()) + first,
                       SpecStep(dec, chunks, idx, adv))


def summary(scenario, pool) -> dict:
    """Speculative decoding's figures: the closed form and what the run did."""
    sp, spec = scenario.serving.speculative, pool.spec
    slots = sum(r.spec_slots for r in pool.replicas)
    toks = sum(r.spec_tokens for r in pool.replicas)
    full = sum(r.spec_full_slots for r in pool.replicas)
    full_toks = sum(r.spec_full_tokens for r in pool.replicas)
    busy = sum(float(np.frombuffer(r.log_dt, dtype=np.float64).sum()) for r in pool.replicas)
    draft_s = sum(r.spec_draft_s for r in pool.replicas)
    return {
        "draft": spec.draft.model.name, "tokens": spec.k,
        "acceptance": sp.acceptance, "acceptance_lengths": [float(x) for x in spec.probabilities],
        "expected_tokens_per_step": spec.expected_tokens,
        # tokens a sequence emitted per iteration, over every iteration; and over those
        # that drafted all k (the last ones of an answer draft fewer: what it still needs)
        "tokens_per_step": (toks / slots) if slots else None,
        "tokens_per_full_step": (full_toks / full) if full else None,
        "verified_sequence_steps": int(slots),
        "full_steps": int(full),
        "draft_time_fraction": (draft_s / busy) if busy > 0 else None,
        "draft_weight_bytes": float(spec.draft.weight_bytes),
    }
