"""SGLang's admission: room for each answer estimated from its token limit
(``serving.admission = "new_token_ratio"``).

SGLang does not admit a request when its prompt's KV fits (vLLM) nor when every answer's
whole growth fits (TensorRT-LLM's GUARANTEED_NO_EVICT); it reserves an estimate. Read from
sgl-project/sglang (0.3-0.4: ``python/sglang/srt/managers/schedule_policy.py``
``PrefillAdder``, ``scheduler.py`` ``update_running_batch``, ``schedule_batch.py``
``retract_decode``, ``global_config.py``):

- A request joins if its prompt plus its whole token limit, ``min(max_new_tokens, 4096)``
  tokens, fits in the free tokens less what the running answers reserve: each
  ``new_token_ratio`` x ``min(max_new_tokens - tokens generated, 4096)`` (``PrefillAdder``:
  ``rem_total_tokens``; the requests admitted in the same pass reserve their whole limit).
  4096 is ``SGLANG_CLIP_MAX_NEW_TOKENS_ESTIMATION``'s default.
- The ratio starts at 0.7 x ``--schedule-conservativeness`` (capped at 1) and falls by
  (start - floor) / 600 at every decode iteration to a floor of 0.14 x the start
  (``SGLANG_INIT_NEW_TOKEN_RATIO``, ``SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR``,
  ``SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS``); it returns to the start when the engine idles.
- When a decode iteration's tokens do not fit, SGLang retracts answers: the one with the
  fewest tokens generated (of those, the longest prompt) first, and more until the free
  tokens hold 20 more for every answer left (``retract_decode_steps``); retracted requests
  go to the back of the waiting queue and are prefilled again (recompute). The ratio then
  becomes (tokens the remaining answers have generated + 20 per answer) / their token
  limits, at most 1: the estimate the retraction showed was too low.
- An admission pass that stops for memory (or at ``--max-running-requests``) marks the batch
  full (``batch_is_full``): nothing is admitted again until the batch has shrunk.

simkit counts KV in the replica's units (blocks of ``serving.block_size`` tokens; SGLang's
pool is per token, ``block_size = 1``), so an estimate of t tokens on a sequence at c tokens
is the units it would own at c + t less those it owns at c.
"""

from __future__ import annotations

import math

import numpy as np

from simkit.sim.rows import CACHED, ID, NLEFT, PRE

#: SGLANG_CLIP_MAX_NEW_TOKENS_ESTIMATION: an answer's limit counts at most this many tokens
CLIP_TOKENS = 4096
#: SGLANG_INIT_NEW_TOKEN_RATIO: the estimate's starting share (x schedule_conservativeness)
INIT_RATIO = 0.7
#: SGLANG_MIN_NEW_TOKEN_RATIO_FACTOR: the floor, as a share of the start
MIN_RATIO_FACTOR = 0.14
#: SGLANG_NEW_TOKEN_RATIO_DECAY_STEPS: decode iterations from the start to the floor
DECAY_STEPS = 600
#: global_config.retract_decode_steps: tokens per remaining answer a retraction frees room for
RETRACT_STEPS = 20


class NewTokenRatio:
    """One replica's SGLang admission state: the ratio (as set at a decode iteration count,
    decaying from there) and the batch-full mark."""

    def __init__(self, conservativeness: float, max_new_tokens: int | None) -> None:
        self.init = min(INIT_RATIO * float(conservativeness), 1.0)
        self.floor = min(self.init * MIN_RATIO_FACTOR, 1.0)
        self.decay = (self.init - self.floor) / DECAY_STEPS
        #: every request's token limit (None: its own output length)
        self.max_new_tokens = max_new_tokens
        self._set_to = self.init  # the ratio when last set ...
        self._set_at = 0  # ... at this many decode iterations
        #: batch size when admission last stopped for memory or the batch limit (0: not full)
        self.full_at = 0

    # ---- the estimate --------------------------------------------------------------------
    @staticmethod
    def decode_iterations(rep) -> int:
        """Iterations that decoded (prefill_first runs prompts in iterations of their own)."""
        return rep.iterations - rep.scheduler.prefill_rounds

    def ratio(self, rep) -> float:
        steps = self.decode_iterations(rep) - self._set_at
        return max(self._set_to - steps * self.decay, self.floor)

    def _set(self, rep, value: float) -> None:
        self._set_to = value
        self._set_at = self.decode_iterations(rep)

    def idle(self, rep) -> None:
        """The engine has nothing to run: the estimate starts over."""
        self._set(rep, self.init)

    @staticmethod
    def _generated(rep, ids: np.ndarray) -> np.ndarray:
        """Tokens each running answer has generated (NLEFT holds -(tokens left))."""
        return rep.table.output_tokens[ids] + rep.R[NLEFT, :len(ids)]

    def _limits(self, rep, ids: np.ndarray) -> np.ndarray:
        out = rep.table.output_tokens[ids]
        return out if self.max_new_tokens is None else np.full(len(ids), self.max_new_tokens)

    def reserved_units(self, rep) -> int:
        """Units the running answers reserve: the whole limit of those admitted at this
        boundary (still prefilling), ratio x the rest of it for the others."""
        n = rep.n
        if not n:
            return 0
        R = rep.R
        ids = R[ID, :n]
        limit = self._limits(rep, ids)
        pre = R[PRE, :n]
        generated = self._generated(rep, ids)
        start = R[CACHED, :n] + pre
        rest = np.minimum(limit - generated, CLIP_TOKENS)
        est = np.where(pre > 0, np.minimum(limit, CLIP_TOKENS),
                       np.ceil(self.ratio(rep) * rest).astype(np.int64))
        policy = rep.policy
        grow = policy.peak_units(start, start + np.maximum(est, 0)) - policy.units(start)
        return int(np.maximum(grow, 0).sum())

    def own_units(self, rep, rid: int, tokens: int) -> int:
        """Units request `rid`, joining with `tokens` to prefill, reserves for its answer:
        its whole limit (also after a retraction: SGLang counts the limit again)."""
        limit = int(self._limits(rep, np.array([rid]))[0])
        policy = rep.policy
        return policy.peak_units_one(tokens, tokens + min(limit, CLIP_TOKENS)) - \
            policy.units_one(tokens)

    # ---- the batch-full mark -------------------------------------------------------------
    def blocked(self, rep) -> bool:
        """Admission stopped for memory or the batch limit and the batch has not shrunk."""
        if self.full_at and rep.n < self.full_at:
            self.full_at = 0
        return self.full_at > 0

    def mark_full(self, rep) -> None:
        self.full_at = max(rep.n, 1)

    # ---- retraction ------------------------------------------------------------------------
    def victim(self, rep) -> int:
        """The running answer with the fewest tokens generated (ties: the longest prompt)."""
        n = rep.n
        R = rep.R
        ids = R[ID, :n]
        generated = self._generated(rep, ids)
        prompt = rep.table.prompt_tokens[ids]
        order = np.lexsort((-prompt, generated))  # the last key sorts first
        if rep.n_done:
            order = order[~rep.done[:n][order]]
        return int(order[0])

    def retract(self, rep, now_s: float) -> None:
        """Memory ran short for the next decode: preempt (recompute) victims until every
        answer left has room for RETRACT_STEPS more tokens, then raise the estimate."""
        policy, pool = rep.policy, rep.pool
        while True:
            rep._preempt(self.victim(rep), now_s)
            n = rep.n
            if n <= 1:
                break
            c = rep.R[CACHED, :n]
            room = policy.peak_units(c, c + RETRACT_STEPS) - policy.units(c)
            if pool.free_units() >= int(room.sum()):
                break
        n = rep.n
        if n:
            ids = rep.R[ID, :n]
            generated = self._generated(rep, ids)
            limits = int(self._limits(rep, ids).sum())
            est = (int(generated.sum()) + RETRACT_STEPS * n) / max(limits, 1)
            self._set(rep, min(1.0, est))


def new_token_ratio_of(serving, max_new_tokens: int | None) -> NewTokenRatio:
    """A replica's SGLang admission state from its serving section (SGLang's
    --schedule-conservativeness: `serving.schedule_conservativeness`)."""
    c = float(getattr(serving, "schedule_conservativeness", 1.0))
    if not 0 <= c < math.inf:
        from simkit.errors import SimkitError
        raise SimkitError(f"serving.schedule_conservativeness: must be a number >= 0, got {c}")
    return NewTokenRatio(c, max_new_tokens)
