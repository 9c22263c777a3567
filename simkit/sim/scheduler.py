"""Batching policies behind one interface: static, continuous and chunked-prefill.

A scheduler decides, at each iteration boundary of a replica, which queued requests join
the batch and how many prompt tokens each prefilling request processes in the iteration.
Memory growth and preemption are the replica's job (they are the same for every policy).

- ``static``: request-level batching (FasterTransformer-style, as Orca's paper describes
  it): an idle replica takes up to ``max_batch`` queued requests and runs them to the end;
  nothing joins mid-batch and early finishers are returned with the batch (Yu et al. 2022,
  "Orca", OSDI, Sec. 2.3). An idle replica starts at once with whatever is queued (no
  batching timeout).
- ``continuous``: iteration-level scheduling (Orca; vLLM): every iteration retires finished
  requests and admits queued ones (FCFS, stopping at the first that does not fit), whose
  whole prompt is prefilled in that iteration beside the running decodes (Orca's selective
  batching). ``max_batch_tokens`` caps the prompt tokens admitted per iteration (one
  oversized prompt may run alone).
- ``chunked``: Sarathi-Serve (Agrawal et al. 2024, arXiv:2403.02310): a token budget
  (``chunk_tokens``) per iteration; running decodes take one token each, the rest of the
  budget goes to prompt chunks, ongoing prefills first, then new admissions.

Admission allocates KV blocks for the whole prompt at once (vLLM's ``can_allocate``), also
under chunked prefill, so a prompt being prefilled in chunks holds blocks it has not filled
yet (it shows in the KV useful fraction). Preempted requests return to the front of the
queue; swapped-out ones are resumed before new ones (vLLM's policy).
"""

from __future__ import annotations

import numpy as np

from simkit.errors import SimkitError


class Scheduler:
    """Interface. `admits_midway`: whether requests may join a running batch."""

    name = "?"
    admits_midway = True
    holds_until_batch_end = False
    whole_prefill = True  # a prompt is prefilled in one iteration (False: in chunks)

    def __init__(self, serving) -> None:
        self.max_batch = int(serving.max_batch)
        mbt = getattr(serving, "max_batch_tokens", None)
        self.max_batch_tokens = None if mbt is None else int(mbt)

    def admit(self, rep, now_s: float) -> int:
        """Move queued requests into the batch; returns how many were admitted."""
        raise NotImplementedError

    def prefill_chunks(self, rep) -> np.ndarray:
        """Prompt tokens each running request processes this iteration (0 = none)."""
        return rep.r_pre.copy()


class StaticScheduler(Scheduler):
    name = "static"
    admits_midway = False
    holds_until_batch_end = True

    def admit(self, rep, now_s: float) -> int:
        if len(rep.r_id):
            return 0
        return rep.admit_fcfs(now_s, self.max_batch, self.max_batch_tokens)


class ContinuousScheduler(Scheduler):
    name = "continuous"

    def admit(self, rep, now_s: float) -> int:
        return rep.admit_fcfs(now_s, self.max_batch, self.max_batch_tokens)


class ChunkedScheduler(Scheduler):
    name = "chunked"
    whole_prefill = False

    def __init__(self, serving) -> None:
        super().__init__(serving)
        self.chunk_tokens = int(getattr(serving, "chunk_tokens", 512))
        if self.chunk_tokens < 1:
            raise SimkitError(f"serving.chunk_tokens: must be >= 1, got {self.chunk_tokens}")

    def _budget(self, rep) -> int:
        n_decode = int(np.count_nonzero((rep.r_pre == 0) & ~rep.r_done))
        return self.chunk_tokens - n_decode

    def admit(self, rep, now_s: float) -> int:
        # swapped requests resume as decodes (one token each); new ones need budget left
        # after the decodes and the prefills already under way
        ongoing = int(rep.r_pre.sum())
        budget = self._budget(rep) - ongoing
        return rep.admit_fcfs(now_s, self.max_batch, None, token_budget=budget)

    def prefill_chunks(self, rep) -> np.ndarray:
        budget = self._budget(rep)
        pre = rep.r_pre
        chunks = np.zeros_like(pre)
        if budget <= 0:
            return chunks
        # in admission order: ongoing prefills first, then the ones just admitted
        for i in np.flatnonzero(pre):
            c = min(int(pre[i]), budget)
            chunks[i] = c
            budget -= c
            if budget <= 0:
                break
        return chunks


SCHEDULERS = {"static": StaticScheduler, "continuous": ContinuousScheduler,
              "chunked": ChunkedScheduler}


def make_scheduler(serving) -> Scheduler:
    name = getattr(serving, "scheduler", "continuous")
    try:
        cls = SCHEDULERS[name]
    except KeyError:
        raise SimkitError(f"serving.scheduler: unknown scheduler {name!r}; choose one of "
                          f"{', '.join(SCHEDULERS)}") from None
    return cls(serving)
