"""Requests as one columnar table (numpy arrays indexed by request id).

A request is an integer id; its fixed inputs (arrival, prompt and output lengths) and its
outcome (first scheduled, first token, finish, preemptions, status) are columns. Columns
instead of objects keep 100,000 requests cheap and hand the per-request CSV and the metrics
their data without conversion.

Token conventions: ``output_tokens`` o includes the first token, which the
prefill iteration produces; the remaining o-1 tokens come from decode iterations.

Prefix identity (`simkit.sim.prefix`): a request's tokens are its tenant's system prompt
(``tenant``, -1: none) followed by a stream (``stream``): a session's conversation, every turn
a prefix of the next, or a request of its own. ``stream_tokens`` is the stream's final length
(system prompt included), what the prefix cache sizes its block tables by.
"""

from __future__ import annotations

import numpy as np

# status codes (the CSV writes their names); TRANSFERRING: prefilled on a prefill replica,
# its KV on the way to (or waiting for room on) a decode replica (`simkit.sim.disagg`)
PENDING, QUEUED, RUNNING, COMPLETED, REJECTED, SWAPPED, TRANSFERRING = 0, 1, 2, 3, 4, 5, 6
STATUS_NAMES = {PENDING: "pending", QUEUED: "queued", RUNNING: "running",
                COMPLETED: "completed", REJECTED: "rejected", SWAPPED: "swapped",
                TRANSFERRING: "transferring"}

COLUMNS = ("id", "arrival_s", "prompt_tokens", "output_tokens", "start_s", "first_token_s",
           "finish_s", "preemptions", "status")
#: written after DESIGN.md's columns: the session (-1: none) and turn (1-based), the tenant
#: (-1: no system prompt), prompt tokens served from the prefix cache at the first admission
#: (-1: never admitted) and prompt tokens prefilled over every admission (recomputation
#: after preemption included)
EXTRA_COLUMNS = ("session_id", "turn", "tenant", "cached_tokens", "prefill_tokens_computed")
#: with disaggregation, after those: the prefill replica (the `replica` column is then the
#: decode replica), the prompt KV bytes moved and when the move started and ended (empty:
#: no move, e.g. a one-token answer finishes on the prefill replica)
DISAGG_COLUMNS = ("prefill_replica", "kv_transfer_bytes", "kv_transfer_start_s",
                  "kv_transfer_end_s")
#: with speculative decoding: the decode iterations the request took part in (its decoded
#: tokens / this = its tokens per step)
SPEC_COLUMNS = ("decode_steps",)


class RequestTable:
    """Inputs and outcomes of every request of a run, one numpy column each."""

    def __init__(self, arrival_s: np.ndarray, prompt_tokens: np.ndarray,
                 output_tokens: np.ndarray) -> None:
        n = len(arrival_s)
        self.n = n
        self.arrival_s = np.asarray(arrival_s, dtype=np.float64)
        self.prompt_tokens = np.asarray(prompt_tokens, dtype=np.int64)
        self.output_tokens = np.asarray(output_tokens, dtype=np.int64)
        nan = np.full(n, np.nan)
        self.start_s = nan.copy()  # first scheduled (queue wait ends)
        self.first_token_s = nan.copy()
        self.finish_s = nan.copy()
        self.preemptions = np.zeros(n, dtype=np.int64)
        self.status = np.full(n, PENDING, dtype=np.int8)
        self.replica = np.full(n, -1, dtype=np.int32)
        # tokens generated so far; survives recompute preemption (emitted tokens stay emitted)
        self.generated = np.zeros(n, dtype=np.int64)
        # sessions and prefixes (defaults: independent requests, no system prompt)
        self.session = np.full(n, -1, dtype=np.int64)
        self.turn = np.ones(n, dtype=np.int64)
        self.tenant = np.full(n, -1, dtype=np.int64)
        self.system_tokens = np.zeros(n, dtype=np.int64)
        self.stream = np.arange(n, dtype=np.int64)
        self.stream_tokens = self.prompt_tokens + self.output_tokens
        # prefix cache outcome and prefill work
        self.cached_tokens = np.full(n, -1, dtype=np.int64)
        self.prefill_tokens = np.zeros(n, dtype=np.int64)
        # when the request last emitted a token (time between tokens)
        self.last_token_s = np.full(n, np.nan)
        # disaggregation: prefill replica, KV bytes moved, transfer start and end
        self.prefill_replica = np.full(n, -1, dtype=np.int32)
        self.xfer_bytes = np.zeros(n)
        self.xfer_start_s = nan.copy()
        self.xfer_end_s = nan.copy()
        # speculative decoding: decode (draft + verify) iterations taken part in
        self.decode_steps = np.zeros(n, dtype=np.int64)

    def truncate(self, n: int) -> None:
        """Keep the first n rows (a session run that ended before its request budget)."""
        for k, v in list(vars(self).items()):
            if isinstance(v, np.ndarray) and len(v) == self.n:
                setattr(self, k, v[:n].copy())
        self.n = n

    def columns(self) -> dict[str, np.ndarray]:
        """The per-request columns of `--requests-csv` (status as strings)."""
        names = np.array([STATUS_NAMES[i] for i in range(len(STATUS_NAMES))], dtype=object)
        return {
            "id": np.arange(self.n, dtype=np.int64),
            "arrival_s": self.arrival_s.copy(),
            "prompt_tokens": self.prompt_tokens.copy(),
            "output_tokens": self.output_tokens.copy(),
            "start_s": self.start_s.copy(),
            "first_token_s": self.first_token_s.copy(),
            "finish_s": self.finish_s.copy(),
            "preemptions": self.preemptions.copy(),
            "status": names[self.status.astype(np.int64)],
            "replica": self.replica.astype(np.int64),
            "session_id": self.session.copy(),
            "turn": self.turn.copy(),
            "tenant": self.tenant.copy(),
            "cached_tokens": self.cached_tokens.copy(),
            "prefill_tokens_computed": self.prefill_tokens.copy(),
            "prefill_replica": self.prefill_replica.astype(np.int64),
            "kv_transfer_bytes": self.xfer_bytes.copy(),
            "kv_transfer_start_s": self.xfer_start_s.copy(),
            "kv_transfer_end_s": self.xfer_end_s.copy(),
            "decode_steps": self.decode_steps.copy(),
        }
