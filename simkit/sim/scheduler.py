"""Batching policies: what runs in each iteration of a replica (Vidur's split of policy and
mechanism: the scheduler decides, the replica executes; Agrawal et al. 2024, "Vidur",
MLSys, `vidur/scheduler/replica_scheduler/`).

At every iteration boundary the replica asks its scheduler to form the batch
(`form_batch`): which queued requests join, in which order (`admit`), which sequence is
preempted when memory runs short (`victim`), whether swapped-out requests resume before new
ones (`resume_swapped_first`), which running sequences decode this iteration (`decoding`)
and how many prompt tokens each prefilling one processes (`prefill_chunks`). The replica
owns the mechanisms: memory (blocks, the prefix cache), preemption, timing and logs.

``max_batch_tokens`` is vLLM's ``max_num_batched_tokens``: prompt tokens (after the prefix
cache hit) plus decode tokens of one iteration, in every scheduler. A prompt larger than the
whole budget still runs when nothing else is scheduled in that iteration (vLLM requires the
budget to hold ``max_model_len`` without chunked prefill, so it never meets the case).

- ``static``: request-level batching (FasterTransformer-style, as Orca's paper describes
  it): an idle replica takes up to ``max_batch`` queued requests (``max_batch_tokens`` caps
  their prompt tokens) and runs them to the end; nothing joins mid-batch and early finishers
  are returned with the batch (Yu et al. 2022, "Orca", OSDI, Sec. 2.3).
- ``continuous``: iteration-level scheduling (Orca): every iteration retires finished
  requests and admits queued ones (FCFS, stopping at the first that does not fit), whose
  whole prompt is prefilled in that iteration beside the running decodes (Orca's selective
  batching).
- ``chunked``: Sarathi-Serve (Agrawal et al. 2024, arXiv:2403.02310), vLLM v1's default: a
  token budget per iteration (``chunk_tokens``, or ``max_batch_tokens`` when that is
  smaller); running decodes take one token each, the rest goes to prompt chunks, ongoing
  prefills first, then new admissions.
- ``prefill_first``: vLLM v0's default policy (``Scheduler._schedule_default``), Vidur's
  ``vllm`` scheduler (`vllm_replica_scheduler.py`): an iteration runs waiting prompts alone,
  up to ``max_batch_tokens``, and stalls the running decodes meanwhile; only when no prompt
  can be admitted does it run every running decode. Swapped-out requests resume (as
  decodes) before new prompts are taken. Vidur counts a prefill batch's tokens as
  batch size x longest prompt (padding); simkit, like vLLM, sums them.

``scheduler_steps`` > 1 is vLLM 0.6's multi-step scheduling (``--num-scheduler-steps``;
vLLM RFC #6854, PR #7000): when an iteration would only decode, the scheduler hands the
batch to the GPU for a round of that many iterations and is not called again until it ends.
Nothing joins the round (arrivals wait for its end) and nothing leaves it: a sequence that
reaches its last token mid-round keeps computing throw-away tokens in the slots reserved for
the round (vLLM's lookahead slots) and leaves the batch at the round's end. How the client
sees it is ``multi_step_stream_outputs`` (vLLM's ``--multi-step-stream-outputs``: PR #8335
added it, PR #9047 turned it on by default for v0.6.3):
- on (the default): each step's tokens are streamed when the step ends, so a sequence's
  answer is complete at the step of its last token;
- off (vLLM 0.6.0-0.6.2): the round's tokens reach the client in one burst at its end, and
  the answer is complete then.
Either way only the round's first iteration pays the engine's per-sequence host work
(`StepCostModel.sequence_host_time_s`: scheduling each sequence, building its inputs and
processing its output once a round is the point of multi-step), and the engine loop, model
runner and sampler run at every step (`step_overhead_s`). Streaming processes outputs every
step, asynchronously with the next step on the GPU; PR #9047 measured its price at about 6%
of TPOT (Llama-3.1-8B on an H100), which simkit leaves out: charging the whole
per-sequence host work at every streamed step put AMD's MLPerf v5.1 vLLM 0.9 runs (rounds of
7-13 steps) about 5% further below their measured throughput.
An iteration that prefills runs alone, one step (vLLM 0.6's single-step
prefills). A round whose blocks would run out stops where they do (vLLM would preempt a
sequence to make room for the round's lookahead slots).

Admission allocates KV blocks for the whole prompt at once (vLLM's ``can_allocate``), also
under chunked prefill. The watermark (``serving.watermark``) is the share of the KV memory an
admission or a swap-in must leave free while others run; the running decodes' growth may
use it. ``prefill_first`` keeps vLLM v0's 1% by default (``BlockSpaceManager(watermark=
0.01)``); the others keep none, as vLLM v1 did until its KV manager took a watermark
(vllm-project/vllm#44594, merged 2026-06, off by default: ``int(watermark x blocks)`` kept
free when waiting or preempted requests are admitted beside scheduled ones, "to avoid
frequent preemptions"). Preempted requests return to
the front of the queue; the victim is the most recently admitted running sequence (vLLM v0
``_preempt`` pops the running queue's tail; v1 ``running.pop()``).

``admission`` says what a request needs free to join a running batch:
- ``greedy`` (the default): its prompt's blocks. The batch fills the memory and sequences are
  preempted when their growth runs short (vLLM; TensorRT-LLM's MAX_UTILIZATION, which
  NVIDIA's MLPerf harness sets).
- ``no_evict``: room for its whole answer (prompt + output tokens) beside what every running
  sequence will still grow by up to its last token. Nothing is preempted for memory; the
  batch is smaller, and no work is recomputed. This is TensorRT-LLM's GUARANTEED_NO_EVICT
  capacity scheduler (``GuaranteedNoEvictScheduler`` counts each request's blocks "to
  completion"), the default of its LLM API and of ``trtllm-bench throughput``
  (``--scheduler_policy``, default ``guaranteed_no_evict``: NVIDIA/TensorRT-LLM
  ``tensorrt_llm/bench/benchmark/throughput.py``). An empty replica takes what fits its
  prompt, as under ``greedy``.
- ``new_token_ratio``: SGLang's scheduler: its prompt and its whole token limit
  (``workload.max_new_tokens``) beside a decaying share of what each running answer may
  still generate; when memory runs short it retracts the answers with the fewest tokens
  generated, sends them to the back of the queue and raises the share
  (`simkit.sim.newtokens`). ``serving.schedule_conservativeness`` scales the share.
"""

from __future__ import annotations

import numpy as np

from simkit.errors import SimkitError
from simkit.sim.newtokens import new_token_ratio_of
from simkit.sim.rows import PRE


def admission_of(serving) -> str:
    """The serving section's admission policy (``greedy`` where a duck-typed section has
    none): read here once for the scheduler, the setup's checks and the summary."""
    return getattr(serving, "admission", "greedy")


class Scheduler:
    """Interface and the FCFS mechanics the policies share.

    `admits_midway`: requests may join a running batch. `holds_until_batch_end`: finished
    sequences keep their memory until the whole batch ends. `whole_prefill`: a prompt is
    prefilled in one iteration. `prefill_only`: set by `form_batch` when this iteration runs
    prompts alone (prefill_first).
    """

    name = "?"
    admits_midway = True
    holds_until_batch_end = False
    whole_prefill = True
    resume_swapped_first = True
    #: the queue is offered memory before the running decodes grow (prefill_first): memory
    #: a decode frees at a boundary reaches the queue only at the next one
    admits_before_growing = False
    #: share of the KV memory an admission (or a swap-in) must leave free while others run,
    #: unless `serving.watermark` sets it
    admission_reserve = 0.0

    def __init__(self, serving, max_new_tokens: int | None = None) -> None:
        self.max_batch = int(serving.max_batch)
        self.admission_reserve = watermark_of(serving)
        mbt = getattr(serving, "max_batch_tokens", None)
        self.max_batch_tokens = None if mbt is None else int(mbt)
        if self.max_batch_tokens is not None and self.max_batch_tokens < 1:
            raise SimkitError(f"serving.max_batch_tokens: must be >= 1, got {mbt}")
        self.prefill_only = False
        #: decode iterations per scheduler call (vLLM's --num-scheduler-steps): a batch
        #: that only decodes runs a round of this many iterations, nothing joining or
        #: leaving until it ends (`simkit.sim.decoderun`)
        self.rounds = int(getattr(serving, "scheduler_steps", 1))
        #: a round's tokens reach the client step by step (True) or at its end
        self.stream_rounds = bool(getattr(serving, "multi_step_stream_outputs", True))
        #: admissions leave room for every running answer's remaining growth and reserve
        #: their own (`admission = "no_evict"`)
        self.reserves_output = admission_of(serving) == "no_evict"
        #: SGLang's estimate of the answers' growth (`admission = "new_token_ratio"`;
        #: `simkit.sim.newtokens`), None under another policy
        self.ratio = new_token_ratio_of(serving, max_new_tokens) \
            if admission_of(serving) == "new_token_ratio" else None
        #: a preempted request returns to the front of the queue (vLLM), or its back (SGLang)
        self.requeue_front = self.ratio is None
        #: iterations that ran prompts alone (prefill_first): they do not decode
        self.prefill_rounds = 0

    # ---- policy -------------------------------------------------------------------------
    def form_batch(self, rep, now_s: float) -> tuple[bool, int]:
        """Grow the running decodes (preempting while memory is short), then admit.
        Returns (anyone preempted, number admitted)."""
        preempted = rep.grow_decodes(now_s) if rep.n else False
        if rep.n_done:
            rep.end_static_batch(now_s)
        if not rep.n:
            preempted = False  # an empty replica must admit, or its queue would stall
        admitted = 0
        if not preempted and (rep.waiting or rep.swapped) and rep.n < self.max_batch:
            admitted = self.admit(rep, now_s)
        return preempted, admitted

    def admit(self, rep, now_s: float) -> int:
        """Move queued requests into the batch; returns how many were admitted."""
        raise NotImplementedError

    def victim(self, rep) -> int:
        """Batch index of the sequence to preempt: the most recently admitted one that is
        still running (SGLang: `NewTokenRatio.victim`)."""
        if self.ratio is not None:
            return self.ratio.victim(rep)
        n = rep.n
        if not rep.n_done:
            return n - 1
        return int(np.flatnonzero(~rep.done[:n])[-1])

    def decoding(self, rep) -> np.ndarray | None:
        """Which running sequences decode this iteration (None: every one that is not
        prefilling or finished)."""
        if self.prefill_only:
            return np.zeros(rep.n, dtype=bool)
        n = rep.n
        if not rep.n_pre and not rep.n_done:
            return None
        return (rep.R[PRE, :n] == 0) & ~rep.done[:n]

    def prefill_chunks(self, rep) -> np.ndarray:
        """Prompt tokens each running request processes this iteration (0 = none)."""
        return rep.r_pre.copy()

    # ---- FCFS admission (vLLM's waiting queue) -----------------------------------------
    def admit_fcfs(self, rep, now_s: float, budget: int | None, whole: bool = True,
                   alone: bool | None = None) -> int:
        """Resume swapped requests, then admit waiting ones in order while they fit memory
        and the token budget; stop at the first that does not (head-of-line). `budget`:
        tokens left in this iteration (None: no cap); `whole`: a prompt must fit the budget
        whole, except the first of an iteration that schedules nothing else (`alone`; default:
        the batch is empty)."""
        n = 0
        while rep.swapped and rep.n + len(rep.xfer) < self.max_batch:
            if budget is not None and budget < 1:
                break
            if not rep.resume_head(now_s):
                break
            if budget is not None:
                budget -= 1
            n += 1
        if rep.swapped and self.resume_swapped_first:
            return n  # swapped requests go first; new ones wait behind them
        if alone is None:
            alone = rep.n == 0
        ratio = self.ratio
        if ratio is not None and ratio.blocked(rep):
            return n  # SGLang's batch_is_full: not until the batch has shrunk
        full = False
        while rep.waiting:
            if rep.n + len(rep.xfer) >= self.max_batch:
                full = True
                break
            if budget is not None and budget < 1 and not alone:
                break
            if budget is not None:
                hit_tokens, tokens = rep.head_prefill()
                pre = tokens - hit_tokens
                if whole and pre > budget and not alone:
                    break
            if not rep.admit_head(now_s):
                full = True
                break
            alone = False
            if budget is not None:
                budget -= pre
            n += 1
        if full and ratio is not None:
            ratio.mark_full(rep)
        return n


class StaticScheduler(Scheduler):
    name = "static"
    admits_midway = False
    holds_until_batch_end = True

    def admit(self, rep, now_s: float) -> int:
        if rep.n:
            return 0
        return self.admit_fcfs(rep, now_s, self.max_batch_tokens)


class ContinuousScheduler(Scheduler):
    name = "continuous"

    def admit(self, rep, now_s: float) -> int:
        budget = self.max_batch_tokens
        if budget is not None:
            budget -= rep.n_decoding()  # every running decode takes one token
        return self.admit_fcfs(rep, now_s, budget)


class ChunkedScheduler(Scheduler):
    name = "chunked"
    whole_prefill = False

    def __init__(self, serving, max_new_tokens: int | None = None) -> None:
        super().__init__(serving, max_new_tokens)
        self.chunk_tokens = int(getattr(serving, "chunk_tokens", 512))
        if self.chunk_tokens < 1:
            raise SimkitError(f"serving.chunk_tokens: must be >= 1, got {self.chunk_tokens}")
        if self.max_batch_tokens is not None:
            self.chunk_tokens = min(self.chunk_tokens, self.max_batch_tokens)

    def _budget(self, rep) -> int:
        return self.chunk_tokens - rep.n_decoding()

    def admit(self, rep, now_s: float) -> int:
        # swapped requests resume as decodes (one token each); new ones need budget left
        # after the decodes and the prefills already under way
        ongoing = int(rep.r_pre.sum())
        return self.admit_fcfs(rep, now_s, self._budget(rep) - ongoing, whole=False)

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


class PrefillFirstScheduler(Scheduler):
    name = "prefill_first"
    admits_before_growing = True
    #: vLLM v0's watermark: `BlockSpaceManager(watermark=0.01)` admits a prompt (and swaps a
    #: sequence in) only if 1% of the GPU blocks stay free after it ("Use watermark to avoid
    #: frequent cache eviction", vllm/core/block_manager.py `can_allocate`), so a victim
    #: just preempted is not readmitted into the room it freed while the decodes still grow
    admission_reserve = 0.01

    # admits in its own `form_batch` (prompts alone, before the decodes grow), so the base
    # class's `admit` hook is never asked
    def form_batch(self, rep, now_s: float) -> tuple[bool, int]:
        self.prefill_only = False
        if rep.waiting and not rep.swapped:
            admitted = self.admit_fcfs(rep, now_s, self.max_batch_tokens, alone=True)
            if admitted:
                self.prefill_only = True  # the running decodes stall this iteration
                self.prefill_rounds += 1
                return False, admitted
        preempted = rep.grow_decodes(now_s) if rep.n else False
        admitted = 0
        if not preempted and rep.swapped:
            admitted = self.admit_fcfs(rep, now_s, None)  # resumes swapped ones only
        return preempted, admitted


SCHEDULERS = {"static": StaticScheduler, "continuous": ContinuousScheduler,
              "chunked": ChunkedScheduler, "prefill_first": PrefillFirstScheduler}


def watermark_of(serving) -> float:
    """Share of the KV memory admissions leave free while others run: `serving.watermark`,
    else the scheduler's own (`Scheduler.admission_reserve`)."""
    w = getattr(serving, "watermark", None)
    if w is not None:
        return float(w)
    cls = SCHEDULERS.get(getattr(serving, "scheduler", "continuous"), Scheduler)
    return float(cls.admission_reserve)


def make_scheduler(serving, max_new_tokens: int | None = None) -> Scheduler:
    """The serving section's scheduler; `max_new_tokens`: the workload's token limit per
    request (SGLang's admission reserves by it; None: each request's output length)."""
    name = getattr(serving, "scheduler", "continuous")
    try:
        cls = SCHEDULERS[name]
    except KeyError:
        raise SimkitError(f"serving.scheduler: unknown scheduler {name!r}; choose one of "
                          f"{', '.join(SCHEDULERS)}") from None
    return cls(serving, max_new_tokens)
