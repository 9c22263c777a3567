"""A client that keeps at most C requests unanswered (``workload.max_concurrency``).

Serving benchmarks mostly run closed loops: vLLM's ``vllm bench serve --max-concurrency C``,
SGLang's ``bench_serving --max-concurrency``, genai-perf's ``--concurrency``. The client
draws its requests in order and holds a semaphore of C slots: request k is sent at its
arrival time (the arrival process's; ``burst``: all at t = 0, the clients' request rate of
inf) or, while C requests are unanswered, as soon as one of them is answered, whichever is
later, in order. A request that cannot be served at all (rejected) frees its slot at once,
as a failed HTTP call does.

The client measures from the moment it sends, so the request's arrival time in every metric
and in the CSV is its send time. An answer released by one replica is sent at the same
instant as an arrival event (after the iteration boundary that released it), so it joins a
batch at that replica's next boundary, or cuts another replica's planned run at its first
boundary after it, as any arrival does.
"""

from __future__ import annotations

from typing import Callable

from simkit.sim.engine import PRIORITY_ARRIVAL
from simkit.sim.request import REJECTED


class ClosedLoop:
    """Sends the table's requests in order, at most `limit` unanswered at once.

    `ready`: each request's arrival time from the arrival process; `fits`: whether a replica
    can hold it at all; `route(rid)`: the replica that takes it.
    """

    def __init__(self, limit: int, ready: list[float], fits: list[bool], table, engine,
                 route: Callable[[int], object]) -> None:
        self.limit = int(limit)
        self.ready = ready
        self.fits = fits
        self.table = table
        self.engine = engine
        self.route = route
        self.next = 0  # the next request to send
        self.in_flight = 0
        self._timer = -1.0  # the arrival time an event is scheduled for (-1: none)

    def start(self) -> None:
        if self.ready:
            self._wake(self.ready[0])

    def next_arrival_s(self) -> float:
        """When the next request is sent, as far as is known now: its arrival time while a
        slot is free; unknown (inf) while every slot waits for an answer."""
        if self.next >= len(self.ready) or self.in_flight >= self.limit:
            return float("inf")
        return max(self.ready[self.next], self.engine.now_s)

    def _wake(self, t: float) -> None:
        if self._timer != t:
            self._timer = t
            self.engine.schedule(t, PRIORITY_ARRIVAL, self._send, None)

    def _send(self, _arg) -> None:
        """Send every request whose time has come while slots are free."""
        self._timer = -1.0
        now = self.engine.now_s
        ready, n, tab = self.ready, len(self.ready), self.table
        while self.next < n and self.in_flight < self.limit and ready[self.next] <= now:
            rid = self.next
            self.next += 1
            tab.arrival_s[rid] = now
            if not self.fits[rid]:
                tab.status[rid] = REJECTED
                continue
            self.in_flight += 1
            self.route(rid).enqueue(rid, now)
        if self.next < n and self.in_flight < self.limit:
            self._wake(ready[self.next])

    def on_finished(self, rid: int, now_s: float) -> None:
        """Request `rid` has its answer: its slot goes to the next request."""
        self.in_flight -= 1
        if self.next < len(self.ready):
            self._wake(max(self.ready[self.next], now_s))
