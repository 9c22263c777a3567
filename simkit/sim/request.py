"""Requests as one columnar table (numpy arrays indexed by request id).

A request is an integer id; its fixed inputs (arrival, prompt and output lengths) and its
outcome (first scheduled, first token, finish, preemptions, status) are columns. Columns
instead of objects keep 100,000 requests cheap and hand the per-request CSV and the metrics
their data without conversion.

Token conventions: ``output_tokens`` o includes the first token, which the
prefill iteration produces; the remaining o-1 tokens come from decode iterations.
"""

from __future__ import annotations

import numpy as np

# status codes (the CSV writes their names)
PENDING, QUEUED, RUNNING, COMPLETED, REJECTED, SWAPPED = 0, 1, 2, 3, 4, 5
STATUS_NAMES = {PENDING: "pending", QUEUED: "queued", RUNNING: "running",
                COMPLETED: "completed", REJECTED: "rejected", SWAPPED: "swapped"}

COLUMNS = ("id", "arrival_s", "prompt_tokens", "output_tokens", "start_s", "first_token_s",
           "finish_s", "preemptions", "status")


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
        }
